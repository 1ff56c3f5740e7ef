"""`stylegan-eval disentanglement` end to end on a tiny checkpoint and classifier, and its one-line errors."""

import json

import pytest

from stylegan_core.checkpoint import save_generator
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.classifier import build_classifier, classifier_config, save_classifier
from stylegan_eval.cli import main
from stylegan_eval.metrics.latent_factors import DisentanglementExtras
from stylegan_eval.records import read_jsonl


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    d = tmp_path_factory.mktemp("dis")
    ckpt = save_generator(d / "run1" / "snapshot-0000001000.pt", Generator(get_preset("F-test16").generator), "F-test16")
    clf = save_classifier(d / "clf.pt", build_classifier(classifier_config(["Smiling", "Hat", "Glasses"], 8, fmap_base=64,
                                                                           fmap_max=16), 1))
    return ckpt, clf


def test_table_json_and_results(files, tmp_path, capsys):
    ckpt, clf = files
    base = ["disentanglement", "--ckpt", str(ckpt.parent), "--classifier", str(clf), "--num-samples", "60", "--batch", "16",
            "--device", "cpu"]
    results = tmp_path / "results.jsonl"
    assert main([*base, "--results", str(results)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["space", "dims", "DCI-D", "DCI-C", "DCI-I", "MIG", "SAP"]
    assert [ln.split()[:2] for ln in lines[1:4]] == [["z", "16"], ["w", "16"], ["s", "80"]]
    assert "run1: 60 samples, 3 attributes" in lines[4]
    recs = read_jsonl(results)
    assert [r.metric for r in recs] == [f"{m}_{s}" for s in "zws" for m in ("dci", "mig", "sap")]
    dci_s = recs[6]
    assert dci_s.model == "run1" and dci_s.params["preset"] == "F-test16" and len(dci_s.checkpoint_sha256) == 64
    assert float(lines[3].split()[2]) == pytest.approx(dci_s.value, abs=5e-4)
    extras = DisentanglementExtras.from_dict(dci_s.extras)
    assert extras.dims == 80 and len(extras.importance) == 80 and extras.num_test == 20

    assert main([*base, "--json", "--spaces", "w", "--metrics", "mig", "--label", "mine"]) == 0
    (only,) = json.loads(capsys.readouterr().out)
    assert only["metric"] == "mig_w" and only["model"] == "mine" and only["extras"]["num_test"] == 0


def _error(capsys, args) -> str:
    try:
        code = main(args)
    except SystemExit as e:  # argparse refuses a bad value while parsing, in one line
        code = e.code
    assert code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1, err
    return err


def test_errors(files, tmp_path, capsys):
    ckpt, clf = files
    base = ["disentanglement", "--ckpt", str(ckpt), "--classifier", str(clf), "--num-samples", "8", "--device", "cpu"]
    assert "--spaces must be distinct names from z, w, s" in _error(capsys, [*base, "--spaces", "z,q"])
    assert "--metrics must be distinct names from dci, mig, sap" in _error(capsys, [*base, "--metrics", "dci,dci"])
    assert "--num-samples: must be at least 4, got 2" in _error(capsys, [*base[:-4], "--num-samples", "2", "--device", "cpu"])
    trad = save_generator(tmp_path / "b.pt", Generator(get_preset("B-test16").generator), "B-test16")
    assert "no StyleSpace" in _error(capsys, ["disentanglement", "--ckpt", str(trad), "--classifier", str(clf),
                                              "--num-samples", "8", "--spaces", "s", "--device", "cpu"])
