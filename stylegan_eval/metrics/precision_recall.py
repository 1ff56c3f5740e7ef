"""Improved precision and recall (Kynkäänniemi et al. 2019, arXiv 1904.06991), k = 3: pr50k3.

Each sample set approximates its manifold by the union of balls around its samples, each ball's
radius the distance to the sample's k-th nearest neighbour in its own set. Precision is the
fraction of generated samples inside the real manifold, recall the fraction of real samples
inside the generated one. Features: torch-fidelity's `vgg16` extractor (torchvision's ImageNet
VGG16, fc2 after ReLU, 4096-d; see stylegan_eval.vgg16), the network torch-fidelity >= 0.4 uses
for its `prc` metric.

The math follows torch-fidelity's `metric_prc.py` (its default, `save_cpu_ram=False`) decision
for decision:
- a radius is the (k+1)-th smallest distance from a sample to all samples of its set, itself
  included (its own distance is the smallest), so exact duplicates count as neighbours;
- a probe is inside when its distance to some ball's centre is <= that ball's radius (ties in);
- distances are `torch.cdist` in the features' dtype on the same tiles (`batch` rows by `batch`
  columns, real rows against generated columns for both directions), so each distance is the very
  number torch-fidelity compares; precision and recall are then equal to its values, not close.
Unlike it, a full row of distances or the N x M matrix never exists: the k+1 smallest distances per
row are merged tile by tile (selection, no arithmetic: the radius is the same number), and the
inside tests accumulate per tile, so memory is O(batch^2 + (N + M) D) instead of O(N M).

Rounding: `torch.cdist` computes a tile with more than 25 rows or columns as one matrix product
(|x|^2 + |y|^2 - 2 x.y), a smaller tile pair by pair, whose float32 square root can land on the
neighbouring float. The same `batch` reproduces torch-fidelity's distances bit for bit; another
`batch` can move a distance by float32 rounding, which changes a decision only for a probe on a
ball's boundary to that precision (tests find identical values across batch sizes).
"""

from dataclasses import dataclass

import numpy as np
import torch

from stylegan_core.errors import ConfigError
from stylegan_eval.feature_extractor import FeatureExtractor
from stylegan_eval.vgg16 import load_vgg16

PR_NEIGHBOURHOOD = 3  # k of pr50k3 (stylegan2-ada nhood_size, torch-fidelity prc_neighborhood)
PR_BATCH = 10000  # torch-fidelity's prc_batch_size (and stylegan2-ada's row/col batch size)


# ---------------------------------------------------------------------------------------------
# 1. The estimator
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PRResult:
    precision: float  # fraction of generated samples inside the real manifold
    recall: float  # fraction of real samples inside the generated manifold
    k: int  # neighbourhood size of the radii
    num_real: int
    num_fake: int


def _features(x, device) -> torch.Tensor:
    """[N, D] floating features as a tensor on `device` (one copy; float32 unless float64)."""
    if isinstance(x, torch.Tensor):
        t = x
    else:
        a = np.asarray(x)
        # Read-only (a memory-mapped store): read it into memory once; torch wants writable arrays.
        t = torch.from_numpy(np.ascontiguousarray(a) if a.flags.writeable else np.array(a))
    if t.ndim != 2:
        raise ValueError(f"expected feature rows [N, D], got shape {tuple(t.shape)}")
    if t.dtype != torch.float64:
        t = t.to(torch.float32)
    return t.to(device if device is not None else t.device)


def _tiles(n: int, batch: int) -> list[slice]:
    return [slice(a, min(a + batch, n)) for a in range(0, n, batch)]


def _check(k: int, batch: int) -> None:
    if k < 1 or batch < 1:
        raise ConfigError(f"precision/recall needs k >= 1 and batch >= 1, got k={k}, batch={batch}")


def knn_radii(features, k: int = PR_NEIGHBOURHOOD, batch: int = PR_BATCH, device=None) -> torch.Tensor:
    """Distance from each row of features [N, D] to its k-th nearest other row -> [N].

    The (k+1)-th smallest of the row's distances to all rows, itself included, as
    `torch.cdist(...).kthvalue(k + 1)` over torch-fidelity's tiles; computed `batch` rows by
    `batch` columns at a time, keeping only the k+1 smallest per row. On `device` (None: where
    the features are; CPU for arrays).
    """
    _check(k, batch)
    x = _features(features, device)
    n = x.shape[0]
    if n < k + 1:
        raise ConfigError(f"k-nearest-neighbour radii with k={k} need at least {k + 1} samples, got {n}")
    tiles = _tiles(n, batch)
    radii = torch.empty(n, dtype=x.dtype, device=x.device)
    for rows in tiles:
        smallest = None  # [rows, <= k+1]: the smallest distances of the row so far, with repeats
        for cols in tiles:
            dist = torch.cdist(x[rows], x[cols])  # [rows, cols]
            # The k+1 smallest of the row are among the k+1 smallest of each tile: merge those.
            part = _smallest(dist, k + 1)
            del dist  # before the next tile is allocated: one tile alive at a time
            smallest = part if smallest is None else _smallest(torch.cat([smallest, part], dim=1), k + 1)
        radii[rows] = smallest[:, k]
    return radii


def _smallest(values: torch.Tensor, count: int) -> torch.Tensor:
    """The `count` smallest values of each row (fewer if the row is shorter), ascending."""
    return values.topk(min(count, values.shape[1]), dim=1, largest=False, sorted=True).values


def precision_recall(real, fake, k: int = PR_NEIGHBOURHOOD, batch: int = PR_BATCH, device=None) -> PRResult:
    """Improved precision and recall of generated rows fake [M, D] against real rows [N, D].

    Arrays or tensors (float32 unless float64); computed on `device` (None: where `real` is).
    """
    _check(k, batch)
    real_t = _features(real, device)
    fake_t = _features(fake, real_t.device)
    if real_t.shape[1] != fake_t.shape[1] or real_t.dtype != fake_t.dtype:
        raise ValueError(f"real and generated features differ: {tuple(real_t.shape)} {real_t.dtype} vs "
                         f"{tuple(fake_t.shape)} {fake_t.dtype}")
    radii_real = knn_radii(real_t, k, batch)  # [N]
    radii_fake = knn_radii(fake_t, k, batch)  # [M]
    real_inside = torch.zeros(real_t.shape[0], dtype=torch.bool, device=real_t.device)  # recall probes
    fake_inside = torch.zeros(fake_t.shape[0], dtype=torch.bool, device=real_t.device)  # precision probes
    for rows in _tiles(real_t.shape[0], batch):
        for cols in _tiles(fake_t.shape[0], batch):
            dist = torch.cdist(real_t[rows], fake_t[cols])  # [real rows, fake cols], as torch-fidelity
            real_inside[rows] |= (dist <= radii_fake[cols][None, :]).any(dim=1)
            fake_inside[cols] |= (dist <= radii_real[rows][:, None]).any(dim=0)
            del dist
    # float32 means of booleans, as torch-fidelity takes them: identical numbers, not just close.
    return PRResult(
        precision=fake_inside.float().mean().item(),
        recall=real_inside.float().mean().item(),
        k=k,
        num_real=real_t.shape[0],
        num_fake=fake_t.shape[0],
    )


# ---------------------------------------------------------------------------------------------
# 2. The feature network
# ---------------------------------------------------------------------------------------------
def load_pr_features(device="cpu", substitute: bool = False, substitute_seed: int = 0,
                     weights_path=None) -> FeatureExtractor:
    """The precision/recall feature network: uint8 [N, 3, H, W] -> [N, 4096], with `.identity`
    (records) and `.digest` (caches); see stylegan_eval.vgg16.load_vgg16 for the weights policy."""
    return load_vgg16(device, weights_path=weights_path, substitute=substitute, substitute_seed=substitute_seed)
