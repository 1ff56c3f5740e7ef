"""Fréchet Inception Distance (Heusel et al. 2017) as the StyleGAN paper measures it.

FID = ||mu1 - mu2||^2 + Tr(S1 + S2 - 2 (S1 S2)^(1/2)) between Gaussians fitted to Inception-v3
pool3 features (torch-fidelity's `inception-v3-compat`, see stylegan_eval.inception) of 50,000
generated images (uint8-quantised, no truncation) and up to 50,000 dataset images, as in
NVlabs/stylegan `metrics/frechet_inception_distance.py` and torch-fidelity `metric_fid.py`.

Layers, top to bottom:
1. `frechet_distance`: pure float64 math. Tr (S1 S2)^(1/2) is the sum of the square roots of the
   eigenvalues of the symmetric matrix R^T S2 R for any R with R R^T = S1 (Cholesky factor, or
   the eigen-decomposition when S1 is singular), so no complex sqrtm is needed.
2. `RunningStats`: float64 sums of x and x x^T; mergeable and all-reducible across ranks.
3. Streaming loops: fixed chunks of sample indices, sharded across ranks within a chunk and
   all-reduced after it, so the sums (and the resumable progress file written after every chunk)
   never depend on batch size or the number of processes.
4. `compute_fid`: a generator or an image folder against a dataset; returns a ResultRecord.
"""

import contextlib
import math
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.linalg
import torch
from tqdm import tqdm

from stylegan_core import distributed
from stylegan_core.data import PREFETCH_WORKERS, prefetch
from stylegan_core.errors import ConfigError, DatasetError, NonFiniteError
from stylegan_eval import fid_cache
from stylegan_eval.metrics.generation import generate_uint8, noise_mode_of, to_rgb
from stylegan_eval.provenance import MetricResult, Provenance, RecordExtras
from stylegan_eval.records import ResultRecord

DEFAULT_CHUNK = 1000  # samples between progress checkpoints (and all-reduces)


# ---------------------------------------------------------------------------------------------
# 1. The distance
# ---------------------------------------------------------------------------------------------
def _cholesky(sigma: np.ndarray) -> np.ndarray | None:
    """Lower Cholesky factor, or None when sigma is not numerically positive definite."""
    try:
        return scipy.linalg.cholesky(sigma, lower=True, check_finite=False)
    except np.linalg.LinAlgError:
        return None


def _psd_factor(sigma: np.ndarray) -> np.ndarray:
    """B [D, r] with B B^T = sigma restricted to its numerically positive eigenvalues."""
    w, v = scipy.linalg.eigh(sigma, check_finite=False)
    # Eigenvalues below round-off of the largest are zero in exact arithmetic (rank deficiency);
    # negative ones are round-off too. Dropping them keeps their noise out of the trace.
    keep = w > max(w[-1], 0.0) * sigma.shape[0] * np.finfo(np.float64).eps
    return v[:, keep] * np.sqrt(w[keep])


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr (sigma1 sigma2)^(1/2) for symmetric PSD [D, D] float64 matrices."""
    return _trace_sqrt_product(sigma1, sigma2, _cholesky(sigma1), _cholesky(sigma2))


def _trace_sqrt_product(sigma1, sigma2, chol1, chol2) -> float:
    # With R R^T = sigma1, sigma1 sigma2 is similar to R^T sigma2 R (symmetric PSD), whose
    # eigenvalues are real and non-negative up to round-off (clipped at 0).
    if chol1 is not None:
        factor, other = chol1, sigma2
    elif chol2 is not None:
        factor, other = chol2, sigma1  # Tr sqrt(S1 S2) = Tr sqrt(S2 S1)
    else:
        factor, other = _psd_factor(sigma1), sigma2
    m = factor.T @ other @ factor  # [r, r]
    eig = scipy.linalg.eigvalsh((m + m.T) / 2, check_finite=False)
    return float(np.sqrt(np.clip(eig, 0.0, None)).sum())


def frechet_distance(mu1, sigma1, mu2, sigma2) -> float:
    """FID between N(mu1, sigma1) and N(mu2, sigma2): mu [D], sigma [D, D] (array-likes).

    Computed in float64. Warns (RuntimeWarning) when a covariance is singular, e.g. estimated
    from fewer samples than dimensions: the value stays finite but is biased.
    """
    mu1, mu2 = (np.asarray(m, dtype=np.float64).reshape(-1) for m in (mu1, mu2))
    sigma1, sigma2 = (np.atleast_2d(np.asarray(s, dtype=np.float64)) for s in (sigma1, sigma2))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"shape mismatch: mu {mu1.shape} / {mu2.shape}, sigma {sigma1.shape} / {sigma2.shape}")
    for name, a in (("mu1", mu1), ("sigma1", sigma1), ("mu2", mu2), ("sigma2", sigma2)):
        if not np.isfinite(a).all():
            raise NonFiniteError(f"frechet_distance: {name} contains NaN or Inf")
    sigma1, sigma2 = (sigma1 + sigma1.T) / 2, (sigma2 + sigma2.T) / 2
    chol1, chol2 = _cholesky(sigma1), _cholesky(sigma2)
    singular = [i for i, c in ((1, chol1), (2, chol2)) if c is None]
    if singular:
        warnings.warn(
            f"frechet_distance: singular covariance ({', '.join(f'sigma{i}' for i in singular)}): fewer "
            f"samples than the {d} feature dimensions, or collapsed features; the value is finite "
            "but biased",
            RuntimeWarning,
            stacklevel=2,
        )
    diff = mu1 - mu2
    tr_covmean = _trace_sqrt_product(sigma1, sigma2, chol1, chol2)
    value = diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean
    return max(float(value), 0.0)  # a squared distance; a negative value is round-off


# ---------------------------------------------------------------------------------------------
# 2. Running statistics
# ---------------------------------------------------------------------------------------------
class RunningStats:
    """Count, float64 sum of x [D] and of x x^T [D, D] over feature rows; mean/cov as NumPy's
    np.mean / np.cov(rowvar=False) (unbiased) of the stacked rows, without holding them."""

    def __init__(self, dim: int, device: str | torch.device = "cpu"):
        self.count = 0
        self.sum = torch.zeros(dim, dtype=torch.float64, device=device)
        self.sum_outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)

    @property
    def dim(self) -> int:
        return self.sum.shape[0]

    def update(self, x: torch.Tensor) -> None:
        """Add feature rows x [N, D]."""
        x = x.to(device=self.sum.device, dtype=torch.float64)
        self.count += x.shape[0]
        self.sum += x.sum(dim=0)
        self.sum_outer += x.T @ x

    def merge(self, other: "RunningStats") -> None:
        self.count += other.count
        self.sum += other.sum.to(self.sum.device)
        self.sum_outer += other.sum_outer.to(self.sum.device)

    def all_reduce(self) -> None:
        """Sum over torch.distributed ranks, in float64 (no-op with one process)."""
        count = torch.tensor([float(self.count)], dtype=torch.float64, device=self.sum.device)
        self.count = int(distributed.all_reduce_sum(count).item())
        self.sum = distributed.all_reduce_sum(self.sum)
        self.sum_outer = distributed.all_reduce_sum(self.sum_outer)

    def mean(self) -> np.ndarray:
        if self.count < 1:
            raise ValueError("no samples accumulated")
        return (self.sum / self.count).cpu().numpy()

    def cov(self) -> np.ndarray:
        if self.count < 2:
            raise ValueError(f"a covariance needs at least 2 samples, got {self.count}")
        mu = self.sum / self.count
        cov = (self.sum_outer - self.count * torch.outer(mu, mu)) / (self.count - 1)
        return cov.cpu().numpy()

    def state_dict(self) -> dict[str, Any]:
        return {"count": self.count, "sum": self.sum.cpu(), "sum_outer": self.sum_outer.cpu()}

    @staticmethod
    def from_state_dict(state: dict[str, Any], device: str | torch.device = "cpu") -> "RunningStats":
        stats = RunningStats(state["sum"].shape[0], device)
        stats.count = int(state["count"])
        stats.sum += state["sum"].to(device)
        stats.sum_outer += state["sum_outer"].to(device)
        return stats


def fid_from_stats(a: RunningStats, b: RunningStats) -> float:
    return frechet_distance(a.mean(), a.cov(), b.mean(), b.cov())


# ---------------------------------------------------------------------------------------------
# 3. Streaming loops
# ---------------------------------------------------------------------------------------------
# A feature extractor is any module mapping uint8 [N, 3, H, W] to float [N, dim] with attributes
# `dim`, `identity` (records.FeatureNetwork) and `digest` (hash of its weights; keys caches),
# e.g. stylegan_eval.feature_extractor.FeatureExtractor.


def load_images(ds, indices, pin: bool = False) -> torch.Tensor:
    """Dataset images `indices` as uint8 [N, 3, H, W]; in page-locked memory with `pin` (for
    an asynchronous copy to a CUDA device)."""
    images = torch.stack([ds[int(i)] for i in indices])
    if images.dtype != torch.uint8:
        raise DatasetError(f"dataset returned {images.dtype} images; expected uint8")
    images = to_rgb(images)
    return images.pin_memory() if pin else images


def dataset_batches(ds, batches: Iterable[list[int]], device, workers: int = PREFETCH_WORKERS) -> Iterator[torch.Tensor]:
    """Every dataset pass reads its images here: uint8 [n, 3, H, W] on `device` for each index
    list of `batches`, in order, decoded and stacked by `workers` threads ahead of the network
    (stylegan_core.data.prefetch); pinned and copied asynchronously when `device` is CUDA."""
    device = torch.device(device)
    pin = device.type == "cuda"
    with contextlib.closing(prefetch(lambda idx: load_images(ds, idx, pin), batches, workers)) as loaded:
        for images in loaded:
            yield images.to(device, non_blocking=pin)


def batch_schedule(start: int, num: int, chunk_size: int, batch_size: int) -> list[tuple[range, list[list[int]]]]:
    """Chunks of items start..num-1 and this rank's index batches in each, in pass order."""
    out = []
    for chunk_start in range(start, num, chunk_size):
        chunk = range(chunk_start, min(chunk_start + chunk_size, num))
        mine = distributed.shard(chunk)
        out.append((chunk, [list(mine[b : b + batch_size]) for b in range(0, len(mine), batch_size)]))
    return out


def accumulate(
    num: int,  # items 0..num-1
    load: Callable[[list[int]], torch.Tensor] | Callable[[Iterable[list[int]]], Iterator[torch.Tensor]],
    extractor: torch.nn.Module,
    batch_size: int,
    chunk_size: int,  # items between all-reduces and progress saves
    device: torch.device,
    progress_dir: Path | None,  # None: no resume
    progress_key: dict[str, Any],
    desc: str,
    progress: bool = True,  # tqdm bar on rank 0
    batched: bool = False,  # `load` maps all index batches to an iterator of images (dataset_batches)
) -> tuple[RunningStats, int]:
    """Feature statistics of items 0..num-1 and the index this call resumed from. `load` maps
    one index batch to uint8 [n, 3, H, W] images, or with `batched` the pass's index batches, in
    order, to an iterator of them (so a dataset can load ahead of the network).

    Chunk c covers indices [c * chunk_size, (c + 1) * chunk_size), sharded across ranks; after
    each chunk the ranks' sums are all-reduced into the running total, which rank 0 saves with
    the next index (atomically) so a restarted run continues after the last completed chunk.
    """
    kind = "fid-progress"
    total, start = RunningStats(extractor.dim, device), 0
    if progress_dir is not None:
        state = fid_cache.load_entry(progress_dir, kind, progress_key) if distributed.is_main() else None
        if state is not None:
            total, start = RunningStats.from_state_dict(state["stats"], device), int(state["next_index"])
        # Broadcast rank 0's state: the other ranks contribute zeros.
        total.all_reduce()
        start = int(distributed.all_reduce_sum(torch.tensor([float(start)], dtype=torch.float64, device=device)).item())
    world = distributed.world_size()
    with tqdm(total=num, initial=start, desc=desc, unit="img", disable=not (progress and distributed.is_main()),
              leave=False) as bar:
        schedule = batch_schedule(start, num, chunk_size, batch_size)
        all_batches = [indices for _, batches in schedule for indices in batches]
        loaded = load(all_batches) if batched else (load(indices) for indices in all_batches)
        with contextlib.closing(loaded):  # an error stops the loading threads before it propagates
            for chunk, batches in schedule:
                local = RunningStats(extractor.dim, device)
                for indices in batches:
                    features = extractor(next(loaded).to(device))  # [n, dim]
                    if not torch.isfinite(features).all():
                        raise NonFiniteError(f"{desc}: the feature network produced NaN or Inf")
                    local.update(features)
                    bar.update(min(len(indices) * world, num - bar.n))  # approximate off rank 0's view
                local.all_reduce()
                total.merge(local)
                if progress_dir is not None and chunk.stop < num and distributed.is_main():
                    payload = {"stats": total.state_dict(), "next_index": chunk.stop}
                    fid_cache.save_entry(progress_dir, kind, progress_key, payload)
    if progress_dir is not None and distributed.is_main():
        fid_cache.remove_entry(progress_dir, kind, progress_key)
    return total, start


# ---------------------------------------------------------------------------------------------
# 4. The metric
# ---------------------------------------------------------------------------------------------
def _open(data, resolution: int | None, fit: str):
    """A dataset object as given, or `stylegan_core.data.open_dataset` on a folder / zip path."""
    if not isinstance(data, (str, Path)):
        return data
    from stylegan_core.data import open_dataset

    ds = open_dataset(data, resolution=resolution, fit=fit)
    if len(ds) == 0:
        raise DatasetError(f"{data}: no images found")
    return ds


def _extractor_key(extractor) -> dict[str, Any]:
    return {"network": extractor.identity.name, "substitute": extractor.identity.substitute, "weights_sha256": extractor.digest}


def dataset_stats(ds, fingerprint: str, num: int, extractor, batch_size: int, device, cache_dir: Path,
                  use_cache: bool, resume: bool, desc: str, progress: bool = True) -> tuple[RunningStats, bool, float]:
    """Statistics of the first `num` images of `ds`, from the cache when an entry for exactly
    (dataset fingerprint, num, extractor) exists. Returns (stats, cache_hit, seconds)."""
    t0 = time.perf_counter()
    key = {"dataset": fingerprint, "num_images": num, **_extractor_key(extractor)}
    # Rank 0 decides and broadcasts (the others add zeros), so ranks never disagree about a hit.
    state = fid_cache.load_entry(cache_dir, "fid-stats", key) if use_cache and distributed.is_main() else None
    hit = distributed.all_reduce_sum(torch.tensor([float(state is not None)], device=device)).item() > 0
    if hit:
        stats = RunningStats.from_state_dict(state, device) if state is not None else RunningStats(extractor.dim, device)
        stats.all_reduce()
        return stats, True, time.perf_counter() - t0
    stats, _ = accumulate(
        num, lambda batches: dataset_batches(ds, batches, device), extractor, batch_size, DEFAULT_CHUNK, device,
        cache_dir / "progress" if resume else None, {"what": "dataset", **key, "chunk": DEFAULT_CHUNK}, desc,
        progress, batched=True,
    )
    if distributed.is_main():
        fid_cache.save_entry(cache_dir, "fid-stats", key, stats.state_dict())
    return stats, False, time.perf_counter() - t0


@dataclass(frozen=True)
class FIDConfig:
    """Constants of an FID protocol (stylegan_eval.metrics.registry)."""

    num_samples: int = 50_000  # generated images
    num_real: int | None = 50_000  # dataset images: the first min(num_real, len); None: all of them

    def __post_init__(self):
        if self.num_samples < 2 or (self.num_real is not None and self.num_real < 2):
            raise ConfigError(f"FID needs at least 2 generated and 2 real images, got {self.num_samples}, {self.num_real}")


@dataclass(frozen=True)
class FIDExtras(RecordExtras):
    """Details of an FID measurement (the record's `extras`)."""

    num_real: int  # dataset images in the reference statistics
    cache_hit: bool  # the reference statistics came from the cache
    time_real_s: float
    time_generated_s: float
    time_distance_s: float
    world_size: int  # torch.distributed processes
    device: str
    resumed_from: int | None = None  # generator source: the sample index an interrupted run resumed at
    source_cache_hit: bool | None = None  # folder source: its statistics came from the cache


def compute_fid(
    source,  # a Generator (stylegan_core interface), or a folder / zip / dataset of images
    data,  # the reference dataset: a folder / zip path, or an object from open_dataset
    num_gen: int = 50_000,  # generated images; a folder source uses its first min(num_gen, len) images
    num_real: int = 50_000,  # dataset images: the first min(num_real, len(data))
    batch_size: int = 32,  # per rank; does not change the value
    seed: int = 0,  # sample i's latent and noise depend only on (seed, i)
    device: str | torch.device = "cpu",
    truncation_psi: float = 1.0,  # 1 = no truncation, as the paper's FID
    truncation_cutoff: int | None = None,  # None: truncate every layer (only when psi != 1)
    cache_dir: str | Path | None = None,  # None: fid_cache.default_cache_dir()
    use_cache: bool = True,  # False: recount the dataset statistics (and refresh the cache)
    resume: bool = True,  # continue an interrupted run from its progress file
    chunk_size: int = DEFAULT_CHUNK,  # generated samples between progress saves
    extractor: torch.nn.Module | None = None,  # None: inception.load_inception(device, ...)
    weights_path: str | Path | None = None,  # explicit Inception weights file
    substitute: bool = False,  # random Inception weights when the real ones are absent
    fit: str = "error",  # open_dataset's handling of images of another resolution
    label: str | None = None,  # record.model; default: the folder name or "generator"
    checkpoint: str | None = None,  # the file the generator came from, for the record
    preset: str | None = None,  # the checkpoint's preset name, for the record
    metric: str = "fid",  # record name (the registry's protocols say "fid50k", "fid50k_full")
    progress: bool = True,  # tqdm bars on rank 0
) -> ResultRecord:
    """FID of a generator (or an image folder) against a dataset, as a ResultRecord whose extras
    hold the real/generated counts, whether the dataset statistics came from the cache, and
    timings. Moves G to `device`. Under torchrun every rank must call this with the same
    arguments; all ranks get the record."""
    t_start = time.perf_counter()
    if num_gen < 2 or num_real < 2 or batch_size < 1 or chunk_size < 1:
        raise ConfigError(f"need num_gen, num_real >= 2 and positive batch/chunk sizes, got {num_gen}, {num_real}, {batch_size}, {chunk_size}")
    if not math.isfinite(truncation_psi):
        raise ConfigError(f"truncation_psi must be finite, got {truncation_psi}")
    device = torch.device(device)
    cache_dir = Path(cache_dir) if cache_dir is not None else fid_cache.default_cache_dir()
    if extractor is None:
        from stylegan_eval.inception import load_inception

        extractor = load_inception(device, weights_path=weights_path, substitute=substitute)
    extractor = extractor.to(device)
    is_generator = isinstance(source, torch.nn.Module)

    ds_real = _open(data, source.img_resolution if is_generator else None, fit)
    n_real, real_fp = min(num_real, len(ds_real)), ds_real.fingerprint()
    real, real_hit, t_real = dataset_stats(ds_real, real_fp, n_real, extractor, batch_size, device, cache_dir, use_cache,
                                           resume, "FID real images", progress)

    timings = {"time_real_s": t_real}
    resumed_from = source_hit = None
    t0 = time.perf_counter()
    if is_generator:
        G = source.to(device)
        noise_mode = noise_mode_of(G)
        key = {"what": "generator", "generator_sha256": fid_cache.tensors_sha256(G.state_dict()), "seed": seed,
               "num": num_gen, "truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff,
               "noise_mode": noise_mode, "chunk": chunk_size, **_extractor_key(extractor)}
        gen, resumed_from = accumulate(
            num_gen, lambda idx: generate_uint8(G, idx, seed, truncation_psi, truncation_cutoff, device),
            extractor, batch_size, chunk_size, device, cache_dir / "progress" if resume else None, key, "FID generated",
            progress,
        )
        n_gen = num_gen
        params = {"source": "generator", "noise_mode": noise_mode, "truncation_psi": truncation_psi,
                  "truncation_cutoff": truncation_cutoff}
        prov_label = label or (Path(checkpoint).stem if checkpoint else "generator")
    else:
        ds_gen = _open(source, None, fit)
        n_gen, gen_fp = min(num_gen, len(ds_gen)), ds_gen.fingerprint()
        gen, source_hit, _ = dataset_stats(ds_gen, gen_fp, n_gen, extractor, batch_size, device, cache_dir, use_cache,
                                           resume, "FID source images", progress)
        params = {"source": str(source) if isinstance(source, (str, Path)) else "dataset", "source_fingerprint": gen_fp}
        prov_label = label or (Path(source).name if isinstance(source, (str, Path)) else "dataset")
    timings["time_generated_s"] = time.perf_counter() - t0

    t0 = time.perf_counter()
    value = fid_from_stats(gen, real)
    params.update(num_gen=n_gen, num_real=n_real, batch_size=batch_size,
                  data=str(data) if isinstance(data, (str, Path)) else "dataset", data_fingerprint=real_fp)
    extras = FIDExtras(num_real=n_real, cache_hit=real_hit, time_distance_s=time.perf_counter() - t0,
                       world_size=distributed.world_size(), device=str(device), resumed_from=resumed_from,
                       source_cache_hit=source_hit, **timings)
    result = MetricResult(metric=metric, value=value, params=params, num_samples=n_gen, seed=seed,
                          feature_network=extractor.identity, wall_time_s=time.perf_counter() - t_start, extras=extras)
    prov = Provenance(prov_label, None, None, preset) if checkpoint is None else Provenance.of_checkpoint(checkpoint, prov_label, preset)
    return prov.record(result)
