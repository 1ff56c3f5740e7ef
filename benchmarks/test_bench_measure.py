"""`measure`'s shared image pass against one run per metric: FID and separability on the same
generated images (F-cpu32, CPU), generated once versus once per metric.

Run: pytest benchmarks/test_bench_measure.py --benchmark-only
extra_info["images_per_s"] counts generated samples; the difference between the two tests is the
generator work the shared pass saves (FID's feature network here is a 2x2 pixel mean, so the
generator and classifier dominate, as they do beside a GPU Inception).
"""

import pytest
import torch

from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.classifier import build_classifier, classifier_config
from stylegan_eval.metrics.fid import compute_fid
from stylegan_eval.metrics.measure import MeasureInputs, measure
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.metrics.registry import get_protocols
from stylegan_eval.metrics.separability import compute_separability

from tests.eval.metrics.test_fid import PixelFeatures

NUM = 256


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    d = tmp_path_factory.mktemp("bench-measure")
    data = synthesize_dataset(d / "data", 64, 32, seed=0)
    G = Generator(get_preset("F-cpu32").generator).eval()
    C = build_classifier(classifier_config([f"a{i}" for i in range(10)], 32), seed=0).eval()
    compute_fid(G, data, num_gen=2, batch_size=64, cache_dir=d / "cache", extractor=PixelFeatures())  # cache the real side
    return G, C, data, d


def test_fid_and_ls_shared_pass(benchmark, setup):
    G, C, data, d = setup
    options = MetricOptions(G=G, batch_size=64, cache_dir=d / "cache", progress=False)
    inputs = MeasureInputs(data=data, classifier=C, inception=PixelFeatures())
    results = benchmark.pedantic(measure, (get_protocols("fid50k,ls", NUM), options, inputs), rounds=3, iterations=1)
    benchmark.extra_info["images_per_s"] = NUM / benchmark.stats.stats.mean if benchmark.stats else None
    assert [r.metric for r in results] == ["fid50k", "ls_z", "ls_w"]


def test_fid_and_ls_separately(benchmark, setup):
    G, C, data, d = setup

    def run():
        fid = compute_fid(G, data, num_gen=NUM, batch_size=64, cache_dir=d / "cache", extractor=PixelFeatures())
        return [fid, *compute_separability(G, C, num_samples=NUM, batch_size=64, progress=False)]

    results = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info["images_per_s"] = NUM / benchmark.stats.stats.mean if benchmark.stats else None
    assert len(results) == 3 and torch.isfinite(torch.tensor([r.value for r in results])).all()
