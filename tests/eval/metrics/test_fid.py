"""stylegan_eval.metrics.fid: the distance against closed forms and scipy, the running statistics against
NumPy, the sampling loop's determinism and resumption, its errors, and agreement with
torch-fidelity's own calculate_metrics on the same folders and weights file."""

import math
import os
import shutil
import socket
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from PIL import Image

from stylegan_core import distributed
from stylegan_core.errors import DatasetError, NonFiniteError
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.seeding import per_sample_noise
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.metrics.fid import (
    RunningStats,
    compute_fid,
    frechet_distance,
    trace_sqrt_product,
)
from stylegan_eval.metrics.generation import generate_uint8
from stylegan_eval.records import FeatureNetwork

from tests.eval.test_inception import install_standin


def random_cov(rng, d, n=None, scale=1.0):
    """A well-conditioned (n >= d samples) or rank-deficient (n < d) covariance."""
    x = rng.standard_normal((n or 4 * d, d)) * scale
    return x.mean(0), np.cov(x, rowvar=False)


def sqrtm_fid(mu1, s1, mu2, s2):
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


# ----------------------------------------------------------------------------------------------
# The distance
# ----------------------------------------------------------------------------------------------
def test_identical_gaussians_give_zero():
    mu, s = random_cov(np.random.default_rng(0), 32)
    assert frechet_distance(mu, s, mu, s) == pytest.approx(0.0, abs=1e-9)


def test_diagonal_covariances_give_the_analytic_value():
    rng = np.random.default_rng(1)
    a, b = rng.uniform(0.1, 3.0, 20), rng.uniform(0.1, 3.0, 20)
    expected = float(np.sum((np.sqrt(a) - np.sqrt(b)) ** 2))
    assert frechet_distance(np.zeros(20), np.diag(a), np.zeros(20), np.diag(b)) == pytest.approx(expected, rel=1e-12)


def test_mean_shift_adds_its_squared_norm():
    rng = np.random.default_rng(2)
    mu, s1 = random_cov(rng, 24)
    _, s2 = random_cov(rng, 24, scale=1.5)
    shift = rng.standard_normal(24)
    base = frechet_distance(mu, s1, mu, s2)
    assert frechet_distance(mu, s1, mu + shift, s2) == pytest.approx(base + shift @ shift, rel=1e-10)


@pytest.mark.parametrize("d", [8, 64, 128])
def test_agrees_with_scipy_sqrtm_on_well_conditioned_inputs(d):
    rng = np.random.default_rng(d)
    mu1, s1 = random_cov(rng, d)
    mu2, s2 = random_cov(rng, d, scale=1.3)
    mu2 = mu2 + 0.1
    assert frechet_distance(mu1, s1, mu2, s2) == pytest.approx(sqrtm_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_singular_covariances_warn_and_stay_exact():
    # Rank-deficient diagonal covariances: Tr sqrt(S1 S2) = sum sqrt(a_i b_i) exactly.
    a = np.array([2.0, 0.0, 1.0, 0.0, 0.5])
    b = np.array([1.0, 3.0, 0.0, 0.0, 0.5])
    for s1, s2 in ((a, b), (a, np.ones(5)), (np.ones(5), b)):
        want = s1.sum() + s2.sum() - 2 * np.sqrt(s1 * s2).sum()
        with pytest.warns(RuntimeWarning, match=r"singular covariance \(sigma"):
            got = frechet_distance(np.zeros(5), np.diag(s1), np.zeros(5), np.diag(s2))
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12)


def test_few_samples_in_many_dimensions_warn_and_match_sqrtm():
    rng = np.random.default_rng(3)
    mu1, s1 = random_cov(rng, 64, n=10)
    mu2, s2 = random_cov(rng, 64, n=12)
    with pytest.warns(RuntimeWarning, match=r"singular covariance \(sigma1, sigma2\): fewer samples than the 64"):
        got = frechet_distance(mu1, s1, mu2, s2)
    assert math.isfinite(got)
    assert got == pytest.approx(sqrtm_fid(mu1, s1, mu2, s2), rel=1e-6)


def test_trace_sqrt_product_is_symmetric_and_real():
    rng = np.random.default_rng(4)
    _, s1 = random_cov(rng, 16)
    _, s2 = random_cov(rng, 16, n=8)
    assert trace_sqrt_product(s1, s2) == pytest.approx(trace_sqrt_product(s2, s1), rel=1e-10)


def test_rejects_non_finite_and_mismatched_inputs():
    mu, s = np.zeros(3), np.eye(3)
    with pytest.raises(NonFiniteError, match="sigma2 contains NaN"):
        frechet_distance(mu, s, mu, np.full((3, 3), np.nan))
    with pytest.raises(ValueError, match="shape mismatch"):
        frechet_distance(mu, s, np.zeros(4), np.eye(4))


# ----------------------------------------------------------------------------------------------
# Running statistics
# ----------------------------------------------------------------------------------------------
def test_running_stats_equal_numpy_on_stacked_features():
    rng = np.random.default_rng(5)
    x = rng.standard_normal((300, 7)).astype(np.float32) * 3 + 5  # float32 rows, like Inception's
    whole, a, b = RunningStats(7), RunningStats(7), RunningStats(7)
    for chunk in np.array_split(x, 7):
        whole.update(torch.from_numpy(chunk))
    a.update(torch.from_numpy(x[:123]))
    b.update(torch.from_numpy(x[123:]))
    a.merge(b)
    x64 = x.astype(np.float64)
    for stats in (whole, a, RunningStats.from_state_dict(whole.state_dict())):
        assert stats.count == 300
        np.testing.assert_allclose(stats.mean(), x64.mean(0), rtol=1e-12)
        np.testing.assert_allclose(stats.cov(), np.cov(x64, rowvar=False), rtol=1e-9, atol=1e-12)
    assert whole.sum.dtype == torch.float64


def test_running_stats_need_two_samples():
    stats = RunningStats(3)
    stats.update(torch.ones(1, 3))
    with pytest.raises(ValueError, match="at least 2 samples"):
        stats.cov()


# ----------------------------------------------------------------------------------------------
# Sampling loops (a cheap 12-d feature network stands in for Inception; same interface)
# ----------------------------------------------------------------------------------------------
class PixelFeatures(torch.nn.Module):
    """2x2 average colours of the uint8 image in [0, 1] (12-d); `value` replaces every feature
    (e.g. NaN), `fail_after` interrupts after that many calls."""

    grid = 2
    dim = 12
    identity = FeatureNetwork("test-pixels-2x2", "none", False)
    digest = "test-pixels-2x2"

    def __init__(self, fail_after: int | None = None, value: float | None = None):
        super().__init__()
        self.calls, self.fail_after, self.value = 0, fail_after, value

    def forward(self, images):
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        out = torch.nn.functional.adaptive_avg_pool2d(images.float() / 255, self.grid).flatten(1)
        return out if self.value is None else torch.full_like(out, self.value)


class PixelPRFeatures(PixelFeatures):
    """4x4 average colours (48-d): a second cheap network, standing in for precision/recall's VGG16."""

    grid = 4
    dim = 48
    identity = FeatureNetwork("test-pixels-4x4", "none", False)
    digest = "test-pixels-4x4"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("fid") / "data", 24, 16, seed=0)


@pytest.fixture(scope="module")
def G():
    return Generator(get_preset("F-test16").generator).eval()


def run(G, data, tmp_path, **kw):
    args = dict(num_gen=20, num_real=24, batch_size=8, seed=0, cache_dir=tmp_path / "cache", extractor=PixelFeatures())
    args.update(kw)
    return compute_fid(G, data, **args)


def test_sample_i_depends_only_on_seed_and_i(G):
    shapes = G.synthesis.noise_shapes
    whole_noise, part_noise = per_sample_noise(shapes, 3, range(6)), per_sample_noise(shapes, 3, [4, 2])
    assert all(torch.equal(w[[4, 2]], p) for w, p in zip(whole_noise, part_noise))
    whole = generate_uint8(G, list(range(6)), 3, device="cpu")
    part = generate_uint8(G, [4, 2], 3, device="cpu")
    assert whole.dtype == torch.uint8 and whole.shape == (6, 3, 16, 16)
    # Same inputs; batched convolutions may round differently, flipping a rare pixel by one level.
    diff = (part.int() - whole[[4, 2]].int()).abs()
    assert diff.max() <= 1 and (diff > 0).float().mean() < 0.01
    other_seed = generate_uint8(G, [4], 4, device="cpu")
    assert (other_seed.int() - whole[[4]].int()).abs().float().mean() > 5


def test_value_independent_of_batch_and_chunk_size(G, data_dir, tmp_path):
    a = run(G, data_dir, tmp_path, batch_size=8, chunk_size=1000)
    b = run(G, data_dir, tmp_path, batch_size=3, chunk_size=7)
    # Exact up to the generator's own batch-dependent float rounding, which flips a rare uint8
    # pixel (see above); with 20 samples that moves the value by ~1e-6 relative.
    assert a.value > 0 and a.value == pytest.approx(b.value, rel=1e-4)
    assert a.metric == "fid" and a.num_samples == 20 and a.extras["num_real"] == 24
    assert a.params["noise_mode"] == "given" and a.params["truncation_psi"] == 1.0
    assert a.feature_network.name == "test-pixels-2x2"
    assert not a.extras["cache_hit"] and b.extras["cache_hit"]
    assert {"time_real_s", "time_generated_s", "time_distance_s"} <= set(a.extras)


def test_resume_after_interruption_gives_the_uninterrupted_value(G, data_dir, tmp_path):
    full = run(G, data_dir, tmp_path / "a", chunk_size=6, batch_size=3)
    # Real statistics: 8 batches of 3; generated: interrupted in the 4th batch (third chunk).
    with pytest.raises(KeyboardInterrupt):
        run(G, data_dir, tmp_path / "b", chunk_size=6, batch_size=3, extractor=PixelFeatures(fail_after=8 + 5))
    assert len(list((tmp_path / "b" / "cache" / "progress").glob("fid-progress-*.pt"))) == 1
    resumed = run(G, data_dir, tmp_path / "b", chunk_size=6, batch_size=3)
    assert resumed.extras["resumed_from"] == 12 and resumed.extras["cache_hit"]
    assert resumed.value == pytest.approx(full.value, rel=1e-12)
    assert not list((tmp_path / "b" / "cache" / "progress").glob("*.pt"))  # removed when done
    # Other arguments never pick up someone else's progress.
    other = run(G, data_dir, tmp_path / "b", chunk_size=6, batch_size=3, seed=1)
    assert other.extras["resumed_from"] == 0 and other.value != resumed.value


def _distributed_worker(rank, world, port, data, cache, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.init("cpu")
    try:
        G = Generator(get_preset("F-test16").generator).eval()
        for attempt in ("counted", "cached"):
            record = run(G, data, cache, batch_size=2, chunk_size=7)
            assert record.extras["cache_hit"] == (attempt == "cached") and record.extras["world_size"] == world
            if rank == 0:
                (out / f"{attempt}.txt").write_text(repr(record.value))
    finally:
        torch.distributed.destroy_process_group()


@pytest.mark.slow
def test_value_independent_of_the_number_of_processes(G, data_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_distributed_worker, args=(2, port, data_dir, tmp_path / "d", tmp_path), nprocs=2)
    single = run(G, data_dir, tmp_path / "s", batch_size=8)
    for attempt in ("counted", "cached"):
        assert float((tmp_path / f"{attempt}.txt").read_text()) == pytest.approx(single.value, rel=1e-4)


def test_generator_emitting_nan_is_a_clear_error(data_dir, tmp_path):
    bad = Generator(get_preset("F-test16").generator).eval()
    with torch.no_grad():
        bad.synthesis.torgb[-1].weight.fill_(float("nan"))
    with pytest.raises(NonFiniteError, match=r"generator produced NaN or Inf for samples 0\.\.7 \(seed 0\)"):
        run(bad, data_dir, tmp_path)


def test_empty_folder_is_a_clear_error(G, tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no PNG/JPEG images found in .*empty"):
        run(G, tmp_path / "empty", tmp_path)


def test_unreadable_image_is_a_clear_error(G, data_dir, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(data_dir / "images", broken)
    (broken / "000003.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    with pytest.raises(DatasetError, match="000003.png"):
        run(G, broken, tmp_path)


def test_two_folders(data_dir, tmp_path):
    other = synthesize_dataset(tmp_path / "other", 24, 16, seed=5)
    same = compute_fid(data_dir, data_dir, cache_dir=tmp_path / "c", extractor=PixelFeatures())
    diff = compute_fid(other, data_dir, cache_dir=tmp_path / "c", extractor=PixelFeatures())
    assert same.value == pytest.approx(0.0, abs=1e-9) and same.extras["source_cache_hit"]
    assert diff.value > 1e-3 and diff.params["source"] == str(other) and diff.model == "other"


# ----------------------------------------------------------------------------------------------
# Agreement with torch-fidelity (real loading path on a stand-in weights file)
# ----------------------------------------------------------------------------------------------
def write_folder(path, seed, n=3, size=16):
    path.mkdir()
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
        Image.fromarray(img, "RGB").save(path / f"{i}.png")
    return path


@pytest.mark.slow
def test_two_folders_agree_with_torch_fidelity(torch_home, tmp_path, monkeypatch):
    import torch_fidelity

    weights = install_standin(torch_home, tmp_path.parent, monkeypatch)
    a, b = write_folder(tmp_path / "a", 0), write_folder(tmp_path / "b", 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # 3 samples in 2048-d: singular, expected
        ours = compute_fid(a, b, batch_size=3, cache_dir=tmp_path / "cache")
    theirs = torch_fidelity.calculate_metrics(
        input1=str(a), input2=str(b), fid=True, cuda=False, cache=False, verbose=False, save_cpu_ram=True, batch_size=3,
        feature_extractor_weights_path=str(weights),
    )["frechet_inception_distance"]
    assert not ours.feature_network.substitute
    assert ours.value == pytest.approx(theirs, rel=1e-4)
