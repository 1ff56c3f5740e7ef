import json
import os
import signal
import subprocess
import sys
import time

import pytest

from stylegan_core import checkpoint as ck
from stylegan_eval.cli import main

# 8x8 for 32 images, 16x16 faded in over 64, then 16x16; minibatch 8, 32 images per round.
TINY = ["--preset", "F-test16", "--stab-kimg", "0.032", "--fade-kimg", "0.064", "--minibatch", "8",
        "--snapshot-kimg", "0.064", "--tick-kimg", "0.032", "--grid-size", "4", "--no-progress", "--device", "cpu"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    from stylegan_core.synthetic import synthesize_dataset

    return synthesize_dataset(tmp_path_factory.mktemp("data") / "synth16", 24, 16, seed=0)


def test_help_shows_options_and_example(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for needle in ("--data PATH", "--preset", "--resume", "--kimg KIMG", "--schedule", "--r1-gamma", "--mirror",
                   "examples:", "stylegan-eval train --data data/synth32 --preset F-cpu32 --out runs/f32",
                   "torchrun --nproc_per_node 8"):
        assert needle in text, needle


def test_train_then_resume_with_the_runs_own_options(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--kimg", "0.064", *TINY]) == 0
    out = capsys.readouterr().out
    assert "training F-test16 (logistic-r1, schedule cpu) for 0.064 kimg from 8x8 to 16x16" in out
    assert f"finished at 0.064 kimg; snapshot {run / 'snapshot-0000000064.pt'}" in out
    assert (run / "snapshot-0000000064.png").stat().st_size > 0
    stats = [json.loads(line) for line in (run / "stats.jsonl").read_text().splitlines()]
    assert [(s["nimg"], s["resolution"]) for s in stats] == [(32, 8), (64, 8)]
    info = ck.checkpoint_info(run)
    # The networks as saved: the last round (images 32..64) still stabilised 8x8; the fade comes next.
    assert (info["progress"]["lod"], info["progress"]["phase"], info["progress"]["resolution"]) == (1.0, "stabilise", 8)
    assert info["preset"] == "F-test16" and info["config"]["data"]["num_images"] == 24
    assert info["config"]["training"]["minibatch_base"] == 8

    # --resume alone: preset, data and schedule come from the run; only the length changes.
    assert main(["train", "--out", str(run), "--resume", "--kimg", "0.128", "--no-progress"]) == 0
    assert "finished at 0.128 kimg" in capsys.readouterr().out
    assert ck.latest_snapshot(run).name == "snapshot-0000000128.pt"
    assert ck.checkpoint_info(run)["config"]["training"]["total_kimg"] == 0.128
    G = ck.load_generator(run)
    assert float(G.synthesis.lod) == 0.0 and G.img_resolution == 16


def test_errors_are_one_line(data, tmp_path, capsys):
    run = tmp_path / "run"
    assert main(["train", "--data", str(data), "--out", str(run), "--kimg", "0.032", *TINY]) == 0
    capsys.readouterr()
    cases = [
        (["train", "--data", str(data), "--out", str(run), "--kimg", "0.032", *TINY],
         "already holds a run (run.json, stats.jsonl, snapshot-0000000032.pt); pass --resume"),
        (["train", "--out", str(run), "--resume", "--r1-gamma", "5"],
         "different configuration (training.r1_gamma: 10.0 -> 5.0)"),
        (["train", "--out", str(tmp_path / "none"), "--resume"], "nothing to resume in"),
        (["train", "--data", str(data), "--out", str(tmp_path / "x")], "--preset is required"),
        (["train", "--preset", "F-test16", "--out", str(tmp_path / "x")], "--data is required"),
        (["train", "--data", str(data), "--preset", "F-cpu32", "--out", str(tmp_path / "x")],
         "000000.png is 16x16 but the dataset resolution is 32x32"),
        (["train", "--data", str(data), "--preset", "Z", "--out", str(tmp_path / "x")], "unknown preset 'Z'"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        last = capsys.readouterr().err.replace("\r", "\n").strip().splitlines()[-1]  # after any progress bar
        assert last.startswith("stylegan-eval train: error: ") and message in last, (message, last)
    assert not (tmp_path / "x").exists()


@pytest.mark.slow
def test_sigint_saves_a_snapshot_and_exits_cleanly(data, tmp_path):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "stylegan_eval.cli", "train", "--data", str(data), "--out", str(run),
           "--kimg", "1000", *TINY]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.time() + 120
        while not (run / "stats.jsonl").exists() and time.time() < deadline and proc.poll() is None:
            time.sleep(0.2)
        assert (run / "stats.jsonl").exists(), proc.stderr.read() if proc.poll() is not None else "no stats"
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err[-2000:]
    assert "Traceback" not in err
    snap = ck.latest_snapshot(run)
    assert f"interrupted (SIGINT) at {ck.checkpoint_info(snap)['progress']['nimg'] / 1000:g} kimg; snapshot saved: {snap}" in out
    assert snap.with_suffix(".png").exists()
