"""stylegan_eval.metrics.precision_recall: k-NN radii against a direct O(N^2) computation, hand
and closed-form cases, batch-size independence, and decision-for-decision agreement with
torch-fidelity's metric_prc on the same features (ties included)."""

import numpy as np
import pytest
import torch
from PIL import Image
from torch_fidelity.metric_prc import calculate_precision_recall_full, calculate_precision_recall_part

from stylegan_core.data import open_dataset
from stylegan_core.errors import ConfigError
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.metrics.fid import generate_uint8, load_images
from stylegan_eval.metrics.kid import compute_kid
from stylegan_eval.metrics.precision_recall import PRResult, compute_pr, knn_radii, precision_recall

from tests.eval.metrics.test_feature_store import ColourFeatures
from tests.eval.test_inception import install_standin
from tests.eval.test_vgg16 import install_standin_vgg16


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


# ----------------------------------------------------------------------------------------------
# The metric on a generator and a dataset
# ----------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("pr") / "data", 24, 16, seed=0)


def test_compute_pr_is_the_estimate_on_the_samples_features(data_dir, tmp_path):
    G = Generator(get_preset("F-test16").generator).eval()
    m = compute_pr(G, data_dir, num_gen=12, num_real=20, batch_size=12, distance_batch=7, seed=2, cache_dir=tmp_path,
                   extractor=ColourFeatures())
    fake = ColourFeatures()(generate_uint8(G, list(range(12)), 2, 1.0, None, "cpu")).numpy()
    real = ColourFeatures()(load_images(open_dataset(data_dir), range(20))).numpy()
    assert m.pr == precision_recall(real, fake, batch=7)
    assert (m.pr.num_real, m.pr.num_fake, m.real_cache_hit) == (20, 12, False)
    assert m.feature_network == ColourFeatures.identity
    assert not list((tmp_path / "progress").iterdir())  # generated features are temporary


def test_compute_pr_of_a_folder_against_itself_is_one(data_dir, tmp_path):
    m = compute_pr(data_dir, data_dir, cache_dir=tmp_path, extractor=ColourFeatures())
    assert (m.pr.precision, m.pr.recall) == (1.0, 1.0) and (m.pr.num_real, m.pr.num_fake) == (24, 24)


def write_folder(path, seed, n, size=16, offset=0):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = np.clip(rng.integers(0, 256, (size, size, 3)) // 2 + offset, 0, 255).astype(np.uint8)
        Image.fromarray(img, "RGB").save(path / f"{i:03d}.png")
    return path


@pytest.mark.slow
def test_folders_agree_with_torch_fidelity_calculate_metrics(torch_home, tmp_path, monkeypatch):
    """The whole path (folder reading, both real feature networks loaded by our safe loaders from
    the stand-in files named by their environment variables, the estimators) against
    torch-fidelity's own on the same stand-in weights (its loader trusted only because the test
    wrote the files)."""
    import torch_fidelity
    from torch_fidelity.metric_kid import kid_features_to_metric

    inception_weights = install_standin(torch_home, tmp_path.parent, monkeypatch)
    vgg16_weights = install_standin_vgg16(torch_home, monkeypatch)
    # Generated: 5 darker images; real: 2 of them and 2 brighter ones (torch-fidelity's input1 is
    # the generated set).
    fake, real = write_folder(tmp_path / "fake", 0, 5), write_folder(tmp_path / "real", 1, 2, offset=100)
    for name in ("001.png", "003.png"):
        (real / f"copy-{name}").write_bytes((fake / name).read_bytes())
    # One call per feature network: a single weights path applies to every extractor of a call.
    common = dict(input1=str(fake), input2=str(real), cuda=False, cache=False, verbose=False, batch_size=4,
                  save_cpu_ram=True)  # no DataLoader workers
    theirs = torch_fidelity.calculate_metrics(
        **common, kid=True, kid_subsets=10, kid_subset_size=3, rng_seed=7,
        feature_extractor_weights_path=str(inception_weights),
    )
    theirs |= torch_fidelity.calculate_metrics(**common, prc=True, feature_extractor_weights_path=str(vgg16_weights))
    kid = compute_kid(fake, real, num_subsets=10, subset_size=3, seed=7, batch_size=4, cache_dir=tmp_path / "c")
    pr = compute_pr(fake, real, batch_size=4, cache_dir=tmp_path / "c")
    assert not kid.feature_network.substitute and not pr.feature_network.substitute
    assert (kid.feature_network.weights, pr.feature_network.weights) == (str(inception_weights), str(vgg16_weights))
    assert (pr.pr.precision, pr.pr.recall) == (theirs["precision"], theirs["recall"])
    # The two copies lie in the generated manifold, the brighter two do not; with 4 real samples a
    # k = 3 radius reaches the farthest real sample, so every generated image is inside.
    assert (pr.pr.num_real, pr.pr.num_fake, pr.pr.precision, pr.pr.recall) == (4, 5, 1.0, 0.5)
    # torch-fidelity sums the kernel matrices (entries of order 1) in float32, ours in float64: they
    # differ by float32 round-off (4e-7 here, 1.4e-5 relative to this small KID). Its estimator run
    # in float64 on our stored Inception features draws the same subsets and agrees to 1e-12.
    assert kid.kid.mean == pytest.approx(theirs["kernel_inception_distance_mean"], abs=2e-6)
    assert kid.kid.std == pytest.approx(theirs["kernel_inception_distance_std"], abs=2e-6)
    stored = {len(a): a for a in (np.load(p) for p in (tmp_path / "c").glob("features-*/features.npy")) if a.shape[1] == 2048}
    exact = kid_features_to_metric(torch.from_numpy(stored[5]).double(), torch.from_numpy(stored[4]).double(),
                                   kid_subsets=10, kid_subset_size=3, rng_seed=7, verbose=False)
    assert kid.kid.mean == pytest.approx(exact["kernel_inception_distance_mean"], rel=1e-12)
