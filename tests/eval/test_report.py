import json
import os

import numpy as np
import pandas as pd
import pytest

from stylegan_core.errors import UserError
from stylegan_eval.metrics.fid import FIDExtras
from stylegan_eval.metrics.ppl import PPLExtras
from stylegan_eval.metrics.separability import LSExtras
from stylegan_eval.html_report import MARKER, ReportOptions, write_report
from stylegan_eval.records import FeatureNetwork, ResultRecord, append_jsonl
from stylegan_eval.report import (
    FEWER_MARK, SUBSTITUTE_MARK, load_inputs, model_rows, model_table, qualitative_findings, records_frame,
    table4_rows,
)

LPIPS_SUB = FeatureNetwork("lpips-vgg16-v0.1", "substitute:random", True)
INCEPTION = FeatureNetwork("inception-v3-compat", "/x/pt_inception.pth", False, "ab" * 32)
CLASSIFIER = FeatureNetwork("attribute-classifier", "/x/cls.pt", False)


def ppl_extras(dists_file=None):
    """Extras as compute_ppl writes them."""
    return PPLExtras(1.0, 0.1, {"1": 0.5, "50": 1.0, "99": 2.0}, 90, 16, 1, dists_file).to_dict()


def ls_extras(entropies: dict[str, float]):
    """Extras as compute_separability writes them."""
    n = len(entropies)
    return LSExtras(list(entropies), list(entropies.values()), [0.9] * n, ["ok"] * n, [50] * n, 100, 1, []).to_dict()


def default_extras(metric):
    if metric.startswith("ppl_"):
        return ppl_extras()
    if metric.startswith("ls_"):
        return ls_extras({"smile": 0.5})
    return FIDExtras(50_000, False, 1.0, 1.0, 0.1, 1, "cpu").to_dict()


def rec(metric, value, model="F-cpu32", preset="F-cpu32", n=100, fn=LPIPS_SUB, sha="aa" * 32, extras=None, created=None):
    kw = {"created": created} if created else {}
    extras = default_extras(metric) if extras is None else extras
    return ResultRecord(metric, value, {"preset": preset}, n, 0, model, f"{model}.pt", sha, fn, 0.5, extras, **kw)


def full_set(model, preset, ppl_z, ppl_w, ls_z, ls_w, fid, sha, extras_ppl=None, extras_ls=None):
    out = []
    for s, dz in (("full", 0.0), ("end", 1.0)):
        out.append(rec(f"ppl_z{s}", ppl_z + dz, model, preset, sha=sha, extras=extras_ppl))
        out.append(rec(f"ppl_w{s}", ppl_w + dz, model, preset, sha=sha, extras=extras_ppl))
    out.append(rec("ls_z", ls_z, model, preset, n=200_000, fn=CLASSIFIER, sha=sha, extras=extras_ls))
    out.append(rec("ls_w", ls_w, model, preset, n=200_000, fn=CLASSIFIER, sha=sha, extras=extras_ls))
    out.append(rec("fid", fid, model, preset, n=50_000, fn=INCEPTION, sha=sha))
    return out


def write_results(path, style=(50.0, 30.0, 20.0, 10.0), trad=(60.0, 61.0, 40.0, 39.0), extras_ppl=None, extras_ls=None):
    for r in full_set("F-cpu32", "F-cpu32", *style, 80.0, "aa" * 32, extras_ppl, extras_ls) + \
            full_set("B-cpu32", "B-cpu32", *trad, 90.0, "bb" * 32, extras_ppl, extras_ls):
        append_jsonl(path, r)
    return path


def test_load_inputs_files_and_run_folders(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    write_results(run / "results.jsonl")
    (run / "stats.jsonl").write_text(json.dumps({"kimg": 1, "loss_G": 0.5}) + "\n")
    (run / "grid.png").write_bytes(b"\x89PNG")
    # The same file given twice (directly and through its folder) is read once.
    inputs = load_inputs([run, run / "results.jsonl"])
    assert len(inputs.records) == 14
    assert inputs.stats_files == [run / "stats.jsonl"]
    assert inputs.images == [run / "grid.png"]
    assert inputs.records[0].source == f"{run / 'results.jsonl'}:1"
    assert len({r.record_id for r in inputs.records}) == 14


def test_load_inputs_errors(tmp_path):
    with pytest.raises(UserError, match="no such results file or run folder"):
        load_inputs([tmp_path / "missing.jsonl"])
    with pytest.raises(UserError, match="no inputs"):
        load_inputs([])
    bad = tmp_path / "bad.jsonl"
    append_jsonl(bad, rec("fid", 1.0))
    with open(bad, "a") as f:
        f.write('{"metric": "fid"}\n')
    with pytest.raises(UserError, match=r"bad.jsonl:2: not a result record"):
        load_inputs([bad])


def test_records_frame_marks_substitutes_and_small_samples(tmp_path):
    frame = records_frame(load_inputs([write_results(tmp_path / "r.jsonl")]).records)
    ppl = frame[frame.metric == "ppl_wend"].iloc[0]
    assert ppl.substitute and ppl.fewer_samples and ppl.paper_num_samples == 100_000
    fid = frame[frame.metric == "fid"].iloc[0]
    assert not fid.substitute and not fid.fewer_samples and fid.feature_weights == "/x/pt_inception.pth"
    assert json.loads(ppl.params) == {"preset": "F-cpu32"}
    assert ppl.checkpoint_sha256 == "aa" * 32


def test_model_table_values_marks_and_provenance(tmp_path):
    inputs = load_inputs([write_results(tmp_path / "r.jsonl")])
    t = model_table(records_frame(inputs.records))
    assert list(t.values.index) == ["F-cpu32", "B-cpu32"]
    assert t.values.at["F-cpu32", "ppl_wend"] == 31.0 and t.values.at["B-cpu32", "ls_z"] == 40.0
    assert t.marks.at["F-cpu32", "ppl_zfull"] == SUBSTITUTE_MARK + FEWER_MARK
    assert t.marks.at["F-cpu32", "ls_w"] == "" and t.marks.at["F-cpu32", "fid"] == ""
    by_id = {r.record_id: r.record for r in inputs.records}
    rid = t.record_ids.at["B-cpu32", "ppl_zend"]
    assert by_id[rid].model == "B-cpu32" and by_id[rid].metric == "ppl_zend"
    assert t.info.at["F-cpu32", "kind"] == "style-based" and t.info.at["B-cpu32", "mapping_layers"] == 0


def test_model_table_latest_record_wins_and_same_label_different_checkpoints(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, rec("fid", 9.0, created="2026-01-02T00:00:00+00:00"))
    append_jsonl(path, rec("fid", 7.0, created="2026-01-01T00:00:00+00:00"))
    append_jsonl(path, rec("fid", 5.0, sha="cc" * 32))
    t = model_table(records_frame(load_inputs([path]).records))
    assert list(t.values.index) == ["F-cpu32 @aaaaaaaa", "F-cpu32 @cccccccc"]
    assert t.values.at["F-cpu32 @aaaaaaaa", "fid"] == 9.0
    assert pd.isna(t.values.at["F-cpu32 @cccccccc", "ppl_wend"])


def test_model_rows_put_published_numbers_after_matching_models(tmp_path):
    t = model_table(records_frame(load_inputs([write_results(tmp_path / "r.jsonl")]).records))
    rows = model_rows(t)
    labels = [r.label for r in rows]
    assert labels[0] == "F-cpu32" and labels[1].startswith("published: paper config F")
    assert "official FFHQ model" in labels[2] and labels[3] == "B-cpu32"
    assert rows[1].published and not rows[0].published
    assert rows[1].cells[0] == "4.40" and rows[1].record_ids[0] == "Table 1, Table 4"
    assert rows[0].cells[4] == "31.00" + SUBSTITUTE_MARK + FEWER_MARK
    assert [r.label for r in model_rows(t, published=False)] == ["F-cpu32", "B-cpu32"]


def test_table4_rows_group_by_kind_then_depth(tmp_path):
    t = model_table(records_frame(load_inputs([write_results(tmp_path / "r.jsonl")]).records))
    rows = table4_rows(t, published=False)
    assert [(k, d, r.label) for k, d, r in rows] == [
        ("traditional", "0", "B-cpu32 (Z)"), ("traditional", "0", "B-cpu32 (W)"),
        ("style-based", "8", "F-cpu32 (Z)"), ("style-based", "8", "F-cpu32 (W)"),
    ]
    assert rows[3][2].cells[1:] == ["30.00†‡", "31.00†‡", "10.00"]
    published = [r for _, _, r in table4_rows(t) if r.published]
    assert any(r.cells[1:] == ["234.00", "195.90", "3.79"] for r in published)


def findings_for(tmp_path, style, trad):
    t = model_table(records_frame(load_inputs([write_results(tmp_path / "r.jsonl", style, trad)]).records))
    return {f.claim.split(" (")[0]: f for f in qualitative_findings(t)}


def test_findings_held(tmp_path):
    f = findings_for(tmp_path, (50.0, 30.0, 20.0, 10.0), (60.0, 61.0, 40.0, 39.0))
    assert [x.verdict for x in f.values()] == ["held", "held", "held"]
    assert any("not applicable" in e for e in f["W paths are shorter than Z paths"].evidence)


def test_findings_did_not_hold_computed_from_values(tmp_path):
    # W longer and less separable than Z; the traditional model beats the style-based one.
    f = findings_for(tmp_path, (30.0, 50.0, 10.0, 20.0), (60.0, 61.0, 5.0, 39.0))
    assert [x.verdict for x in f.values()] == ["did not hold", "did not hold", "did not hold"]
    assert "F-cpu32: PPL full W 50.00 >= Z 30.00" in f["W paths are shorter than Z paths"].evidence


def test_findings_mixed_and_not_measured(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, rec("ppl_zfull", 10.0))
    append_jsonl(path, rec("ppl_wfull", 5.0))
    append_jsonl(path, rec("ppl_zend", 10.0))
    append_jsonl(path, rec("ppl_wend", 15.0))
    verdicts = [x.verdict for x in qualitative_findings(model_table(records_frame(load_inputs([path]).records)))]
    assert verdicts == ["mixed", "not measured", "not measured"]


def test_write_report_folder_contents(tmp_path):
    inputs = load_inputs([write_results(tmp_path / "r.jsonl")])
    out = write_report(inputs, tmp_path / "rep", ReportOptions(notes=("note one",), warnings=("look here",)))
    assert sorted(p.name for p in out.iterdir()) == sorted([MARKER, "figures", "report.html", "report.md", "results.csv"])
    csv = pd.read_csv(out / "results.csv")
    assert len(csv) == 14 and {"record_id", "source", "num_samples", "feature_network", "checkpoint_sha256"} <= set(csv.columns)
    md = (out / "report.md").read_text()
    assert "| F-cpu32 | 80.00 | 50.00†‡ |" in md
    assert "SUBSTITUTE FEATURE NETWORKS" in md and "lpips-vgg16-v0.1 (substitute:random)" in md
    assert "**HELD**: W paths are shorter" in md and "note one" in md and "**look here**" in md
    assert "published: paper config F, FFHQ (Tables 1, 3, 4)" in md
    page = (out / "report.html").read_text()
    assert page.startswith("<!DOCTYPE html>") and 'title="record ' in page and "<style>" in page
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".rep.")]


def test_write_report_replaces_only_earlier_reports(tmp_path):
    inputs = load_inputs([write_results(tmp_path / "r.jsonl")])
    out = write_report(inputs, tmp_path / "rep")
    (out / "stale.txt").write_text("x")
    write_report(inputs, out)
    assert not (out / "stale.txt").exists() and (out / "report.html").is_file()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "thesis.tex").write_text("keep me")
    with pytest.raises(UserError, match="not a stylegan-eval report folder"):
        write_report(inputs, foreign)
    assert (foreign / "thesis.tex").read_text() == "keep me"
    with pytest.raises(UserError, match="no result records"):
        write_report(load_inputs([tmp_path / "rep"]), tmp_path / "rep2")


def test_failed_build_leaves_previous_report_and_no_temp(tmp_path):
    inputs = load_inputs([write_results(tmp_path / "r.jsonl")])
    out = write_report(inputs, tmp_path / "rep")
    before = (out / "report.html").read_text()
    with pytest.raises(UserError, match="image for the report not found"):
        write_report(inputs, out, ReportOptions(images=(("grid", str(tmp_path / "nope.png")),)))
    assert (out / "report.html").read_text() == before
    assert sorted(os.listdir(tmp_path)) == ["r.jsonl", "rep"]


def test_report_figures_from_record_extras(tmp_path):
    np.save(tmp_path / "d.npy", np.random.default_rng(0).lognormal(3, 1, 300))
    write_results(tmp_path / "r.jsonl", extras_ppl=ppl_extras("d.npy"), extras_ls=ls_extras({"smile": 0.2, "hat": 0.4}))
    out = write_report(load_inputs([tmp_path / "r.jsonl"]), tmp_path / "rep")
    names = sorted(p.name for p in (out / "figures").iterdir())
    assert names == ["entropies_0.png", "entropies_1.png", "ppl_hist_0.png", "ppl_hist_1.png"]
    md = (out / "report.md").read_text()
    assert "![PPL distances: F-cpu32](figures/ppl_hist_0.png)" in md
    assert (out / "report.html").read_text().count("data:image/png;base64,") == 4


def test_records_without_checkpoint_hash_join_their_model_row(tmp_path):
    path = tmp_path / "r.jsonl"
    append_jsonl(path, rec("ppl_wend", 3.0))
    append_jsonl(path, rec("ls_w", 2.0, sha=None, fn=CLASSIFIER))
    t = model_table(records_frame(load_inputs([path]).records))
    assert list(t.values.index) == ["F-cpu32"]
    assert t.values.at["F-cpu32", "ls_w"] == 2.0 and t.info.at["F-cpu32", "checkpoint_sha256"] == "aa" * 32


def test_kid_with_its_std_and_precision_recall_columns(tmp_path):
    from stylegan_eval.metrics.image_metrics import KIDExtras, PRExtras
    from stylegan_eval.published import METRIC_COLUMNS

    path = tmp_path / "r.jsonl"
    pr = PRExtras(0.75, 0.5, 3, 1000).to_dict()
    append_jsonl(path, rec("kid50k", 0.01234, n=50_000, fn=INCEPTION, extras=KIDExtras(0.00056, 100, 1000, 50_000).to_dict()))
    append_jsonl(path, rec("pr50k3_precision", 0.75, n=1000, fn=INCEPTION, extras=pr))
    append_jsonl(path, rec("pr50k3_recall", 0.5, n=1000, fn=INCEPTION, extras=pr))
    frame = records_frame(load_inputs([path]).records)
    assert list(frame["column"]) == ["kid", "precision", "recall"]
    assert frame["std"].iloc[0] == 0.00056 and pd.isna(frame["std"].iloc[1])
    (row,) = model_rows(model_table(frame), published=False)
    cells = dict(zip(METRIC_COLUMNS, row.cells))
    assert cells["kid"] == "0.0123 ± 0.0006"
    assert cells["precision"] == "0.75" + FEWER_MARK and cells["recall"] == "0.50" + FEWER_MARK
    md = (write_report(load_inputs([path]), tmp_path / "rep") / "report.md").read_text()
    assert "KID" in md and "Precision" in md and "0.0123 ± 0.0006" in md
