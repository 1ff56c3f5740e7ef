"""Until stylegan_eval.metrics.kid and .precision_recall (written concurrently, same API) are
merged, tests of the measure plumbing install these small reference versions in their place.
`install()` does nothing once the real modules exist, so the same tests then run on them."""

import importlib
import sys
import types
from dataclasses import dataclass

import numpy as np
import torch

from stylegan_eval.records import FeatureNetwork


@dataclass(frozen=True)
class KIDResult:
    mean: float
    std: float
    num_subsets: int
    subset_size: int


@dataclass(frozen=True)
class PRResult:
    precision: float
    recall: float
    k: int = 3
    num_real: int = 0
    num_fake: int = 0


def _mmd2(x, y):
    k = lambda a, b: (a @ b.T / a.shape[1] + 1.0) ** 3  # noqa: E731
    m, n = len(x), len(y)
    kxx, kyy = k(x, x), k(y, y)
    return (kxx.sum() - np.trace(kxx)) / (m * (m - 1)) + (kyy.sum() - np.trace(kyy)) / (n * (n - 1)) - 2 * k(x, y).mean()


def kid_from_features(real, fake, num_subsets=100, subset_size=1000, seed=0):
    real, fake = np.asarray(real, np.float64), np.asarray(fake, np.float64)
    m, rng = min(subset_size, len(real), len(fake)), np.random.RandomState(seed)
    v = np.array([_mmd2(fake[rng.choice(len(fake), m, replace=False)], real[rng.choice(len(real), m, replace=False)])
                  for _ in range(num_subsets)])
    return KIDResult(float(v.mean()), float(v.std()), num_subsets, m)


def precision_recall(real, fake, k=3, batch=10000, device=None):
    real, fake = torch.as_tensor(np.asarray(real), dtype=torch.float32), torch.as_tensor(np.asarray(fake), dtype=torch.float32)
    r_real = torch.cdist(real, real).kthvalue(k + 1, dim=1).values
    r_fake = torch.cdist(fake, fake).kthvalue(k + 1, dim=1).values
    d = torch.cdist(real, fake)  # [N, M]
    precision = (d <= r_real[:, None]).any(dim=0).float().mean().item()
    recall = (d <= r_fake[None, :]).any(dim=1).float().mean().item()
    return PRResult(precision, recall, k, len(real), len(fake))


class PixelPRFeatures(torch.nn.Module):
    """4x4 average colours (48-d): a cheap deterministic feature network for plumbing tests."""

    dim = 48
    identity = FeatureNetwork("test-pixels-4x4", "none", False)
    digest = "test-pixels-4x4"

    def forward(self, images):
        assert images.dtype == torch.uint8
        return torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, 4).flatten(1)


def load_pr_features(device="cpu", substitute=False, substitute_seed=0, weights_path=None):
    return PixelPRFeatures().to(device)


def install() -> None:
    for name, attrs in (("kid", {"KIDResult": KIDResult, "kid_from_features": kid_from_features}),
                        ("precision_recall", {"PRResult": PRResult, "precision_recall": precision_recall,
                                              "load_pr_features": load_pr_features})):
        full = f"stylegan_eval.metrics.{name}"
        try:
            importlib.import_module(full)
        except ModuleNotFoundError:
            module = types.ModuleType(full)
            module.__dict__.update(attrs)
            sys.modules[full] = module
