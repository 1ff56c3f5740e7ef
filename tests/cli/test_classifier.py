"""`stylegan-eval classifier train|info` on a tiny synthetic dataset, and its one-line errors."""

import json

import pytest
import torch

from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.cli import main
from stylegan_eval.classifier import load_classifier

TINY = ["--resolution", "8", "--fmap-base", "64", "--fmap-max", "16", "--kimg", "0.2", "--batch", "16"]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("data") / "synth", num=60, resolution=16, seed=1)


def test_train_prints_table_and_saves(synth, tmp_path, capsys):
    out = tmp_path / "clf.pt"
    args = ["classifier", "train", "--data", str(synth), "--out", str(out), "--attributes", "Pale_Skin,Smiling", *TINY]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "attribute" in text and "held-out" in text and "majority" in text
    assert "Pale_Skin" in text and "Smiling" in text and "Eyeglasses" not in text
    assert "(54 training / 6 held-out images, 200 shown)" in text
    clf = load_classifier(out)
    assert clf.attribute_names == ["Pale_Skin", "Smiling"] and clf.resolution == 8
    assert clf.report["num_heldout"] == 6 and len(clf.report["heldout_accuracy"]) == 2

    assert main(["classifier", "info", str(out)]) == 0
    info = capsys.readouterr().out
    assert "2 attributes at 8x8" in info and "Pale_Skin" in info and "held-out" in info
    assert main(["classifier", "info", str(out), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["config"]["attributes"] == ["Pale_Skin", "Smiling"]


def test_train_is_seeded(synth, tmp_path):
    base = ["classifier", "train", "--data", str(synth), "--attrs", str(synth / "attributes.csv"),
            "--attributes", "Pale_Skin", *TINY, "--kimg", "0.05"]
    assert main([*base, "--out", str(tmp_path / "a.pt")]) == 0
    assert main([*base, "--out", str(tmp_path / "b.pt")]) == 0
    a, b = load_classifier(tmp_path / "a.pt").state_dict(), load_classifier(tmp_path / "b.pt").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)


def _error(capsys, args) -> str:
    assert main(args) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_unknown_attribute_names(synth, tmp_path, capsys):
    err = _error(capsys, ["classifier", "train", "--data", str(synth), "--out", str(tmp_path / "c.pt"),
                          "--attributes", "Smiling,Wings", *TINY])
    assert "unknown attribute name(s) Wings" in err and "Smiling" in err


def test_single_class_attribute(synth, tmp_path, capsys):
    rows = (synth / "attributes.csv").read_text().splitlines()
    fixed = [rows[0]] + [r.rsplit(",", 1)[0] + ",1" for r in rows[1:]]  # Light_Background always 1
    (tmp_path / "attrs.csv").write_text("\n".join(fixed) + "\n")
    err = _error(capsys, ["classifier", "train", "--data", str(synth), "--attrs", str(tmp_path / "attrs.csv"),
                          "--out", str(tmp_path / "c.pt"), "--attributes", "Smiling,Light_Background", *TINY])
    assert "attribute 'Light_Background' has a single class" in err and not (tmp_path / "c.pt").exists()


def test_labels_that_do_not_match_the_images(synth, tmp_path, capsys):
    lines = (synth / "list_attr.txt").read_text().splitlines()
    (tmp_path / "short.txt").write_text("\n".join(["59", *lines[1:-1]]) + "\n")  # one image has no row
    err = _error(capsys, ["classifier", "train", "--data", str(synth), "--attrs", str(tmp_path / "short.txt"),
                          "--out", str(tmp_path / "c.pt"), *TINY])
    assert "no row for image" in err
    renamed = lines[:2] + [lines[2].replace(".png", "x.png")] + lines[3:]
    (tmp_path / "renamed.txt").write_text("\n".join(renamed) + "\n")
    err = _error(capsys, ["classifier", "train", "--data", str(synth), "--attrs", str(tmp_path / "renamed.txt"),
                          "--out", str(tmp_path / "c.pt"), *TINY])
    assert "no row for image" in err or "no such image" in err


def test_missing_attribute_file_and_bad_classifier(tmp_path, capsys):
    (tmp_path / "img").mkdir()
    err = _error(capsys, ["classifier", "train", "--data", str(tmp_path / "img"), "--out", str(tmp_path / "c.pt")])
    assert "list_attr.txt not found; pass --attrs FILE" in err
    (tmp_path / "bad.pt").write_bytes(b"not a model")
    assert "not a classifier checkpoint" in _error(capsys, ["classifier", "info", str(tmp_path / "bad.pt")])


def test_resolution_must_divide_the_images(synth, tmp_path, capsys):
    err = _error(capsys, ["classifier", "train", "--data", str(synth), "--out", str(tmp_path / "c.pt"),
                          "--attributes", "Smiling", *TINY, "--resolution", "32"])
    assert "images are 16px" in err
