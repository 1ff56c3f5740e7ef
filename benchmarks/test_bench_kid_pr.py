"""KID and precision/recall stages on CPU at scaled-down kid50k / pr50k3 sizes.

- KID subset stage: subsets of 1,000 x 2048-d (kid50k's size) in float64, beside torch-fidelity's
  float32 estimator on the same features and seed; extra_info extrapolates to kid50k's 100 subsets.
- k-NN stage: full precision/recall (radii of both sets and the cross distances) on 4096-d
  features (VGG16 fc2's width), ours beside torch-fidelity's `calculate_precision_recall_full`
  on the same features; extra_info holds the time ratio.
- Peak memory of precision/recall at 10k and 20k samples per set (the protocol's 10,000-row
  tiles; 32-d features to keep the case short): the peak resident memory of a fresh process
  (resource.getrusage) above its resident memory before the call (Linux); ours, and for scale
  torch-fidelity's, which builds the N x M matrices.

Run: pytest benchmarks/test_bench_kid_pr.py --benchmark-only
"""

import json
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from torch_fidelity.metric_kid import kid_features_to_metric
from torch_fidelity.metric_prc import calculate_precision_recall_full

from stylegan_eval.metrics.kid import kid_from_features
from stylegan_eval.metrics.precision_recall import precision_recall


def features(seed, n, d, shift=0.0):
    return (np.random.default_rng(seed).standard_normal((n, d)) + shift).astype(np.float32)


def test_kid_subsets_1000x2048(benchmark):
    real, fake = features(0, 3000, 2048), features(1, 3000, 2048, shift=0.05)
    subsets = 3
    result = benchmark.pedantic(kid_from_features, args=(real, fake, subsets, 1000, 0), rounds=2, iterations=1)
    t0 = time.perf_counter()
    theirs = kid_features_to_metric(torch.from_numpy(fake), torch.from_numpy(real), kid_subsets=subsets,
                                    kid_subset_size=1000, rng_seed=0, verbose=False)
    theirs_s = time.perf_counter() - t0
    assert result.mean == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-3)
    benchmark.extra_info["torch_fidelity_float32_s"] = theirs_s
    if benchmark.stats:
        per_subset = benchmark.stats.stats.mean / subsets
        benchmark.extra_info["per_subset_s"] = per_subset
        benchmark.extra_info["kid50k_100_subsets_s"] = 100 * per_subset
        benchmark.extra_info["ratio_vs_torch_fidelity"] = benchmark.stats.stats.mean / theirs_s


def test_knn_precision_recall_2000x4096_vs_torch_fidelity(benchmark):
    real, fake = features(2, 2000, 4096), features(3, 2000, 4096, shift=0.02)
    ours = benchmark.pedantic(precision_recall, args=(real, fake), rounds=2, iterations=1)
    t0 = time.perf_counter()
    theirs = calculate_precision_recall_full(torch.from_numpy(fake), torch.from_numpy(real), 3, 10000)
    theirs_s = time.perf_counter() - t0
    assert (ours.precision, ours.recall) == theirs
    benchmark.extra_info["torch_fidelity_s"] = theirs_s
    if benchmark.stats:
        benchmark.extra_info["ratio_vs_torch_fidelity"] = benchmark.stats.stats.mean / theirs_s


# A fresh process per measurement: ru_maxrss is a high-water mark of the whole process.
PEAK_SCRIPT = """
import json, resource, sys
import numpy as np, torch
torch.set_num_threads(1)
from stylegan_eval.metrics.precision_recall import precision_recall
from torch_fidelity.metric_prc import calculate_precision_recall_full
n, d, which = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
rng = np.random.default_rng(0)
real = rng.standard_normal((n, d)).astype(np.float32)
fake = (rng.standard_normal((n, d)) + 0.1).astype(np.float32)
def rss_kib():  # current resident memory (ru_maxrss is a high-water mark, maybe from the imports)
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
before = rss_kib()
if which == "ours":
    r = precision_recall(real, fake)
    value = [r.precision, r.recall]
else:
    value = list(calculate_precision_recall_full(torch.from_numpy(fake), torch.from_numpy(real), 3, 10000))
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
print(json.dumps({"extra_peak_mib": (after - before) / 1024, "value": value}))
"""


def peak(n, which, d=32):
    out = subprocess.run([sys.executable, "-c", PEAK_SCRIPT, str(n), str(d), which], check=True,
                         capture_output=True, text=True, env={"OMP_NUM_THREADS": "1", "PYTHONPATH": ":".join(sys.path)})
    return json.loads(out.stdout)


@pytest.mark.parametrize("n", [10_000, 20_000])
def test_precision_recall_peak_memory(benchmark, n):
    result = benchmark.pedantic(peak, args=(n, "ours"), rounds=1, iterations=1)
    benchmark.extra_info["extra_peak_mib"] = result["extra_peak_mib"]
    benchmark.extra_info["features_mib"] = 2 * n * 32 * 4 / 2**20
    if n == 10_000:  # torch-fidelity's N x M matrices, for scale (20k would need ~5 GiB)
        theirs = peak(n, "torch-fidelity")
        assert theirs["value"] == result["value"]
        benchmark.extra_info["torch_fidelity_extra_peak_mib"] = theirs["extra_peak_mib"]
