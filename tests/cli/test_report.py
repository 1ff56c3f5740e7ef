import json

import pytest

from stylegan_eval.cli import main
from tests.eval.test_report import write_results


def test_report_command_writes_folder(tmp_path, capsys):
    results = write_results(tmp_path / "results.jsonl")
    run = tmp_path / "run"
    run.mkdir()
    (run / "stats.jsonl").write_text("\n".join(json.dumps({"kimg": k, "loss_G": 1.0 / (k + 1)}) for k in range(4)))
    out = tmp_path / "rep"
    assert main(["report", str(results), str(run), "--out", str(out), "--title", "My comparison", "--no-published"]) == 0
    line = capsys.readouterr().out
    assert "14 records, 2 models" in line and str(out / "report.html") in line
    md = (out / "report.md").read_text()
    assert md.startswith("# My comparison") and "published:" not in md
    assert (out / "figures" / "training_0.png").is_file() and (out / "results.csv").is_file()


def test_report_command_errors_are_one_line(tmp_path, capsys):
    assert main(["report", str(tmp_path / "nope.jsonl"), "--out", str(tmp_path / "rep")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"stylegan-eval report: error: {tmp_path / 'nope.jsonl'}: no such results file or run folder"
    results = write_results(tmp_path / "results.jsonl")
    assert main(["report", str(results), "--out", str(tmp_path)]) == 2
    assert "is not a stylegan-eval report folder" in capsys.readouterr().err


def test_report_help_has_example(capsys):
    with pytest.raises(SystemExit):
        main(["report", "--help"])
    assert "stylegan-eval report results.jsonl --out reports/compare" in capsys.readouterr().out
