"""The demo end to end at unit-test size (16x16 presets, a few hundred images, a handful of
samples): the report folder holds every table, figure and record, the substitute networks are
announced, and the findings are computed from the measured records."""

import json

import pandas as pd
import pytest

from stylegan_eval.cli import main


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore:frechet_distance. singular covariance")  # 4 samples for 2048-d features
def test_tiny_demo_writes_a_complete_report(tmp_path, torch_home, capsys):
    out = tmp_path / "demo"
    assert main(["demo", "--tiny", "--out", str(out), "--device", "cpu", "--no-progress"]) == 0
    console = capsys.readouterr().out
    assert "stage 9/9: report" in console and f"report: {out / 'report' / 'report.html'}" in console
    assert "SUBSTITUTE NETWORKS" in console  # the empty torch_home has no pretrained weights
    assert console.count("finding: ") == 3

    meta = json.loads((out / "demo.json").read_text())
    assert meta["substitutes"] == ["LPIPS VGG16 (PPL)", "Inception-v3 (FID)"]
    assert set(meta["checkpoints"]) == {"F-test16", "B-test16"}
    assert not (out / ".demo-in-progress").exists()

    rep = out / "report"
    csv = pd.read_csv(rep / "results.csv")
    expected = {"ppl_zfull", "ppl_zend", "ppl_wfull", "ppl_wend", "ls_z", "ls_w", "fid50k", "kid50k"}
    disentanglement = {f"{score}_{space}" for score in ("dci", "mig", "sap") for space in "zws"}
    for model in ("F-test16", "B-test16"):
        got = csv[csv.model == model]
        assert set(got.metric) == (expected | disentanglement if model == "F-test16" else expected)
        assert got.checkpoint_sha256.notna().all() and (got.preset == model).all()
    assert csv[csv.metric.str.startswith(("ppl", "fid", "kid"))].substitute.all()
    # A handful of samples: KID is reported with its spread, FID is flagged instead of shown.
    assert "F-test16 kid50k = " in console and " +- " in console
    assert "F-test16 fid50k: not meaningful on" in console and "see KID" in console

    md = (rep / "report.md").read_text()
    assert md.startswith("# StyleGAN demo: F-test16 vs B-test16")
    assert "SUBSTITUTE FEATURE NETWORKS" in md and "| F-test16 |" in md and "| B-test16 |" in md
    assert "published: paper config F" in md and "Table 4 layout" in md
    assert "| F-test16 | n/m†‡§ |" in md and "§ not meaningful: FID of fewer than 2048 samples" in md and " ± " in md
    # Findings are stated with a verdict computed from the measured records.
    verdicts = [line for line in md.splitlines() if line.startswith("- **") and "**:" in line]
    assert len(verdicts) == 3
    figures = sorted(p.name for p in (rep / "figures").iterdir())
    assert "ppl_hist_0.png" in figures and "entropies_1.png" in figures and "dci_importance_0.png" in figures
    assert "Disentanglement by latent space" in md and "| F-test16 (S) |" in md
    assert any("style_mixing" in f for f in figures) and any("training" in f for f in figures)
    assert sum("B-test16_style_mixing" in f for f in figures) == 0  # no style mixing for a traditional G
    html = (rep / "report.html").read_text()
    assert html.count("data:image/png;base64,") == len(figures)

    # A second run needs --overwrite; a folder that is not a demo is never touched.
    assert main(["demo", "--tiny", "--out", str(out)]) == 2
    assert "pass --overwrite" in capsys.readouterr().err


def test_demo_refuses_a_foreign_folder(tmp_path, capsys):
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["demo", "--tiny", "--out", str(tmp_path), "--overwrite"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"stylegan-eval demo: error: {tmp_path}: exists, is not empty and is not a demo folder; choose another --out"
    assert (tmp_path / "notes.txt").read_text() == "mine"


def test_demo_help_has_examples(capsys):
    with pytest.raises(SystemExit):
        main(["demo", "--help"])
    help_text = capsys.readouterr().out
    assert "stylegan-eval demo --tiny --out demo-smoke" in help_text and "--minutes" in help_text


def test_demo_config_errors():
    from stylegan_core.errors import ConfigError
    from stylegan_eval.demo import DemoConfig

    with pytest.raises(ConfigError, match="--minutes must be a positive number"):
        DemoConfig(minutes=0)
    with pytest.raises(ConfigError, match="at least 100 images"):
        DemoConfig(num_images=10)
    with pytest.raises(ConfigError, match="metrics_share must be between 0 and 1"):
        DemoConfig(metrics_share=1.5)
    with pytest.raises(ConfigError, match="fid_samples must be at least 2"):
        DemoConfig(fid_samples=1)
    assert DemoConfig.for_minutes(60).num_images == 30_000 and DemoConfig.for_minutes(5).num_images == 10_000


def test_sample_counts_fill_the_metrics_budget():
    from stylegan_eval.demo import DemoConfig, _size_samples

    costs = {"gen:F": 0.01, "gen:B": 0.01, "lpips": 0.005, "classifier": 0.002, "inception": 0.1}
    n = _size_samples(costs, ["F", "B"], 300.0, DemoConfig())
    ppl_s = 4 * n["ppl"] * (2 * 0.02 + 2 * 0.005)
    ls_s = n["ls"] * (0.02 + 2 * 0.002)
    fid_s = n["fid"] * (0.02 + 3 * 0.1)
    assert ppl_s == pytest.approx(0.45 * 300, rel=0.01) and ls_s == pytest.approx(0.2 * 300, rel=0.01)
    assert fid_s == pytest.approx(0.35 * 300, rel=0.01)
    # Caps at the paper's counts; explicit counts win.
    fast = {k: 1e-9 for k in costs}
    assert _size_samples(fast, ["F", "B"], 300.0, DemoConfig()) == {"ppl": 100_000, "ls": 200_000, "fid": 50_000}
    fixed = DemoConfig(ppl_samples=5, ls_samples=6, fid_samples=7)
    assert _size_samples(costs, ["F", "B"], 300.0, fixed) == {"ppl": 5, "ls": 6, "fid": 7}


class _FakeTime:
    """A clock that advances ten seconds per reading, so chunk sizes do not depend on the machine."""

    def __init__(self):
        self.now = 0.0

    def perf_counter(self):
        self.now += 10.0
        return self.now


@pytest.mark.slow
def test_time_bounded_training_resumes_in_chunks(tmp_path, monkeypatch):
    import json as _json

    from stylegan_core.data import open_dataset
    from stylegan_core.presets import get_preset
    from stylegan_core.schedule import training_config
    from stylegan_core.synthetic import synthesize_dataset
    from stylegan_eval import demo

    data = synthesize_dataset(tmp_path / "data", 64, 16, 0)
    ds = open_dataset(data / "images")
    cfg = training_config("cpu", minibatch_base=8, lod_training_kimg=0.05, lod_transition_kimg=0.05,
                          snapshot_kimg=1e6, tick_kimg=0.016, grid_size=4)
    monkeypatch.setattr(demo, "time", _FakeTime())
    lines = []
    snap = demo._train_for(tmp_path / "run", ds, get_preset("F-test16"), cfg, 100.0, "cpu",
                           demo._Clock(60, lines.append), False)
    # A first chunk of two rounds (64 images) measures the speed; later chunks at most double.
    shown = [int(line.split(": ")[1].split(" images")[0]) for line in lines]
    assert len(shown) >= 2 and shown[0] == 64
    steps = [b - a for a, b in zip([0] + shown, shown)]
    assert all(b <= 2 * a for a, b in zip(steps, steps[1:]))
    stats = [_json.loads(s) for s in (tmp_path / "run" / "stats.jsonl").read_text().splitlines()]
    nimgs = [s["nimg"] for s in stats]
    assert nimgs == sorted(nimgs) and snap.name == f"snapshot-{nimgs[-1]:010d}.pt"
