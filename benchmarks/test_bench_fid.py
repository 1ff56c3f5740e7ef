"""FID throughput on CPU: Inception features/s at 32x32 and 256x256 inputs, the network stage's
GFLOP/s beside this machine's sgemm GFLOP/s and beside torch-fidelity's forward, the dataset
feature stage beside torch-fidelity's on the same PNG files and weights, the Fréchet distance at
2048-d against scipy's sqrtm path, and a 50k-sample time estimate for F-cpu32.

Run: pytest benchmarks/test_bench_fid.py --benchmark-only
The network is the substitute (random weights): same architecture and cost as the real one.
"""

import time
import warnings

import numpy as np
import pytest
import scipy.linalg
import torch
from side_by_side import interleaved_medians, record_ratios

from stylegan_core.data import open_dataset
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.metrics.fid import dataset_stats, frechet_distance
from stylegan_eval.metrics.generation import generate_uint8
from stylegan_eval.inception import _structure, random_inception_state_dict, substitute_inception

BATCH = 8
NUM = 50_000


@pytest.fixture(scope="module")
def net():
    return substitute_inception(0)


@pytest.fixture(scope="module")
def torch_fidelity_net():
    """torch-fidelity's own module and forward with the same weights as `net`."""
    peer = _structure()
    peer.load_weights(random_inception_state_dict(0))
    return peer.eval().requires_grad_(False)


def features_per_s(benchmark, net, size):
    images = torch.randint(0, 256, (BATCH, 3, size, size), dtype=torch.uint8)
    out = benchmark.pedantic(net, args=(images,), rounds=3, iterations=1, warmup_rounds=1)
    assert out.shape == (BATCH, 2048)
    if benchmark.stats:
        benchmark.extra_info["features_per_s"] = BATCH / benchmark.stats.stats.mean
    return out


def test_inception_features_32px(benchmark, net):
    features_per_s(benchmark, net, 32)


def test_inception_features_256px(benchmark, net):
    features_per_s(benchmark, net, 256)


INCEPTION_GFLOP = 11.42  # multiply-adds x 2 of one 299x299 forward to pool3
SGEMM_SIZE = 2048


def test_inception_network_stage_gflops_vs_sgemm(benchmark, net, torch_fidelity_net):
    """The network on 299x299 inputs (no resize work), batch 32: GFLOP/s against a 2048^3 float32
    matrix product on the same cores (the machine's practical peak), and against torch-fidelity's
    forward of the same weights. Interleaved rounds, medians."""
    images = torch.randint(0, 256, (32, 3, 299, 299), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    a, b = torch.randn(SGEMM_SIZE, SGEMM_SIZE), torch.randn(SGEMM_SIZE, SGEMM_SIZE)
    with torch.no_grad():
        medians = interleaved_medians({"ours": lambda: net(images),
                                       "torch_fidelity": lambda: torch_fidelity_net(images),
                                       "sgemm": lambda: a @ b}, rounds=3)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    sgemm_gflops = 2 * SGEMM_SIZE**3 / medians["sgemm"] / 1e9
    ours_gflops = len(images) * INCEPTION_GFLOP / medians["ours"]
    info = {"sgemm_gflops": sgemm_gflops, "network_gflops": ours_gflops,
            "network_fraction_of_sgemm": ours_gflops / sgemm_gflops,
            "torch_fidelity_gflops": len(images) * INCEPTION_GFLOP / medians["torch_fidelity"],
            "speedup_vs_torch_fidelity": medians["torch_fidelity"] / medians["ours"]}
    benchmark.extra_info.update(info)
    print("\nnetwork stage, 32 images at 299 px: " + ", ".join(f"{k} {v:.3g}" for k, v in info.items()))


FOLDER_IMAGES = 200
FOLDER_BATCH = 32  # both sides


@pytest.mark.parametrize("size", [32, 256])
def test_feature_stage_200_pngs_vs_torch_fidelity(benchmark, net, torch_fidelity_net, size, tmp_path):
    """Folder of PNGs -> Inception statistics (ours: open_dataset, which reads, hashes and
    decodes every file, then dataset_stats, which prefetches batches while the network runs)
    beside torch-fidelity's feature extraction of the same files (its DataLoader with worker
    processes); same network and weights, same batch size, interleaved rounds, medians."""
    from PIL import Image
    from torch_fidelity.datasets import ImagesPathDataset
    from torch_fidelity.utils import get_featuresdict_from_dataset

    rng = np.random.default_rng(size)
    folder = tmp_path / "images"
    folder.mkdir()
    for i in range(FOLDER_IMAGES):  # smooth random images, so PNG decoding costs what photos cost
        small = rng.integers(0, 256, (size // 4 + 1, size // 4 + 1, 3), dtype=np.uint8)
        Image.fromarray(small).resize((size, size), Image.BILINEAR).save(folder / f"{i:04d}.png")
    files = sorted(str(p) for p in folder.iterdir())
    cache = tmp_path / "cache"

    def ours():
        ds = open_dataset(folder)
        stats, hit, _ = dataset_stats(ds, ds.fingerprint(), len(ds), net, FOLDER_BATCH, torch.device("cpu"), cache,
                                      False, False, "real", progress=False)
        assert not hit
        return stats

    def theirs():
        return get_featuresdict_from_dataset(ImagesPathDataset(files), torch_fidelity_net, FOLDER_BATCH, False, False, False)

    net(torch.zeros((2, 3, size, size), dtype=torch.uint8))  # one-time start-up costs, outside the rounds
    stats, feats = ours(), theirs()["2048"]
    assert stats.count == feats.shape[0] == FOLDER_IMAGES
    assert torch.allclose(stats.sum.float(), feats.double().sum(0).float(), rtol=1e-4, atol=1e-3)  # the same work
    medians = interleaved_medians({"ours": ours, "torch_fidelity": theirs}, rounds=3, warmup=False)
    benchmark.pedantic(lambda: None, rounds=1, iterations=1)
    record_ratios(benchmark, medians, label=f"feature stage, {FOLDER_IMAGES} PNGs at {size} px")


def scipy_fid(mu1, s1, mu2, s2):
    """torch-fidelity's / pytorch-fid's path: the complex matrix square root of S1 S2."""
    covmean = scipy.linalg.sqrtm(s1 @ s2)
    covmean = covmean.real if np.iscomplexobj(covmean) else covmean
    return float((mu1 - mu2) @ (mu1 - mu2) + np.trace(s1) + np.trace(s2) - 2 * np.trace(covmean))


def test_frechet_distance_2048_vs_scipy_sqrtm(benchmark):
    rng = np.random.default_rng(0)
    d = 2048
    x, y = rng.standard_normal((2 * d, d)), rng.standard_normal((2 * d, d)) * 1.1 + 0.05
    mu1, s1, mu2, s2 = x.mean(0), np.cov(x, rowvar=False), y.mean(0), np.cov(y, rowvar=False)
    ours = benchmark.pedantic(frechet_distance, args=(mu1, s1, mu2, s2), rounds=3, iterations=1)
    t0 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ref = scipy_fid(mu1, s1, mu2, s2)
    scipy_s = time.perf_counter() - t0
    assert ours == pytest.approx(ref, rel=1e-6)
    benchmark.extra_info["scipy_sqrtm_s"] = scipy_s
    if benchmark.stats:
        benchmark.extra_info["speedup_vs_scipy"] = scipy_s / benchmark.stats.stats.mean


def test_fid50k_estimate_F_cpu32(benchmark, net):
    """Per batch: generate F-cpu32 samples (per-sample latents and noise), quantise, extract
    features. extra_info['estimate_50k_s'] extrapolates to 50k generated + 50k real images
    (real images cost the feature pass only; their statistics are cached afterwards)."""
    G = Generator(get_preset("F-cpu32").generator).eval()
    counter = iter(range(10**9))

    def generate():
        start = next(counter) * BATCH
        return generate_uint8(G, list(range(start, start + BATCH)), 0, device="cpu")

    images = generate()
    t0 = time.perf_counter()
    net(images)
    feature_s = time.perf_counter() - t0
    benchmark.pedantic(lambda: net(generate()), rounds=3, iterations=1)
    if benchmark.stats:
        per_batch = benchmark.stats.stats.mean
        benchmark.extra_info["generated_per_s"] = BATCH / per_batch
        benchmark.extra_info["estimate_50k_s"] = NUM / BATCH * (per_batch + feature_s)
