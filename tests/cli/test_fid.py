"""`stylegan-eval fid`: one readable line, --json, --results, one-line errors, and one end-to-end
run of a checkpoint through the real Inception loading path (stand-in weights file)."""

import json

import pytest

from stylegan_core.checkpoint import save_generator, snapshot_path
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval import inception
from stylegan_eval.cli import main
from stylegan_eval.records import read_jsonl

from tests.eval.metrics.test_fid import PixelFeatures
from tests.eval.test_inception import install_standin


@pytest.fixture
def setup(tmp_path):
    data = synthesize_dataset(tmp_path / "data", 12, 16, seed=0)
    ckpt = save_generator(tmp_path / "run" / "snap.pt", Generator(get_preset("F-test16").generator), preset="F-test16")
    return data, ckpt


@pytest.fixture
def cheap_features(monkeypatch):
    """The CLI's plumbing under test, not Inception: a 12-d pixel feature network."""
    monkeypatch.setattr(inception, "load_inception", lambda *a, **k: PixelFeatures())


def test_prints_one_line_and_appends_the_record(setup, tmp_path, capsys, cheap_features):
    data, ckpt = setup
    argv = ["fid", "--ckpt", str(ckpt), "--data", str(data), "--num-gen", "14", "--num-real", "12",
            "--batch", "5", "--device", "cpu", "--cache-dir", str(tmp_path / "c"), "--results", str(tmp_path / "r.jsonl")]
    assert main(argv) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("FID ") and "snap: 14 generated vs 12 real (counted)" in out[0]
    (rec,) = read_jsonl(tmp_path / "r.jsonl")
    assert rec.metric == "fid" and rec.model == "snap" and rec.params["preset"] == "F-test16"
    assert rec.checkpoint == str(ckpt) and len(rec.checkpoint_sha256) == 64 and rec.num_samples == 14

    assert main(argv[:-2] + ["--json", "--label", "mine"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == "mine" and record["extras"]["cache_hit"] is True
    assert record["value"] == pytest.approx(rec.value, rel=1e-12)


def test_missing_weights_is_one_line_exit_2(setup, tmp_path, torch_home, capsys):
    data, ckpt = setup
    rc = main(["fid", "--ckpt", str(ckpt), "--data", str(data), "--cache-dir", str(tmp_path / "c")])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "stylegan-eval fid: error:" in err[0] and "weights-inception-2015-12-05-6726825d.pth" in err[0]
    assert "--substitute-weights" in err[0]


def test_bad_inputs_are_one_line_errors(setup, tmp_path, capsys, cheap_features):
    data, ckpt = setup
    (tmp_path / "empty").mkdir()
    cases = [
        (["--ckpt", str(tmp_path / "nope.pt"), "--data", str(data)], "nope.pt"),
        (["--ckpt", str(ckpt), "--data", str(tmp_path / "empty")], "no PNG/JPEG images found"),
        (["--gen-folder", str(data), "--data", str(data), "--num-gen", "1"], "num_gen, num_real >= 2"),
    ]
    for args, message in cases:
        assert main(["fid", *args, "--cache-dir", str(tmp_path / "c")]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and message in err[0], err


def test_needs_exactly_one_source(setup, capsys):
    data, ckpt = setup
    with pytest.raises(SystemExit):
        main(["fid", "--data", str(data)])
    with pytest.raises(SystemExit):
        main(["fid", "--ckpt", str(ckpt), "--gen-folder", str(data), "--data", str(data)])
    assert "one of the arguments --ckpt --generator --gen-folder is required" in capsys.readouterr().err


@pytest.mark.slow
def test_end_to_end_checkpoint_with_real_loading_path(setup, tmp_path, torch_home, tmp_path_factory, monkeypatch, capsys):
    data, _ = setup
    run_dir = tmp_path / "F-test16-run"
    save_generator(snapshot_path(run_dir, 1000), Generator(get_preset("F-test16").generator), preset="F-test16")
    install_standin(torch_home, tmp_path_factory.getbasetemp(), monkeypatch)
    argv = ["fid", "--ckpt", str(run_dir), "--data", str(data), "--num-gen", "3", "--num-real", "3",
            "--batch", "3", "--device", "cpu", "--cache-dir", str(tmp_path / "c"), "--json"]
    with pytest.warns(RuntimeWarning, match="singular covariance"):  # 3 samples in 2048-d
        assert main(argv) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["feature_network"]["name"] == "inception-v3-compat"
    assert record["feature_network"]["substitute"] is False and record["model"] == "F-test16-run"
    assert record["value"] > 0 and record["params"]["noise_mode"] == "given"
