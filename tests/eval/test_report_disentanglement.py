"""The report's disentanglement section: table space x score beside separability, the measured
ordering, and the DCI importance heatmaps, from records the real producers wrote."""

import math

import numpy as np
import pytest

from stylegan_eval.figures import dci_heatmaps
from stylegan_eval.html_report import write_report
from stylegan_eval.metrics.latent_factors import compute_disentanglement
from stylegan_eval.records import append_jsonl
from stylegan_eval.report import disentanglement_ordering, disentanglement_table, load_inputs
from stylegan_eval.metrics.separability import compute_separability


@pytest.fixture(scope="module")
def results(tmp_path_factory):
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset
    from stylegan_eval.classifier import build_classifier, classifier_config

    G = Generator(get_preset("F-test16").generator)
    C = build_classifier(classifier_config(["a", "b", "c"], 8, fmap_base=64, fmap_max=16), seed=1)
    path = tmp_path_factory.mktemp("dis-report") / "results.jsonl"
    records = compute_separability(G, C, num_samples=60, batch_size=30, progress=False, model="tiny")
    records += compute_disentanglement(G, C, num_samples=90, batch_size=30, progress=False, model="tiny",
                                       dci_regressor="lasso")
    for r in records:
        append_jsonl(path, r)
    return path, {r.metric: r for r in records}


def test_table_has_one_row_per_space_beside_separability(results):
    path, recs = results
    table = disentanglement_table(load_inputs([path]).records)
    assert list(table.index) == [("tiny", "z"), ("tiny", "w"), ("tiny", "s")]
    assert table.at[("tiny", "z"), "Separability"] == recs["ls_z"].value
    assert math.isnan(table.at[("tiny", "s"), "Separability"]) and math.isnan(table.at[("tiny", "w"), "PPL end"])
    assert table.at[("tiny", "s"), "DCI-D"] == recs["dci_s"].value
    assert table.at[("tiny", "s"), "DCI-C"] == recs["dci_s"].extras["completeness"]
    assert table.at[("tiny", "w"), "MIG"] == recs["mig_w"].value and table.at[("tiny", "z"), "SAP"] == recs["sap_z"].value
    assert table.at[("tiny", "s"), "DCI predictor"] == "lasso"
    lines = disentanglement_ordering(table)
    assert len(lines) == 3 and lines[0].startswith("tiny: DCI-D ")
    best = max("zws", key=lambda s: recs[f"dci_{s}"].value)
    assert lines[0].split()[2] == best.upper()  # most disentangled space first


def test_table_is_empty_without_disentanglement_records(results, tmp_path):
    path, recs = results
    only_ls = tmp_path / "ls.jsonl"
    append_jsonl(only_ls, recs["ls_z"])
    assert disentanglement_table(load_inputs([only_ls]).records).empty


def test_report_section_and_heatmap(results, tmp_path):
    path, recs = results
    out = write_report(load_inputs([path]), tmp_path / "report")
    html = (out / "report.html").read_text()
    md = (out / "report.md").read_text()
    assert "Disentanglement by latent space" in html and 'id="disentanglement"' in html
    assert "tiny (S)" in md and f"{recs['dci_s'].value:.3f}" in md
    assert (out / "figures" / "dci_importance_0.png").stat().st_size > 5000


def test_heatmap_panels(results, tmp_path):
    import matplotlib.image

    _, recs = results
    fig = dci_heatmaps("tiny", {s: recs[f"dci_{s}"] for s in "zws"}, tmp_path / "h.png", top=10)
    img = matplotlib.image.imread(fig.path)
    assert img.shape[0] > img.shape[1] * 0.4 and np.std(img[..., :3]) > 0.05  # three stacked, non-blank panels
    one = dci_heatmaps("tiny", {"s": recs["dci_s"]}, tmp_path / "one.png")
    assert matplotlib.image.imread(one.path).shape[0] < img.shape[0]
