"""`stylegan-eval ls` end to end on a tiny checkpoint and classifier, and its one-line errors."""

import json

import pytest

from stylegan_core.checkpoint import save_generator
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.classifier import build_classifier, classifier_config, save_classifier
from stylegan_eval.cli import main
from stylegan_eval.records import read_jsonl


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("ls")
    ckpt = save_generator(d / "run1" / "snapshot-0000001000.pt", Generator(get_preset("F-test16").generator), "F-test16")
    clf = save_classifier(d / "clf.pt", build_classifier(classifier_config(["Smiling", "Hat"], 8, fmap_base=64, fmap_max=16), 0))
    return ckpt, clf


def test_ls_table_json_and_results(files, tmp_path, capsys):
    ckpt, clf = files
    base = ["ls", "--ckpt", str(ckpt.parent), "--classifier", str(clf), "--num-samples", "40", "--batch", "16",
            "--device", "cpu"]
    results = tmp_path / "results.jsonl"
    assert main([*base, "--results", str(results)]) == 0
    text = capsys.readouterr().out
    assert "Smiling" in text and "Hat" in text and "ls_z " in text and "ls_w " in text
    assert "run1: 40 samples, 20 kept per attribute, 2 attributes" in text
    assert "note: 20 kept samples in 16 dimensions" in text  # too few points: the score is biased to 1
    z, w = read_jsonl(results)
    assert (z.metric, w.metric) == ("ls_z", "ls_w") and z.model == "run1" and z.params["preset"] == "F-test16"
    assert z.checkpoint == str(ckpt) and len(z.checkpoint_sha256) == 64
    assert z.feature_network.weights == str(clf) and len(z.feature_network.sha256) == 64

    assert main([*base, "--json", "--spaces", "w", "--label", "mine", "--num-keep", "10", "--batch", "40"]) == 0
    (only_w,) = json.loads(capsys.readouterr().out)
    assert only_w["metric"] == "ls_w" and only_w["model"] == "mine" and only_w["extras"]["num_keep"] == 10


def _error(capsys, args) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_ls_errors(files, tmp_path, capsys):
    ckpt, clf = files
    (tmp_path / "bad.pt").write_bytes(b"garbage")
    base = ["ls", "--ckpt", str(ckpt), "--num-samples", "8", "--device", "cpu"]
    assert "not a classifier checkpoint" in _error(capsys, [*base, "--classifier", str(tmp_path / "bad.pt")])
    assert "is it a generator" in _error(capsys, [*base, "--classifier", str(ckpt)])
    assert "no such file" in _error(capsys, [*base, "--classifier", str(tmp_path / "none.pt")])
    assert "--spaces must be" in _error(capsys, [*base, "--classifier", str(clf), "--spaces", "x"])
    assert "num_keep must be in 1..8" in _error(capsys, [*base, "--classifier", str(clf), "--num-keep", "9"])
    big = save_classifier(tmp_path / "big.pt", build_classifier(classifier_config(["a"], 32, fmap_base=64, fmap_max=16), 0))
    assert "the classifier needs 32px" in _error(capsys, [*base, "--classifier", str(big)])
