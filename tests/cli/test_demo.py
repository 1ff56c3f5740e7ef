"""The demo end to end at unit-test size (16x16 presets, a few hundred images, a handful of
samples): the report folder holds every table, figure and record, the substitute networks are
announced, and the findings are computed from the measured records."""

import json

import pandas as pd
import pytest

from stylegan_eval.cli import main


@pytest.mark.slow
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
    expected = {"ppl_zfull", "ppl_zend", "ppl_wfull", "ppl_wend", "ls_z", "ls_w", "fid"}
    for model in ("F-test16", "B-test16"):
        got = csv[csv.model == model]
        assert set(got.metric) == expected
        assert got.checkpoint_sha256.notna().all() and (got.preset == model).all()
    assert csv[csv.metric.str.startswith(("ppl", "fid"))].substitute.all()

    md = (rep / "report.md").read_text()
    assert md.startswith("# StyleGAN demo: F-test16 vs B-test16")
    assert "SUBSTITUTE NETWORKS" in md and "| F-test16 |" in md and "| B-test16 |" in md
    assert "published: paper config F" in md and "Table 4 layout" in md
    # Findings are stated with a verdict computed from the measured records.
    verdicts = [line for line in md.splitlines() if line.startswith("- **") and "**:" in line]
    assert len(verdicts) == 3
    figures = sorted(p.name for p in (rep / "figures").iterdir())
    assert "ppl_hist_0.png" in figures and "entropies_1.png" in figures
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
    assert "stylegan-eval demo --tiny --out /tmp/smoke" in help_text and "--minutes" in help_text
