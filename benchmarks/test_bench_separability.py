"""Linear separability throughput: sampling (generator + classifier) and the SVM stage.

Run: pytest benchmarks/test_bench_separability.py --benchmark-only
The paper's protocol fits 2 spaces x 40 attributes = 80 LinearSVCs on 100,000 x 512 latents.
`test_svm_one_fit_paper_size` times one such fit; extra_info extrapolates the 80 fits serially
and over two processes. `test_svm_2x2_paper_size_two_jobs` measures the process parallelism on
4 real paper-size fits; the 10k tests show the same at a tenth of the size.
"""

import numpy as np
import pytest
import torch

from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.classifier import build_classifier, classifier_config
from stylegan_eval.metrics.separability import _fit_one, fit_spaces, labels_from_probs, prune_confident, sample_latents_and_probs

PAPER_KEEP = 100_000
PAPER_DIM = 512
PAPER_ATTRIBUTES = 40


def _latents_and_probs(num: int, dim: int, num_attr: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Gaussian latents and attribute probabilities that are partly linear in them (like a real
    generator's: an SVM separates them well but not perfectly)."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((num, dim), dtype=np.float32)
    directions = rng.standard_normal((dim, num_attr)) / np.sqrt(dim)
    logits = x @ directions + 0.7 * rng.standard_normal((num, num_attr))
    return x, 1.0 / (1.0 + np.exp(-2.0 * logits))


def test_sampling_F_cpu32_with_classifier(benchmark):
    """Samples/s through the F-cpu32 generator and a 32x32, 10-attribute classifier (CPU)."""
    G = Generator(get_preset("F-cpu32").generator).eval()
    C = build_classifier(classifier_config([f"a{i}" for i in range(10)], 32), seed=0).eval()
    num = 256
    z, w, p = benchmark.pedantic(
        sample_latents_and_probs, (G, C, num, 64, 0, torch.device("cpu")), {"progress": False}, rounds=2, iterations=1
    )
    benchmark.extra_info["samples_per_s"] = num / benchmark.stats.stats.mean if benchmark.stats else None
    assert z.shape == (num, G.z_dim) and w.shape == (num, G.w_dim) and p.shape == (num, 10)


@pytest.fixture(scope="module")
def paper_size():
    # 2 x 100k = the paper's 200k samples, of which each attribute keeps the 100k most confident.
    return _latents_and_probs(2 * PAPER_KEEP, PAPER_DIM, 2)


def test_svm_one_fit_paper_size(benchmark, paper_size):
    """One LinearSVC() fit + predict on 100,000 x 512 (the paper's size per attribute and space)."""
    x, p = paper_size
    keep = prune_confident(p[:, 0], PAPER_KEEP)
    labels = labels_from_probs(p[keep, 0])
    table, status, message = benchmark.pedantic(_fit_one, (x, keep, labels), rounds=1, iterations=1)
    if benchmark.stats:
        t = benchmark.stats.stats.mean
        benchmark.extra_info["fit_s"] = t
        benchmark.extra_info["80_fits_serial_s_extrapolated"] = 2 * PAPER_ATTRIBUTES * t
        benchmark.extra_info["80_fits_2_jobs_s_extrapolated"] = PAPER_ATTRIBUTES * t
    benchmark.extra_info["status"] = status
    assert message == "" and table.sum() == PAPER_KEEP


def test_svm_2x2_paper_size_two_jobs(benchmark, paper_size):
    """Four paper-size fits (z and w, 2 attributes) over two worker processes."""
    x, p = paper_size
    spaces = {"z": x, "w": x[:, ::-1].copy()}
    out = benchmark.pedantic(fit_spaces, (spaces, p, PAPER_KEEP), {"n_jobs": 2}, rounds=1, iterations=1)
    if benchmark.stats:
        benchmark.extra_info["per_fit_s_effective"] = benchmark.stats.stats.mean / 4
        benchmark.extra_info["80_fits_2_jobs_s_extrapolated"] = benchmark.stats.stats.mean / 4 * 2 * PAPER_ATTRIBUTES
    assert set(out) == {"z", "w"}


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_svm_2x4_fits_10k(benchmark, n_jobs):
    """2 spaces x 4 attributes on 10,000 kept of 20,000 samples x 512, serial vs two processes."""
    x, p = _latents_and_probs(20_000, PAPER_DIM, 4, seed=1)
    out = benchmark.pedantic(fit_spaces, ({"z": x, "w": -x}, p, 10_000), {"n_jobs": n_jobs}, rounds=2, iterations=1)
    assert len(out["z"].fits) == 4
