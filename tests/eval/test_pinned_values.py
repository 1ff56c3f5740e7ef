"""Values of the metric commands pinned before the metrics moved into `stylegan_eval.metrics`:
the same checkpoint, seed and options must keep giving the same numbers (a refactor of sampling,
seeding or noise handling that changes a single draw changes these)."""

import hashlib
import json

import numpy as np
import pytest
from PIL import Image

from stylegan_core.checkpoint import save_generator
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval import inception
from stylegan_eval.classifier import build_classifier, classifier_config, save_classifier
from stylegan_eval.cli import main

from tests.eval.metrics.test_fid import PixelFeatures

# Recorded on main before the refactor (CPU, one process, one thread).
PINNED = {
    "ppl_wend": 23.000462044030428,
    "ppl_zfull": 18.851977010071277,
    "fid": 0.9173324670881632,
    "ls_z": 2.1067811111434938,
    "ls_w": 1.5274531091229238,
}
PINNED_LS_ENTROPIES = {"ls_z": [0.6758043766021729, 0.3992360532283783], "ls_w": [0.38276591897010803, 0.22836217284202576]}
PINNED_GRID_SHA256 = "33ecc1049fe47cfb80cbbe061297ecfc2a8c6abbb1f7841a910dbe898230bdeb"


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("pinned")
    ckpt = save_generator(d / "g.pt", Generator(get_preset("F-test16").generator, seed=5), preset="F-test16")
    clf = save_classifier(d / "clf.pt", build_classifier(classifier_config(["Smiling", "Hat"], 8, fmap_base=64, fmap_max=16), 0))
    data = synthesize_dataset(d / "data", 12, 16, seed=0)
    return ckpt, clf, data


def _json(capsys, argv):
    assert main([*argv, "--device", "cpu", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_ppl(files, torch_home, capsys):
    ckpt = files[0]
    for space, sampling in (("w", "end"), ("z", "full")):
        rec = _json(capsys, ["ppl", "--ckpt", str(ckpt), "--space", space, "--sampling", sampling, "--num-samples", "10",
                             "--batch", "4", "--no-crop", "--seed", "7", "--substitute-weights"])
        # PPL divides image differences by eps**2 = 1e-8, so the last float32 bit of the generator's
        # arithmetic shows: on this 10-pair mean the code before the move already varied by 2.3e-4
        # with the batch size alone (23.0005 / 23.0040 / 23.0059 at batch 4 / 1 / 3), and the
        # allocation-lean generator stays inside that spread (22.9957 / 23.0027 / 23.0016).
        assert rec["value"] == pytest.approx(PINNED[rec["metric"]], rel=5e-4)


def test_fid(files, tmp_path, monkeypatch, capsys):
    ckpt, _, data = files
    monkeypatch.setattr(inception, "load_inception", lambda *a, **k: PixelFeatures())
    rec = _json(capsys, ["fid", "--ckpt", str(ckpt), "--data", str(data), "--num-gen", "14", "--num-real", "12",
                         "--batch", "5", "--seed", "3", "--cache-dir", str(tmp_path / "c")])
    assert rec["value"] == pytest.approx(PINNED["fid"], rel=1e-6)


def test_ls(files, capsys):
    ckpt, clf, _ = files
    assert main(["ls", "--ckpt", str(ckpt), "--classifier", str(clf), "--num-samples", "300", "--batch", "64",
                 "--num-keep", "240", "--seed", "2", "--device", "cpu", "--json"]) == 0
    for rec in json.loads(capsys.readouterr().out):
        assert rec["value"] == pytest.approx(PINNED[rec["metric"]], rel=1e-6)
        assert rec["extras"]["entropies"] == pytest.approx(PINNED_LS_ENTROPIES[rec["metric"]], rel=1e-6)


def test_generate(files, tmp_path, capsys):
    out = tmp_path / "grid.png"
    assert main(["generate", "grid", "--ckpt", str(files[0]), "--seeds", "0-3", "--cols", "2", "--out", str(out),
                 "--device", "cpu", "--noise-mode", "random"]) == 0
    digest = hashlib.sha256(np.asarray(Image.open(out)).tobytes()).hexdigest()  # pixels, not PNG bytes
    assert digest == PINNED_GRID_SHA256
