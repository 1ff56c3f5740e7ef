"""Cost of DCI, MIG and SAP in StyleSpace S at 256 px (F-256: 4992 style scales), random weights.

Run: pytest benchmarks/test_bench_disentanglement.py --benchmark-only
S comes from the mapping network and the style affines only (no image synthesis is needed to
time the predictors); the factors are noisy signs of random projections of S, like attributes a
classifier would read. Sizes are modest so the file runs in ~20 s on a 2-core CPU; extra_info
extrapolates to the protocol (10,000 training samples, 40 attributes):
- GBT (disentanglement_lib's DCI predictor) is timed as one factor's fit on 32 samples: its cost
  is dominated by scanning all 4992 codes at every split of 100 trees and grows with N log N;
- the lasso DCI, MIG and the SAP matrix run through the public functions.
"""

import numpy as np
import pytest
import torch

from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.stylespace import style_scales
from stylegan_eval.metrics.disentanglement import PROTOCOLS, _fit_factor, dci, mig, sap

NUM = 600
PROTOCOL_TRAIN = 10_000
PROTOCOL_ATTRIBUTES = 40


@pytest.fixture(scope="module")
def s_256():
    """S [600, 4992] of a random F-256 generator and two attributes that depend on it."""
    G = Generator(get_preset("F-256").generator, seed=0).eval()
    with torch.no_grad():
        z = torch.randn(NUM, G.z_dim, generator=torch.Generator().manual_seed(0))
        s = style_scales(G.synthesis, G.mapping(z)[:, 0]).numpy()
    rng = np.random.default_rng(0)
    directions = rng.standard_normal((s.shape[1], 2)) / np.sqrt(s.shape[1])
    logits = (s - s.mean(0)) / s.std(0) @ directions + 0.5 * rng.standard_normal((NUM, 2))
    return s, (logits > 0).astype(np.int64)


def test_dci_gbt_one_factor_s256(benchmark, s_256):
    s, y = s_256
    imp, train_acc, _ = benchmark.pedantic(_fit_factor, (s[:32], y[:32, 0], s[32:48], y[32:48, 0], PROTOCOLS["dci"]),
                                           rounds=1, iterations=1)
    if benchmark.stats:
        t = benchmark.stats.stats.mean
        scale = PROTOCOL_TRAIN * np.log(PROTOCOL_TRAIN) / (32 * np.log(32))
        benchmark.extra_info["per_factor_s_at_32"] = t
        benchmark.extra_info["protocol_40_factors_s_extrapolated_nlogn"] = t * scale * PROTOCOL_ATTRIBUTES
    assert imp.shape == (4992,) and train_acc >= 0.5


def test_dci_lasso_s256(benchmark, s_256):
    s, y = s_256
    res = benchmark.pedantic(dci, (s, y, 200), {"protocol": PROTOCOLS["dci_lasso"]}, rounds=1, iterations=1)
    assert res.importance.shape == (4992, 2) and 0 <= res.disentanglement <= 1


def test_mig_s256(benchmark, s_256):
    s, y = s_256
    res = benchmark.pedantic(mig, (s, y), rounds=1, iterations=1)
    assert res.matrix.shape == (4992, 2)


def test_sap_512_codes_s256(benchmark, s_256):
    """SAP's D x K one-dimensional SVMs: 512 codes (one 4x4 layer's styles) for one factor."""
    s, y = s_256
    res = benchmark.pedantic(sap, (s[:, :512], y[:, :1], 200), rounds=1, iterations=1)
    if benchmark.stats:
        per_fit = benchmark.stats.stats.mean / 512
        benchmark.extra_info["per_1d_svm_s"] = per_fit
        benchmark.extra_info["s256_40_factors_serial_s_extrapolated"] = per_fit * 4992 * PROTOCOL_ATTRIBUTES
    assert res.matrix.shape == (512, 1)
