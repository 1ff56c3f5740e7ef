"""stylegan_eval.metrics.measure: several protocols in one process, each generated image made once,
with the same values as the single-metric functions; KID and precision/recall independent of
the batch size and of 1 vs 2 processes."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.classifier import build_classifier, classifier_config
from stylegan_eval.metrics.fid import compute_fid
from stylegan_eval.metrics.measure import MeasureInputs, measure
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.metrics.ppl import compute_ppl
from stylegan_eval.metrics.registry import get_protocols
from stylegan_eval.metrics.separability import compute_separability

from tests.eval.metrics.test_fid import PixelFeatures, PixelPRFeatures
from tests.eval.test_lpips_net import install_standin_vgg16

REPO = Path(__file__).resolve().parents[3]


class CountingSynthesis(torch.nn.Module):
    """Wraps G.synthesis and records the batch size of every call."""

    def __init__(self, synthesis):
        super().__init__()
        self.inner, self.calls = synthesis, []
        self.noise_shapes = synthesis.noise_shapes

    def forward(self, ws, **kw):
        self.calls.append(ws.shape[0])
        return self.inner(ws, **kw)


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("measure") / "data", 14, 16, seed=0)


@pytest.fixture(scope="module")
def classifier():
    return build_classifier(classifier_config(["Smiling", "Hat"], 8, fmap_base=64, fmap_max=16), 0).eval()


def options(G, tmp_path, batch=4, seed=1):
    return MetricOptions(G=G, seed=seed, batch_size=batch, cache_dir=tmp_path / "cache", progress=False)


def test_four_metrics_generate_each_image_once_with_the_single_metric_values(data, classifier, tmp_path, torch_home, monkeypatch):
    install_standin_vgg16(torch_home, monkeypatch)
    G = Generator(get_preset("F-test16").generator, seed=3).eval()
    counting = CountingSynthesis(G.synthesis)
    G.synthesis = counting
    inception = PixelFeatures()
    n, batch = 13, 4
    protocols = get_protocols("fid50k,kid50k,ppl_wend,ls", num_samples=n)
    protocols[2] = protocols[2].without_crop()  # a 16x16 generator is too small for the face crop
    results = measure(protocols, options(G, tmp_path, batch), MeasureInputs(data=data, classifier=classifier,
                                                                            inception=inception))
    assert [r.metric for r in results] == ["fid50k", "kid50k", "ppl_wend", "ls_z", "ls_w"]
    # One pass of 13 images for FID, KID and separability (4 batches), then PPL's 13 pairs (4 batches of 2 x 4).
    assert counting.calls == [4, 4, 4, 1, 8, 8, 8, 2]
    # FID and KID share the Inception features: one forward per generated batch (plus the real images:
    # one pass for the FID statistics, one for the KID rows, 14 images in batches of 4 each).
    assert inception.calls == 4 + 2 * 4
    assert all(r.params["protocol_num_samples"] in (50_000, 100_000, 200_000) for r in results)

    G.synthesis = counting.inner
    by = {r.metric: r for r in results}
    fid = compute_fid(G, data, num_gen=n, num_real=50_000, batch_size=batch, seed=1, cache_dir=tmp_path / "c2",
                      extractor=PixelFeatures())
    assert by["fid50k"].value == pytest.approx(fid.value, rel=1e-12) and by["fid50k"].extras.num_real == 14
    ppl = compute_ppl(G, num_samples=n, crop=False, batch_size=batch, seed=1, progress=False)
    assert by["ppl_wend"].value == ppl.value
    ls = compute_separability(G, classifier, num_samples=n, batch_size=batch, seed=1, progress=False)
    assert [by["ls_z"].value, by["ls_w"].value] == [r.value for r in ls]
    assert by["ls_w"].extras.entropies == ls[1].extras["entropies"]
    kid = by["kid50k"]
    assert kid.extras.num_subsets == 100 and kid.extras.subset_size == 13 and kid.extras.num_real == 14
    assert np.isfinite(kid.value) and kid.extras.std > 0


def test_kid_and_pr_do_not_depend_on_the_batch_size(data, tmp_path):
    G = Generator(get_preset("F-test16").generator, seed=3).eval()
    inputs = MeasureInputs(data=data, inception=PixelFeatures(), pr_features=PixelPRFeatures())
    protocols = get_protocols("kid50k,pr50k3", num_samples=12)
    a = measure(protocols, options(G, tmp_path, batch=5), inputs)
    b = measure(protocols, options(G, tmp_path, batch=3), inputs)
    assert [r.metric for r in a] == ["kid50k", "pr50k3_precision", "pr50k3_recall"]
    assert 0 <= a[1].value <= 1 and 0 <= a[2].value <= 1
    for x, y in zip(a, b):
        # Same samples; batched convolutions may flip a rare uint8 pixel by one level.
        assert x.value == pytest.approx(y.value, rel=1e-4, abs=1e-6)
    other_seed = measure(protocols, options(G, tmp_path, batch=5, seed=2), inputs)
    assert other_seed[0].value != a[0].value


def test_missing_inputs_are_clear_errors(tmp_path):
    from stylegan_core.errors import ConfigError

    G = Generator(get_preset("F-test16").generator)
    with pytest.raises(ConfigError, match="fid50k, kid50k compare with real images: give the dataset with --data"):
        measure(get_protocols("fid50k,kid50k,ppl_wend"), options(G, tmp_path))
    with pytest.raises(ConfigError, match="give --classifier FILE"):
        measure(get_protocols("ls"), options(G, tmp_path))


def test_ppl_errors_come_before_the_image_pass(data, classifier, tmp_path, torch_home):
    """A 16x16 generator is too small for the face crop: said at once, not after FID's pass."""
    from stylegan_core.errors import ConfigError

    G = Generator(get_preset("F-test16").generator)
    counting = CountingSynthesis(G.synthesis)
    G.synthesis = counting
    opts = MetricOptions(G=G, batch_size=4, cache_dir=tmp_path / "cache", substitute=True, progress=False)
    with pytest.raises(ConfigError, match=r"8x8 images after the face crop .* \(use --no-crop\)"):
        measure(get_protocols("ls,ppl_wend", num_samples=4), opts, MeasureInputs(classifier=classifier))
    assert counting.calls == []


TORCHRUN_SCRIPT = """
import json, sys
from stylegan_core import distributed
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.metrics.measure import MeasureInputs, measure
from stylegan_eval.metrics.options import MetricOptions
from stylegan_eval.metrics.registry import get_protocols
from tests.eval.metrics.test_fid import PixelFeatures, PixelPRFeatures

distributed.init("cpu")
G = Generator(get_preset("F-test16").generator, seed=3).eval()
opts = MetricOptions(G=G, seed=1, batch_size=int(sys.argv[3]), cache_dir=sys.argv[4], progress=False)
inputs = MeasureInputs(data=sys.argv[2], inception=PixelFeatures(), pr_features=PixelPRFeatures())
results = measure(get_protocols("fid50k,kid50k,pr50k3", num_samples=11), opts, inputs)
if distributed.is_main():
    with open(sys.argv[1], "w") as f:
        json.dump({r.metric: r.value for r in results} | {"world": opts.world_size}, f)
"""


@pytest.mark.slow
def test_one_and_two_torchrun_processes_agree(data, tmp_path):
    script = tmp_path / "run_measure.py"
    script.write_text(TORCHRUN_SCRIPT)
    out = tmp_path / "two.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script), str(out),
           str(data), "3", str(tmp_path / "cache2")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-3000:]
    two = json.loads(out.read_text())
    assert two.pop("world") == 2
    G = Generator(get_preset("F-test16").generator, seed=3).eval()
    inputs = MeasureInputs(data=data, inception=PixelFeatures(), pr_features=PixelPRFeatures())
    one = measure(get_protocols("fid50k,kid50k,pr50k3", num_samples=11), options(G, tmp_path, batch=3), inputs)
    assert list(two) == [r.metric for r in one]
    for r in one:
        assert two[r.metric] == pytest.approx(r.value, rel=1e-4, abs=1e-6)


def test_separability_and_disentanglement_share_one_image_pass(tmp_path):
    """ls, dci, mig and sap classify the same images: one pass makes and classifies each image once
    (S computed beside it), and every value equals its own command's on the same samples."""
    from stylegan_eval.metrics.latent_factors import compute_disentanglement

    G = Generator(get_preset("F-test16").generator, seed=3).eval()
    C = build_classifier(classifier_config(["a", "b", "c"], 8, fmap_base=64, fmap_max=16), seed=1).eval()
    synthesis_calls, classifier_calls = [], []
    synthesize, classify = G.synthesis.forward, C.forward
    G.synthesis.forward = lambda ws, **kw: synthesis_calls.append(ws.shape[0]) or synthesize(ws, **kw)
    C.forward = lambda img: classifier_calls.append(img.shape[0]) or classify(img)
    ls, dci, mig, sap = get_protocols("ls,dci,mig,sap", num_samples=30)
    mig = mig.with_num_samples(20)  # MIG takes the first 20 of the same samples
    results = measure([ls, dci, mig, sap], options(G, tmp_path, batch=8), MeasureInputs(classifier=C))
    assert [r.metric for r in results] == ["ls_z", "ls_w", "dci_z", "dci_w", "dci_s", "mig_z", "mig_w", "mig_s",
                                           "sap_z", "sap_w", "sap_s"]
    assert synthesis_calls == [8, 8, 8, 6] and classifier_calls == [8, 8, 8, 6]  # 30 images, each made once
    by = {r.metric: r for r in results}
    assert by["dci_s"].extras.dims == 80 and by["mig_s"].num_samples == 20 and by["dci_s"].num_samples == 30
    assert by["mig_w"].params["protocol"] == "mig" and by["mig_w"].params["protocol_num_samples"] == 10_000

    del G.synthesis.forward, C.forward
    single = compute_disentanglement(G, C, scores=("dci", "sap"), num_samples=30, batch_size=8, seed=1, progress=False)
    single += compute_disentanglement(G, C, scores=("mig",), num_samples=20, batch_size=5, seed=1, progress=False)
    assert sorted(r.metric for r in single) == sorted(m for m in by if not m.startswith("ls"))
    for r in single:
        assert by[r.metric].value == pytest.approx(r.value, rel=1e-9, abs=1e-12), r.metric
        e = by[r.metric].extras
        assert e.factors == r.extras["factors"] and e.per_factor == pytest.approx(r.extras["per_factor"], rel=1e-9)
    separability = compute_separability(G, C, num_samples=30, batch_size=8, seed=1, progress=False)
    assert [by["ls_z"].value, by["ls_w"].value] == [r.value for r in separability]
