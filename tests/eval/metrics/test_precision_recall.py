"""stylegan_eval.metrics.precision_recall: k-NN radii against a direct O(N^2) computation, hand
and closed-form cases, batch-size independence, and decision-for-decision agreement with
torch-fidelity's metric_prc on the same features (ties included)."""

import numpy as np
import pytest
import torch
from torch_fidelity.metric_prc import calculate_precision_recall_full, calculate_precision_recall_part

from stylegan_core.errors import ConfigError
from stylegan_eval.metrics.precision_recall import PRResult, knn_radii, precision_recall


def features(seed, n, d=16, shift=0.0, dtype=np.float32):
    return (np.random.default_rng(seed).standard_normal((n, d)) + shift).astype(dtype)


def integer_features(seed, n, d=8, high=4):
    """Small integers: float32 distances are exact (squared norms < 2^24), so every tile shape
    gives the same numbers, and many distances tie."""
    return np.random.default_rng(seed).integers(-high, high + 1, (n, d)).astype(np.float32)


def direct_radii(x, k):
    """O(N^2) float64 reference: (k+1)-th smallest distance of each row to all rows, itself included."""
    x = x.astype(np.float64)
    dist = np.sqrt(((x[:, None, :] - x[None, :, :]) ** 2).sum(-1))  # [N, N]
    return np.sort(dist, axis=1)[:, k]


def torch_fidelity_pr(real, fake, k=3, batch=10000, part=False):
    fn = calculate_precision_recall_part if part else calculate_precision_recall_full
    return fn(torch.from_numpy(fake), torch.from_numpy(real), k, batch)  # input1 is the generated set


# ----------------------------------------------------------------------------------------------
# Radii
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("k", [1, 3, 5])
def test_radii_match_a_direct_computation(k):
    x = features(0, 40, 12, dtype=np.float64)
    np.testing.assert_allclose(knn_radii(x, k, batch=16).numpy(), direct_radii(x, k), rtol=1e-10)
    x32 = integer_features(1, 50)
    assert np.array_equal(knn_radii(x32, k, batch=7).numpy(), direct_radii(x32, k).astype(np.float32))


def test_duplicates_count_as_neighbours():
    x = np.array([[0.0], [0.0], [0.0], [0.0], [5.0]], dtype=np.float32)
    # Three copies besides itself: the 3rd nearest other sample of each zero is at distance 0.
    assert knn_radii(x, 3, batch=2).tolist() == [0.0, 0.0, 0.0, 0.0, 5.0]


@pytest.mark.parametrize("batch", [26, 27, 49, 50, 64, 1000])
def test_radii_do_not_depend_on_batch_size(batch):
    # Tiles with more than 25 rows or columns: torch.cdist's matrix-product path, exact here.
    x = integer_features(2, 90)
    assert torch.equal(knn_radii(x, 3, batch=batch), knn_radii(x, 3, batch=90))
    y = features(3, 60, 32)
    np.testing.assert_allclose(knn_radii(y, 3, batch=batch).numpy(), direct_radii(y, 3), rtol=1e-5)


@pytest.mark.parametrize("batch", [1, 2, 7, 25])
def test_tiny_tiles_differ_by_sqrt_rounding_only(batch):
    # Tiles of at most 25 x 25 take torch.cdist's per-pair path (as in torch-fidelity), whose
    # float32 square root can round to the neighbouring float.
    x = integer_features(2, 90)
    np.testing.assert_allclose(knn_radii(x, 3, batch=batch).numpy(), knn_radii(x, 3, batch=90).numpy(), rtol=2e-7, atol=0)


# ----------------------------------------------------------------------------------------------
# Precision and recall
# ----------------------------------------------------------------------------------------------
def test_hand_computed_case():
    real = np.array([[0.0], [1.0], [2.0], [3.0], [4.0]], dtype=np.float32)
    fake = np.array([[0.5], [10.0]], dtype=np.float32)
    # k = 1: real radii are 1, so 0.5 is inside and 10 is not; the two generated samples' radii
    # are 9.5, so every real sample is inside the ball around 0.5.
    assert precision_recall(real, fake, k=1) == PRResult(precision=0.5, recall=1.0, k=1, num_real=5, num_fake=2)


def test_identical_sets_give_one_and_far_apart_sets_zero():
    x = features(4, 64)
    assert precision_recall(x, x.copy(), batch=10) == PRResult(1.0, 1.0, 3, 64, 64)
    far = precision_recall(x, features(5, 48) + 100.0, batch=10)
    assert (far.precision, far.recall, far.num_fake) == (0.0, 0.0, 48)


def test_partial_overlap_is_between():
    real, fake = features(6, 80), features(7, 80, shift=1.0)
    result = precision_recall(real, fake, batch=32)
    assert 0.0 < result.precision < 1.0 and 0.0 < result.recall < 1.0


@pytest.mark.parametrize("batch", [1, 5, 13, 30, 1000])
def test_values_do_not_depend_on_batch_size(batch):
    real, fake = features(8, 70, 24), features(9, 55, 24, shift=0.7)
    assert precision_recall(real, fake, batch=batch) == precision_recall(real, fake, batch=10000)


@pytest.mark.parametrize("batch", [4, 17, 10000])
@pytest.mark.parametrize("k", [1, 3])
def test_equals_torch_fidelity_exactly(batch, k):
    real, fake = features(10, 90, 24), features(11, 70, 24, shift=0.6)
    ours = precision_recall(real, fake, k=k, batch=batch)
    full = torch_fidelity_pr(real, fake, k, batch)
    part = torch_fidelity_pr(real, fake, k, batch, part=True)
    assert (ours.precision, ours.recall) == full == part


def test_equals_torch_fidelity_with_ties():
    real, fake = integer_features(12, 60, d=3, high=1), integer_features(13, 45, d=3, high=1)
    ours = precision_recall(real, fake, batch=8)
    assert (ours.precision, ours.recall) == torch_fidelity_pr(real, fake, 3, 8)
    assert 0 < ours.precision and 0 < ours.recall


def test_tensors_and_float64():
    real, fake = features(14, 30, dtype=np.float64), features(15, 30, shift=0.5, dtype=np.float64)
    assert precision_recall(torch.from_numpy(real), torch.from_numpy(fake)) == precision_recall(real, fake)


def test_errors():
    x = features(16, 3)
    with pytest.raises(ConfigError, match="with k=3 need at least 4 samples, got 3"):
        knn_radii(x)
    with pytest.raises(ConfigError, match="k >= 1 and batch >= 1, got k=3, batch=0"):
        precision_recall(features(17, 10), features(18, 10), batch=0)
    with pytest.raises(ValueError, match="real and generated features differ"):
        precision_recall(features(17, 10), features(18, 10, d=8))
    with pytest.raises(ValueError, match=r"expected feature rows \[N, D\]"):
        knn_radii(np.zeros(5, dtype=np.float32))
