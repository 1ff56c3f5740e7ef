"""stylegan_eval.metrics.kid: the unbiased MMD^2 against its definition and a hand-computed value,
the subset rules, and agreement with torch-fidelity's own KID on the same features and seed."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric

from stylegan_core.errors import ConfigError
from stylegan_eval.metrics.kid import KIDResult, kid_from_features, mmd2_unbiased, polynomial_kernel


def features(seed, n, d=16, shift=0.0):
    return np.random.default_rng(seed).standard_normal((n, d)) + shift


def torch_fidelity_kid(real, fake, subsets, size, seed):
    """torch-fidelity's estimator on the same rows; its input1 is the generated set."""
    out = kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=subsets,
                                 kid_subset_size=size, rng_seed=seed, verbose=False)
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


# ----------------------------------------------------------------------------------------------
# The estimator
# ----------------------------------------------------------------------------------------------
def test_kernel_is_the_cubic_polynomial():
    x, y = features(0, 3, 5), features(1, 4, 5)
    want = np.array([[(xi @ yj / 5 + 1) ** 3 for yj in y] for xi in x])
    assert polynomial_kernel(x, y).dtype == np.float64
    np.testing.assert_allclose(polynomial_kernel(x, y), want, rtol=1e-13)


def test_hand_computed_value():
    # D = 1: k(a, b) = (ab + 1)^3. Within x: k(0, 1) = 1; within y: k(2, 3) = 343;
    # cross: k(0, 2) + k(0, 3) + k(1, 2) + k(1, 3) = 1 + 1 + 27 + 64 = 93, mean 23.25.
    assert mmd2_unbiased([[0.0], [1.0]], [[2.0], [3.0]]) == 1 + 343 - 2 * 23.25


def test_matches_the_definition_with_unequal_set_sizes():
    x, y = features(2, 5, 3), features(3, 7, 3, shift=0.5)
    k = lambda a, b: (a @ b / 3 + 1) ** 3  # noqa: E731
    within_x = np.mean([k(x[i], x[j]) for i in range(5) for j in range(5) if i != j])
    within_y = np.mean([k(y[i], y[j]) for i in range(7) for j in range(7) if i != j])
    cross = np.mean([k(a, b) for a in x for b in y])
    assert mmd2_unbiased(x, y) == pytest.approx(within_x + within_y - 2 * cross, rel=1e-12)


def test_identical_sets_give_about_zero_and_shifted_sets_do_not():
    x = features(4, 400)
    same = kid_from_features(x, x, num_subsets=20, subset_size=100, seed=1)
    other = kid_from_features(x, features(5, 400, shift=0.5), num_subsets=20, subset_size=100, seed=1)
    # Unbiased: zero in expectation, either sign in a sample.
    assert abs(same.mean) < 0.05 * other.mean and other.mean > 0.1
    # One subset holding every row of identical sets: both within-set terms are the off-diagonal
    # mean of K, the cross term is the mean of all of K (diagonal included), so the value is < 0.
    m = 400
    k = polynomial_kernel(x, x)
    offdiag = (k.sum() - np.trace(k)) / (m * (m - 1))
    full = kid_from_features(x, x, num_subsets=1, subset_size=m, seed=0)
    assert full.mean == pytest.approx(2 * offdiag - 2 * k.mean(), rel=1e-10) and full.mean < 0


def test_far_apart_sets_are_far():
    x = features(6, 50)
    assert kid_from_features(x, x + 10.0, num_subsets=5, subset_size=20).mean > 100


# ----------------------------------------------------------------------------------------------
# Subsets and seeds
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("subsets,size,seed", [(100, 50, 2020), (7, 13, 0), (3, 2, 5)])
def test_equals_torch_fidelity_on_the_same_features_and_seed(subsets, size, seed):
    real, fake = features(7, 120), features(8, 90, shift=0.2)
    ours = kid_from_features(real, fake, num_subsets=subsets, subset_size=size, seed=seed)
    mean, std = torch_fidelity_kid(real, fake, subsets, size, seed)
    assert ours == KIDResult(mean=ours.mean, std=ours.std, num_subsets=subsets, subset_size=size)
    assert ours.mean == pytest.approx(mean, rel=1e-12) and ours.std == pytest.approx(std, rel=1e-10)


def test_float32_features_agree_with_torch_fidelitys_float32_arithmetic():
    real, fake = features(9, 200, 64).astype(np.float32), features(10, 200, 64, shift=0.3).astype(np.float32)
    ours = kid_from_features(real, fake, num_subsets=10, subset_size=100, seed=3)
    mean, _ = torch_fidelity_kid(real, fake, 10, 100, 3)
    assert ours.mean == pytest.approx(mean, rel=1e-6)


def test_subset_size_is_clipped_to_the_smaller_set_as_stylegan2_ada():
    real, fake = features(11, 30), features(12, 12, shift=0.4)
    clipped = kid_from_features(real, fake, num_subsets=4, subset_size=1000, seed=2)
    assert clipped.subset_size == 12
    assert clipped == kid_from_features(real, fake, num_subsets=4, subset_size=12, seed=2)
    # Every generated row is in every subset, so one subset of a set of 12 from 12 is the set itself.
    single = kid_from_features(fake, fake, num_subsets=1, subset_size=50, seed=2)
    assert single.mean == pytest.approx(mmd2_unbiased(fake, fake), rel=1e-12) and single.std == 0


def test_seed_objects_and_determinism():
    real, fake = features(13, 60), features(14, 60, shift=0.3)
    a = kid_from_features(real, fake, num_subsets=5, subset_size=20, seed=9)
    assert a == kid_from_features(real, fake, num_subsets=5, subset_size=20, seed=9)
    assert a == kid_from_features(real, fake, num_subsets=5, subset_size=20, seed=np.random.RandomState(9))
    other = kid_from_features(real, fake, num_subsets=5, subset_size=20, seed=10)
    gen = kid_from_features(real, fake, num_subsets=5, subset_size=20, seed=np.random.default_rng(9))
    assert other.mean != a.mean and gen.mean != a.mean


def test_memory_mapped_features_give_the_same_value(tmp_path):
    real, fake = features(15, 40).astype(np.float32), features(16, 40, shift=0.3).astype(np.float32)
    np.save(tmp_path / "real.npy", real)
    mapped = np.load(tmp_path / "real.npy", mmap_mode="r")
    assert kid_from_features(mapped, fake, num_subsets=3, subset_size=10) == kid_from_features(
        real, fake, num_subsets=3, subset_size=10)


def test_errors():
    x = features(17, 10)
    with pytest.raises(ValueError, match=r"expected feature rows \[N, D\] and \[M, D\], got \(10, 16\) and \(10, 8\)"):
        kid_from_features(x, x[:, :8])
    with pytest.raises(ConfigError, match="at least 2 real and 2 generated samples, got 10 and 1"):
        kid_from_features(x, x[:1])
    with pytest.raises(ConfigError, match="num_subsets >= 1 and subset_size >= 2, got 0 and 1000"):
        kid_from_features(x, x, num_subsets=0)
    with pytest.raises(ConfigError, match="seed must be a non-negative int"):
        kid_from_features(x, x, seed=-1)
    with pytest.raises(ValueError, match="at least 2 rows per set"):
        mmd2_unbiased(x[:1], x)


# ----------------------------------------------------------------------------------------------
# The metric on a generator and a dataset
# ----------------------------------------------------------------------------------------------
