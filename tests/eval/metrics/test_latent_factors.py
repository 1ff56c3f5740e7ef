"""compute_disentanglement: generator -> (z, w, s) and classifier labels -> DCI/MIG/SAP records."""

import json

import numpy as np
import pytest
import torch

from stylegan_core.errors import ConfigError
from stylegan_eval.metrics import latent_factors as lf
from stylegan_eval.metrics.disentanglement import DisentanglementError
from stylegan_eval.metrics.latent_factors import DisentanglementExtras, compute_disentanglement
from stylegan_eval.records import ResultRecord


class _AxisG(torch.nn.Module):
    """A closed-form generator: w = z; image channel c is the constant z[c] (c < 2), channel 2 is
    the per-sample noise, so attributes sign(z0), sign(z1) sit on one code each and "noise" on none."""

    z_dim = w_dim = 4
    num_ws = 2
    img_resolution = 8
    img_channels = 3

    def __init__(self):
        super().__init__()
        self.synthesis = self._Synthesis()
        self.register_buffer("w_avg", torch.zeros(4))

    class _Synthesis(torch.nn.Module):
        noise_shapes = [(8, 8)]

        def forward(self, ws, noise_mode="random", noise=None):
            img = ws[:, 0, :3, None, None].expand(-1, 3, 8, 8).clone()
            img[:, 2] = noise[0][:, 0]
            return img

    def mapping(self, z, truncation_psi=1.0, truncation_cutoff=None):
        return z[:, None].repeat(1, self.num_ws, 1)


class _MeanClassifier(torch.nn.Module):
    attribute_names = ["z0", "z1", "noise"]
    resolution = 4
    img_channels = 3

    def forward(self, img):
        return 10 * img.mean(dim=(2, 3))


def test_closed_form_generator_puts_each_attribute_on_its_code():
    recs = compute_disentanglement(_AxisG(), _MeanClassifier(), spaces=("z", "w"), num_samples=300, seed=2,
                                   progress=False)
    assert [r.metric for r in recs] == ["dci_z", "mig_z", "sap_z", "dci_w", "mig_w", "sap_w"]
    by = {r.metric: DisentanglementExtras.from_dict(r.extras) for r in recs}
    d = by["dci_z"]
    assert d.factors == ["z0", "z1", "noise"] and d.dims == 4 and (d.num_train, d.num_test) == (200, 100)
    assert [t[0] for t in d.top_codes[:2]] == [0, 1]  # attribute k's most important code is z_k
    assert d.test_accuracy[0] > 0.95 and d.test_accuracy[1] > 0.95 and d.test_accuracy[2] < 0.7
    m = by["mig_z"]
    assert m.per_factor[0] > 0.5 and m.per_factor[1] > 0.5 and m.per_factor[2] < 0.1
    assert [t[0] for t in m.top_codes[:2]] == [0, 1] and m.num_train == 300 and m.num_test == 0
    assert by["sap_z"].per_factor[0] > 0.35 and by["sap_z"].per_factor[2] < 0.15
    for a, b in zip(recs[:3], recs[3:]):  # w = z here: the same numbers
        assert a.value == b.value


@pytest.fixture(scope="module")
def tiny_models():
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset
    from stylegan_eval.classifier import build_classifier, classifier_config

    G = Generator(get_preset("F-test16").generator)
    C = build_classifier(classifier_config(["a", "b", "c"], 8, fmap_base=64, fmap_max=16), seed=1)
    return G, C


def test_s_space_is_the_style_scales_of_the_sampled_w(tiny_models):
    from stylegan_core.stylespace import style_scales

    G, C = tiny_models
    spaces, labels = lf.sample_spaces_and_labels(G, C, 10, 4, seed=3, device=torch.device("cpu"), progress=False)
    assert list(spaces) == ["z", "w", "s"] and spaces["s"].shape == (10, 80) and labels.shape == (10, 3)
    with torch.no_grad():
        ws = G.mapping(torch.from_numpy(spaces["z"]))
        expected = style_scales(G.synthesis, ws).numpy()
    np.testing.assert_allclose(spaces["s"], expected, rtol=1e-5, atol=1e-6)
    assert set(np.unique(labels)) <= {0, 1}


def test_records_do_not_depend_on_batch_size_and_round_trip(tiny_models, tmp_path):
    from stylegan_eval.records import append_jsonl, read_jsonl

    G, C = tiny_models
    a = compute_disentanglement(G, C, spaces=("s",), num_samples=90, batch_size=7, seed=1, progress=False, model="tiny")
    b = compute_disentanglement(G, C, spaces=("s",), num_samples=90, batch_size=90, seed=1, progress=False)
    assert [r.metric for r in a] == ["dci_s", "mig_s", "sap_s"]
    for x, y in zip(a, b):
        assert x.value == pytest.approx(y.value, rel=1e-6)
    dci_s = a[0]
    assert dci_s.model == "tiny" and dci_s.params["regressor"] == "gbt" and dci_s.num_samples == 90
    assert dci_s.extras["dims"] == 80 and np.array(dci_s.extras["importance"]).shape == (80, len(dci_s.extras["factors"]))
    append_jsonl(tmp_path / "r.jsonl", dci_s)
    (back,) = read_jsonl(tmp_path / "r.jsonl")
    assert DisentanglementExtras.from_dict(back.extras) == DisentanglementExtras.from_dict(dci_s.extras)
    assert "NaN" not in json.dumps(ResultRecord.to_dict(a[1]))  # MIG has no DCI fields: null, not NaN


def test_lasso_regressor_and_single_class_attributes_are_dropped(tiny_models):
    G, _ = tiny_models

    class OneClass(_MeanClassifier):
        resolution = 8

        def forward(self, img):
            out = 10 * img.mean(dim=(2, 3))
            out[:, 1] = 5.0  # attribute "z1" is always present
            return out

    recs = compute_disentanglement(G, OneClass(), spaces=("w",), scores=("dci", "mig"), num_samples=60,
                                   dci_regressor="lasso", progress=False)
    for r in recs:
        assert r.extras["excluded_factors"] == ["z1"] and r.extras["factors"] == ["z0", "noise"]
    assert recs[0].params["regressor"] == "lasso" and recs[0].extras["regressor"] == "lasso"


@pytest.mark.parametrize(
    "kwargs, error, match",
    [
        ({"spaces": ("z", "x")}, DisentanglementError, "spaces must be distinct names"),
        ({"scores": ("dci", "beta")}, DisentanglementError, "scores must be distinct names"),
        ({"dci_regressor": "forest"}, DisentanglementError, "dci_regressor must be one of"),
        ({"num_samples": 3}, DisentanglementError, "num_samples must be at least 4"),
    ],
)
def test_bad_arguments(tiny_models, kwargs, error, match):
    G, C = tiny_models
    with pytest.raises(error, match=match):
        compute_disentanglement(G, C, progress=False, **{"num_samples": 20, **kwargs})


def test_stylespace_of_a_traditional_generator_is_an_error():
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset
    from stylegan_eval.classifier import build_classifier, classifier_config

    G = Generator(get_preset("B-test16").generator)
    C = build_classifier(classifier_config(["a", "b"], 8, fmap_base=64, fmap_max=16), seed=1)
    with pytest.raises(ConfigError, match="no StyleSpace"):
        compute_disentanglement(G, C, spaces=("s",), num_samples=8, progress=False)


TORCHRUN_SCRIPT = """
import json, sys
from stylegan_core import distributed
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.classifier import build_classifier, classifier_config
from stylegan_eval.metrics.latent_factors import compute_disentanglement

distributed.init("cpu")
G = Generator(get_preset("F-test16").generator)
C = build_classifier(classifier_config(["a", "b", "c"], 8, fmap_base=64, fmap_max=16), seed=1)
records = compute_disentanglement(G, C, spaces=("s",), scores=("mig", "sap"), num_samples=30, batch_size=4, seed=5,
                                  progress=False)
with open(sys.argv[1] + f".{distributed.rank()}", "w") as f:
    json.dump([{"value": r.value, "per_factor": r.extras["per_factor"], "processes": r.extras["processes"]}
               for r in records], f)
"""


@pytest.mark.slow
def test_one_and_two_torchrun_processes_agree(tmp_path, tiny_models):
    import os
    import subprocess
    import sys
    from pathlib import Path

    script = tmp_path / "run_dis.py"
    script.write_text(TORCHRUN_SCRIPT)
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(script),
           str(tmp_path / "out")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    rank0 = json.loads((tmp_path / "out.0").read_text())
    assert json.loads((tmp_path / "out.1").read_text()) == []  # only rank 0 fits and returns records
    assert [r["processes"] for r in rank0] == [2, 2]
    G, C = tiny_models
    one = compute_disentanglement(G, C, spaces=("s",), scores=("mig", "sap"), num_samples=30, batch_size=30, seed=5,
                                  progress=False)
    for r, two in zip(one, rank0):
        assert r.value == pytest.approx(two["value"], rel=1e-9) and r.extras["per_factor"] == pytest.approx(two["per_factor"])


def test_measure_disentanglement_returns_typed_results_from_one_sample_set(tiny_models, tmp_path, monkeypatch):
    from stylegan_core.checkpoint import save_generator
    from stylegan_eval import provenance
    from stylegan_eval.metrics.options import MetricOptions

    G, C = tiny_models
    calls = []
    synthesize = G.synthesis.forward
    monkeypatch.setattr(G.synthesis, "forward", lambda ws, **kw: calls.append(ws.shape[0]) or synthesize(ws, **kw))
    configs = [lf.DisentanglementConfig.of("dci", "lasso", ("z", "s"), num_samples=30),
               lf.DisentanglementConfig.of("mig", spaces=("s",), num_samples=24)]
    results = lf.measure_disentanglement(MetricOptions(G=G, seed=4, batch_size=16, progress=False), configs, C)
    assert calls == [16, 14]  # 30 samples made once for both scores
    assert [(r.metric, r.num_samples) for r in results] == [("dci_z", 30), ("dci_s", 30), ("mig_s", 24)]
    assert all(isinstance(r.extras, DisentanglementExtras) for r in results)
    assert results[1].extras.regressor == "lasso" and results[1].extras.dims == 80 and results[2].extras.num_train == 24
    monkeypatch.undo()

    hashed = []
    real_sha = provenance.file_sha256
    monkeypatch.setattr(provenance, "file_sha256", lambda p: hashed.append(p) or real_sha(p))
    ckpt = save_generator(tmp_path / "g.pt", G, "F-test16")
    recs = compute_disentanglement(G, C, spaces=("s", "z"), scores=("mig", "dci"), num_samples=30, seed=4,
                                   dci_regressor="lasso", checkpoint=str(ckpt), preset="F-test16", progress=False)
    assert len(hashed) == 1 and {r.checkpoint_sha256 for r in recs} == {real_sha(ckpt)}
    assert [r.metric for r in recs] == ["mig_s", "dci_s", "mig_z", "dci_z"]  # space-major, in the order asked
    by = {r.metric: r for r in recs}
    assert by["dci_z"].value == results[0].value and by["dci_s"].value == results[1].value
    assert by["dci_s"].params["preset"] == "F-test16" and by["dci_s"].extras == results[1].extras.to_dict()
