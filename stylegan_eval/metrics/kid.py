"""Kernel Inception Distance (Bińkowski et al. 2018, "Demystifying MMD GANs", arXiv 1801.01401).

KID is the squared maximum mean discrepancy between generated and real Inception-v3 pool3
features (the FID features) under the cubic polynomial kernel k(x, y) = (x.y / D + 1)^3, estimated
without bias and averaged over random subsets: kid50k in NVlabs/stylegan2-ada-pytorch
(`metrics/kernel_inception_distance.py`: 100 subsets of 1,000) and torch-fidelity's `metric_kid.py`
(same defaults). Unlike FID it has no bias from the sample count, so it stays meaningful with few
samples, and it can be slightly negative when the two sets come from one distribution.

Subsets are drawn as both references draw them: per subset, first the generated rows, then the
real rows, each `rng.choice(n, m, replace=False)`; an integer seed means
`np.random.RandomState(seed)` as torch-fidelity's `rng_seed`, so the same seed gives the same
subsets and the same value. Where torch-fidelity refuses a subset larger than a sample set,
stylegan2-ada clips it to the smaller set; we clip too and report the size used.

`polynomial_kernel`, `mmd2_unbiased`, `kid_from_features`: pure float64 math on arrays (any
array-like with `.shape` and integer-array indexing, e.g. a memory-mapped feature store). The
kid50k protocol (stylegan_eval.metrics.registry) runs it on rows streamed to disk by the shared
image pass (stylegan_eval.metrics.image_metrics.kid_result).
"""

from dataclasses import dataclass

import numpy as np

from stylegan_core.errors import ConfigError

KID50K_SUBSETS = 100  # stylegan2-ada kid50k and torch-fidelity's kid_subsets
KID50K_SUBSET_SIZE = 1000  # stylegan2-ada max_subset_size and torch-fidelity's kid_subset_size
TORCH_FIDELITY_SEED = 2020  # torch-fidelity's default rng_seed, for reproducing its numbers


@dataclass(frozen=True)
class KIDResult:
    mean: float  # KID: the mean of the subsets' unbiased MMD^2 estimates
    std: float  # their standard deviation (np.std, ddof=0, as torch-fidelity reports it)
    num_subsets: int
    subset_size: int  # rows per subset actually used (clipped to the smaller sample set)


def polynomial_kernel(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """k(x, y) = (x.y / D + 1)^3 for rows x [m, D], y [n, D] -> [m, n], float64."""
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    return (x @ y.T / x.shape[1] + 1.0) ** 3


def mmd2_unbiased(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 between rows x [m, D] and y [n, D] under `polynomial_kernel`, float64.

    mean_{i != j} k(x_i, x_j) + mean_{i != j} k(y_i, y_j) - 2 mean_{i, j} k(x_i, y_j): the
    within-set terms leave out the diagonal (a sample against itself), the cross term keeps all
    pairs (Bińkowski et al. eq. 3; the "unbiased" estimator of both reference implementations).
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if x.ndim != 2 or y.ndim != 2 or x.shape[1] != y.shape[1]:
        raise ValueError(f"expected feature rows [m, D] and [n, D], got {x.shape} and {y.shape}")
    m, n = x.shape[0], y.shape[0]
    if m < 2 or n < 2:
        raise ValueError(f"the unbiased estimate needs at least 2 rows per set, got {m} and {n}")
    k_xx, k_yy, k_xy = polynomial_kernel(x, x), polynomial_kernel(y, y), polynomial_kernel(x, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return float(within_x + within_y - 2.0 * k_xy.sum() / (m * n))


def _rng(seed) -> np.random.RandomState | np.random.Generator:
    if isinstance(seed, (np.random.RandomState, np.random.Generator)):
        return seed
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool) and seed >= 0:
        return np.random.RandomState(int(seed))  # torch-fidelity's RNG for its rng_seed
    raise ConfigError(f"KID seed must be a non-negative int, np.random.RandomState or Generator, got {seed!r}")


def kid_from_features(
    real,  # [N, D] real features (ndarray, memmap, or anything indexable by an index array)
    fake,  # [M, D] generated features
    num_subsets: int = KID50K_SUBSETS,
    subset_size: int = KID50K_SUBSET_SIZE,  # clipped to min(N, M)
    seed=0,  # int (-> np.random.RandomState(seed)), a RandomState, or a np.random.Generator
) -> KIDResult:
    """KID between real and generated feature rows, averaged over `num_subsets` subsets."""
    if len(real.shape) != 2 or len(fake.shape) != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"expected feature rows [N, D] and [M, D], got {tuple(real.shape)} and {tuple(fake.shape)}")
    if num_subsets < 1 or subset_size < 2:
        raise ConfigError(f"KID needs num_subsets >= 1 and subset_size >= 2, got {num_subsets} and {subset_size}")
    n_real, n_fake = real.shape[0], fake.shape[0]
    m = min(subset_size, n_real, n_fake)
    if m < 2:
        raise ConfigError(f"KID needs at least 2 real and 2 generated samples, got {n_real} and {n_fake}")
    rng = _rng(seed)
    mmds = np.empty(num_subsets, dtype=np.float64)
    for s in range(num_subsets):
        fake_rows = rng.choice(n_fake, m, replace=False)  # generated first, as both references
        real_rows = rng.choice(n_real, m, replace=False)
        mmds[s] = mmd2_unbiased(fake[fake_rows], real[real_rows])
    return KIDResult(mean=float(mmds.mean()), std=float(mmds.std()), num_subsets=num_subsets, subset_size=m)
