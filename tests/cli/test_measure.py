"""`stylegan-eval measure`: several protocols, one line (or record) each, one hash of the
checkpoint, and one-line errors."""

import json

import pytest

from stylegan_core.checkpoint import save_generator, snapshot_path
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval import inception, provenance
from stylegan_eval.classifier import build_classifier, classifier_config, save_classifier
from stylegan_eval.cli import main
from stylegan_eval.records import read_jsonl

from tests.eval.metrics.test_fid import PixelFeatures, PixelPRFeatures



@pytest.fixture
def files(tmp_path, monkeypatch):
    from stylegan_eval.metrics import precision_recall

    monkeypatch.setattr(inception, "load_inception", lambda *a, **k: PixelFeatures())
    monkeypatch.setattr(precision_recall, "load_pr_features", lambda *a, **k: PixelPRFeatures())
    data = synthesize_dataset(tmp_path / "data", 12, 16, seed=0)
    ckpt = save_generator(snapshot_path(tmp_path / "run", 1000), Generator(get_preset("F-test16").generator), preset="F-test16")
    clf = save_classifier(tmp_path / "clf.pt", build_classifier(classifier_config(["Smiling", "Hat"], 8, fmap_base=64, fmap_max=16), 0))
    return ckpt, data, clf


def test_records_lines_and_one_hash(files, tmp_path, capsys, monkeypatch):
    ckpt, data, clf = files
    hashed = []
    real_sha = provenance.file_sha256
    monkeypatch.setattr(provenance, "file_sha256", lambda p: hashed.append(p) or real_sha(p))
    results = tmp_path / "r.jsonl"
    argv = ["measure", "--ckpt", str(ckpt.parent), "--metrics", "fid50k,kid50k,pr50k3,ls", "--data", str(data),
            "--classifier", str(clf), "--num-samples", "12", "--batch", "5", "--device", "cpu",
            "--cache-dir", str(tmp_path / "c"), "--results", str(results)]
    assert main(argv) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["fid50k", "kid50k", "pr50k3_precision", "pr50k3_recall", "ls_z", "ls_w"]
    assert "+-" in lines[1] and "run: 12 samples (protocol: 50000)" in lines[0]
    records = read_jsonl(results)
    assert len(hashed) == 1 and {r.checkpoint_sha256 for r in records} == {records[0].checkpoint_sha256}
    assert all(r.model == "run" and r.params["preset"] == "F-test16" and r.num_samples == 12 for r in records)
    assert records[1].extras["std"] >= 0 and records[2].extras["recall"] == records[3].value

    assert main([*argv[:-2], "--metrics", "kid50k", "--json"]) == 0
    (kid,) = json.loads(capsys.readouterr().out)
    assert kid["value"] == pytest.approx(records[1].value, rel=1e-12)  # the same samples, the same subsets


@pytest.mark.parametrize("extra, message", [
    (["--metrics", "fid50k"], "measure: error: fid50k compare with real images: give the dataset with --data"),
    (["--metrics", "fid5k"], "measure: error: unknown metric fid5k"),
])
def test_errors_are_one_line(files, capsys, extra, message):
    ckpt = files[0]
    assert main(["measure", "--ckpt", str(ckpt), "--device", "cpu", *extra]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_same_values_as_the_single_commands(files, tmp_path, torch_home, capsys):
    ckpt, data, clf = files
    common = ["--ckpt", str(ckpt), "--batch", "5", "--device", "cpu", "--seed", "4", "--json"]
    assert main(["measure", *common, "--num-samples", "12", "--metrics", "ppl_wend,fid50k,ls", "--no-crop", "--substitute-weights",
                 "--data", str(data), "--classifier", str(clf), "--cache-dir", str(tmp_path / "c")]) == 0
    got = {r["metric"]: r for r in json.loads(capsys.readouterr().out)}
    assert got["ppl_wend"]["params"]["crop"] is False and got["ppl_wend"]["params"]["protocol_num_samples"] == 100_000
    assert main(["ppl", *common, "--num-samples", "12", "--space", "w", "--sampling", "end", "--no-crop", "--substitute-weights"]) == 0
    assert json.loads(capsys.readouterr().out)["value"] == got["ppl_wend"]["value"]
    assert main(["fid", *common, "--data", str(data), "--num-gen", "12", "--cache-dir", str(tmp_path / "c")]) == 0
    assert json.loads(capsys.readouterr().out)["value"] == pytest.approx(got["fid50k"]["value"], rel=1e-12)
    assert main(["ls", *common, "--num-samples", "12", "--classifier", str(clf)]) == 0
    assert [r["value"] for r in json.loads(capsys.readouterr().out)] == [got["ls_z"]["value"], got["ls_w"]["value"]]


def test_dci_mig_sap_equal_the_disentanglement_command(files, tmp_path, capsys, monkeypatch):
    """measure's dci/mig/sap (sharing the image pass with ls) give the disentanglement command's
    values for the same seed and samples; the checkpoint is hashed once."""
    ckpt = files[0]
    clf = save_classifier(tmp_path / "clf3.pt", build_classifier(classifier_config(["Smiling", "Hat", "Glasses"], 8,
                                                                                   fmap_base=64, fmap_max=16), 1))
    hashed = []
    real_sha = provenance.file_sha256
    monkeypatch.setattr(provenance, "file_sha256", lambda p: hashed.append(p) or real_sha(p))
    common = ["--ckpt", str(ckpt), "--classifier", str(clf), "--num-samples", "40", "--batch", "6", "--seed", "2",
              "--device", "cpu", "--spaces", "z,s"]
    results = tmp_path / "r.jsonl"
    assert main(["measure", *common, "--metrics", "ls,dci,mig,sap", "--results", str(results)]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == ["ls_z", "dci_z", "dci_s", "mig_z", "mig_s", "sap_z", "sap_s"]
    assert "completeness" in lines[1] and "snapshot-0000001000: 40 samples (protocol: 15000)" in lines[1]
    measured = {r.metric: r for r in read_jsonl(results)}
    assert len(hashed) == 1 and measured["dci_s"].extras["dims"] == 80
    assert main(["disentanglement", *common, "--json"]) == 0
    single = json.loads(capsys.readouterr().out)
    assert sorted(r["metric"] for r in single) == sorted(m for m in measured if m != "ls_z")
    for r in single:
        assert measured[r["metric"]].value == pytest.approx(r["value"], rel=1e-9), r["metric"]
        assert measured[r["metric"]].extras["factors"] == r["extras"]["factors"]
