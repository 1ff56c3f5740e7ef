"""`stylegan-eval ppl`: one readable line, --json, --results, --save-dists, one-line errors, and
one end-to-end run through the real LPIPS loading path (stand-in VGG16 file)."""

import json

import numpy as np
import pytest
import torch

from stylegan_core.checkpoint import save_generator, snapshot_path
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_eval.cli import main
from stylegan_eval.records import read_jsonl

from tests.eval.test_lpips_net import install_standin_vgg16


def shown_lines(stream: str) -> list[str]:
    """Lines as a terminal shows them: a progress bar cleared with a carriage return is gone."""
    return [line.rsplit("\r", 1)[-1] for line in stream.strip().split("\n")]


@pytest.fixture
def ckpt(tmp_path):
    return save_generator(snapshot_path(tmp_path / "run", 1000), Generator(get_preset("F-test16").generator), preset="F-test16")


def test_line_results_json_and_saved_distances(ckpt, tmp_path, torch_home, monkeypatch, capsys):
    weights = install_standin_vgg16(torch_home, monkeypatch)
    results, dists = tmp_path / "r.jsonl", tmp_path / "d.npy"
    argv = ["ppl", "--ckpt", str(ckpt), "--space", "z", "--sampling", "full", "--num-samples", "12", "--batch", "5",
            "--no-crop", "--device", "cpu", "--seed", "3", "--results", str(results), "--save-dists", str(dists)]
    assert main(argv) == 0
    out = capsys.readouterr()
    lines = out.out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("ppl_zfull ") and "snapshot-0000001000: 12 pairs, 12 kept" in lines[0]
    assert "16x16 whole image" in lines[0] and "SUBSTITUTE" not in out.out + out.err
    (rec,) = read_jsonl(results)
    assert rec.metric == "ppl_zfull" and rec.model == "snapshot-0000001000" and rec.params["preset"] == "F-test16"
    assert rec.params["crop"] is False and rec.seed == 3 and rec.num_samples == 12
    assert rec.checkpoint == str(ckpt) and len(rec.checkpoint_sha256) == 64
    assert rec.feature_network.weights == str(weights) and not rec.feature_network.substitute
    d = np.load(dists)
    assert d.shape == (12,) and rec.value == pytest.approx(d.mean(dtype=np.float64))  # 12 values: all kept

    assert main(["ppl", "--ckpt", str(ckpt.parent), "--space", "z", "--sampling", "full", "--num-samples", "12",
                 "--no-crop", "--device", "cpu", "--seed", "3", "--json"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert record["model"] == "run" and record["checkpoint"] == str(ckpt)  # a run folder: its latest snapshot
    assert record["value"] == pytest.approx(rec.value, rel=1e-3)  # another batch size: float32 rounding only


def test_substitute_is_named_on_the_console(ckpt, torch_home, capsys):
    assert main(["ppl", "--ckpt", str(ckpt), "--num-samples", "3", "--no-crop", "--substitute-weights",
                 "--label", "mine"]) == 0
    out = capsys.readouterr()
    assert "mine: 3 pairs" in out.out
    assert out.out.startswith("ppl_wend ") and "SUBSTITUTE substitute:random-vgg16-seed0" in out.out
    assert "WARNING: measured with SUBSTITUTE weights" in out.err


def test_missing_weights_is_one_line_exit_2(ckpt, torch_home, capsys):
    rc = main(["ppl", "--ckpt", str(ckpt), "--num-samples", "3", "--no-crop"])
    err = shown_lines(capsys.readouterr().err)
    assert rc == 2 and len(err) == 1
    assert err[0].startswith("stylegan-eval ppl: error:") and "vgg16-397923af.pth" in err[0]


def test_nan_generator_is_one_line_exit_2(tmp_path, torch_home, capsys):
    G = Generator(get_preset("F-test16").generator)
    with torch.no_grad():
        G.synthesis.parameters().__next__().fill_(float("nan"))
    path = save_generator(tmp_path / "nan.pt", G, preset="F-test16")
    rc = main(["ppl", "--ckpt", str(path), "--num-samples", "3", "--no-crop", "--substitute-weights"])
    err = shown_lines(capsys.readouterr().err)
    assert rc == 2 and len(err) == 1
    assert "stylegan-eval ppl: error: PPL: the generator produced NaN/Inf images" in err[0]


def test_bad_inputs_are_one_line_errors(ckpt, tmp_path, torch_home, capsys):
    cases = [  # numbers are refused while parsing (argparse exits 2), the rest by the library
        (["--num-samples", "0"], "argument --num-samples: must be at least 1, got 0"),
        (["--epsilon", "-1"], "argument --epsilon: must be more than 0, got -1"),
        (["--batch", "0"], "argument --batch: must be at least 1, got 0"),
        ([], "gives 8x8 images after the face crop"),  # 16x16 generator with the crop
    ]
    for extra, message in cases:
        try:
            rc = main(["ppl", "--ckpt", str(ckpt), "--substitute-weights", *extra])
        except SystemExit as e:
            rc = e.code
        err = shown_lines(capsys.readouterr().err)
        assert rc == 2 and len(err) == 1 and message in err[0], (extra, err)
    rc = main(["ppl", "--ckpt", str(tmp_path / "missing.pt"), "--no-crop"])
    err = shown_lines(capsys.readouterr().err)
    assert rc == 2 and len(err) == 1 and "missing.pt" in err[0]
