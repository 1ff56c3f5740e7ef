"""stylegan_eval.metrics.image_metrics on the one KID / precision-recall path: feature rows on disk
(the dataset's cached, a generator's from the shared image pass, a folder's like a dataset's) into
the estimators, and the whole path against torch-fidelity's `calculate_metrics` on two folders."""

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core.data import open_dataset
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.metrics.feature_store import dataset_features
from stylegan_eval.metrics.fid import load_images
from stylegan_eval.metrics.generation import generate_uint8
from stylegan_eval.metrics.image_metrics import KIDConfig, PRConfig, kid_result, pr_results
from stylegan_eval.metrics.kid import kid_from_features, mmd2_unbiased
from stylegan_eval.metrics.measure import MeasureInputs, measure
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.metrics.precision_recall import precision_recall
from stylegan_eval.metrics.registry import Protocol

from tests.eval.metrics.test_fid import PixelFeatures, PixelPRFeatures
from tests.eval.test_inception import install_standin
from tests.eval.test_lpips_net import install_standin_vgg16


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("kid-pr") / "data", 24, 16, seed=0)


@pytest.fixture(scope="module")
def G():
    return Generator(get_preset("F-test16").generator).eval()


def features_of(net, G, data_dir, num_gen, num_real, seed):
    fake = net(generate_uint8(G, list(range(num_gen)), seed, device="cpu")).numpy()
    real = net(load_images(open_dataset(data_dir), range(num_real))).numpy()
    return real, fake


def test_a_generators_kid_and_pr_are_the_estimates_on_its_samples_features(G, data_dir, tmp_path):
    kid = Protocol("kid", "kid", KIDConfig(num_samples=12, num_real=20, num_subsets=5, subset_size=8))
    pr = Protocol("pr", "pr", PRConfig(num_samples=12, num_real=20, distance_batch=7))
    cache = tmp_path / "cache"
    inception, vgg = PixelFeatures(), PixelPRFeatures()
    opts = MetricOptions(G=G, seed=1, batch_size=12, cache_dir=cache, progress=False)
    got = measure([kid, pr], opts, MeasureInputs(data=data_dir, inception=inception, pr_features=vgg))
    real, fake = features_of(PixelFeatures(), G, data_dir, 12, 20, seed=1)
    want = kid_from_features(real, fake, 5, 8, seed=1)
    assert (got[0].value, got[0].extras.std, got[0].extras.subset_size) == (want.mean, want.std, 8)
    assert got[0].extras.num_real == 20 and got[0].num_samples == 12 and got[0].value > 0
    assert got[0].feature_network == PixelFeatures.identity and got[1].feature_network == PixelPRFeatures.identity
    want = precision_recall(*features_of(PixelPRFeatures(), G, data_dir, 12, 20, seed=1), batch=7)
    assert [r.metric for r in got[1:]] == ["pr_precision", "pr_recall"]
    assert (got[1].value, got[2].value) == (want.precision, want.recall)
    # The dataset's rows are cached like its FID statistics; one run's generated rows are removed.
    assert len(list(cache.glob("features-*/features.npy"))) == 2 and not list((cache / "progress").iterdir())
    inception, vgg = PixelFeatures(), PixelPRFeatures()
    opts = MetricOptions(G=G, seed=1, batch_size=3, cache_dir=cache, progress=False)
    again = measure([kid, pr], opts, MeasureInputs(data=data_dir, inception=inception, pr_features=vgg))
    assert inception.calls == vgg.calls == 4  # 12 generated images in batches of 3; the real rows cached
    # Another batch size: the generator may round a pixel differently (see the FID tests), nothing else.
    assert again[0].value == pytest.approx(got[0].value, rel=1e-3)
    assert [r.value for r in again[1:]] == [r.value for r in got[1:]]


def folder_results(fake_dir, real_dir, inception, vgg, cache, kid_config, pr_config, seed):
    """KID and precision/recall of one image folder against another: a folder's rows are a
    dataset's (cached by the same key)."""
    stores = {}
    for net in (inception, vgg):
        stores[net] = [dataset_features(open_dataset(d), len(open_dataset(d)), net, 4, "cpu", cache, True,
                                        progress=False)[0] for d in (real_dir, fake_dir)]
    kid = kid_result("kid", kid_config, *stores[inception], seed, inception.identity, 0.0, "cpu")
    pr = pr_results("pr", pr_config, *stores[vgg], seed, vgg.identity, 0.0, "cpu")
    return kid, pr[0], pr[1]


def test_a_folder_against_itself(data_dir, tmp_path):
    # Subsets as large as the folder: every subset is the whole folder, so every estimate is the
    # unbiased MMD^2 of the set with itself: slightly negative, the same for every subset.
    kid, precision, recall = folder_results(data_dir, data_dir, PixelFeatures(), PixelPRFeatures(), tmp_path,
                                            KIDConfig(num_samples=50, num_real=None, num_subsets=4, subset_size=50),
                                            PRConfig(num_samples=50, num_real=None), 0)
    rows = PixelFeatures()(load_images(open_dataset(data_dir), range(24))).numpy()
    assert kid.num_samples == kid.extras.num_real == kid.extras.subset_size == 24
    assert kid.value == pytest.approx(mmd2_unbiased(rows, rows), rel=1e-9) and kid.extras.std < 1e-12
    assert -0.05 < kid.value < 0
    assert (precision.value, recall.value) == (1.0, 1.0) and precision.extras.num_real == 24


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

    from stylegan_eval.inception import load_inception
    from stylegan_eval.metrics.precision_recall import load_pr_features

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
    kid, precision, recall = folder_results(fake, real, load_inception(), load_pr_features(), tmp_path / "c",
                                            KIDConfig(num_samples=5, num_real=None, num_subsets=10, subset_size=3),
                                            PRConfig(num_samples=5, num_real=None), 7)
    assert not kid.feature_network.substitute and not precision.feature_network.substitute
    assert (kid.feature_network.weights, precision.feature_network.weights) == (str(inception_weights),
                                                                                str(vgg16_weights))
    assert (precision.value, recall.value) == (theirs["precision"], theirs["recall"])
    # The two copies lie in the generated manifold, the brighter two do not; with 4 real samples a
    # k = 3 radius reaches the farthest real sample, so every generated image is inside.
    assert (precision.extras.num_real, precision.num_samples, precision.value, recall.value) == (4, 5, 1.0, 0.5)
    # torch-fidelity sums the kernel matrices (entries of order 1) in float32, ours in float64: they
    # differ by float32 round-off (4e-7 here, 1.4e-5 relative to this small KID). Its estimator run
    # in float64 on our stored Inception features draws the same subsets and agrees to 1e-12.
    assert kid.value == pytest.approx(theirs["kernel_inception_distance_mean"], abs=2e-6)
    assert kid.extras.std == pytest.approx(theirs["kernel_inception_distance_std"], abs=2e-6)
    stored = {len(a): a for a in (np.load(p) for p in (tmp_path / "c").glob("features-*/features.npy")) if a.shape[1] == 2048}
    exact = kid_features_to_metric(torch.from_numpy(stored[5]).double(), torch.from_numpy(stored[4]).double(),
                                   kid_subsets=10, kid_subset_size=3, rng_seed=7, verbose=False)
    assert kid.value == pytest.approx(exact["kernel_inception_distance_mean"], rel=1e-12)
