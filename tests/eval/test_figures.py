import json

import numpy as np
import pytest
from PIL import Image

from stylegan_eval import figures as F
from stylegan_eval.metrics.ppl import PPLExtras
from stylegan_eval.metrics.separability import LSExtras
from stylegan_eval.records import ResultRecord


def record(metric, extras):
    return ResultRecord(metric, 1.0, {}, 10, 0, "m", None, None, None, 0.1, extras)


def assert_png_with_content(path):
    img = np.asarray(Image.open(path).convert("L"), dtype=np.float64)
    assert img.shape[0] > 100 and img.shape[1] > 100
    assert img.std() > 5  # not a blank canvas


def test_ppl_histogram_writes_png(tmp_path):
    rng = np.random.default_rng(0)
    dists = {"ppl_zfull": rng.lognormal(4, 1, 400), "ppl_wfull": rng.lognormal(3, 1, 400), "ppl_wend": rng.lognormal(3, 0.5, 400)}
    fig = F.ppl_histogram("F-cpu32", dists, tmp_path / "h.png")
    assert fig.path == tmp_path / "h.png" and "F-cpu32" in fig.title
    assert_png_with_content(fig.path)


def test_ppl_histogram_constant_distances(tmp_path):
    fig = F.ppl_histogram("m", {"ppl_wend": np.full(50, 3.0)}, tmp_path / "h.png")
    assert_png_with_content(fig.path)


def ppl_extras(dists_file):
    """What compute_ppl writes into a record's extras (PPLExtras.to_dict)."""
    return PPLExtras(1.0, 0.1, {"1": 0.5, "50": 1.0, "99": 2.0}, 8, 16, 1, dists_file).to_dict()


def test_dists_path_resolves_relative_to_results_folder(tmp_path, monkeypatch):
    np.save(tmp_path / "d.npy", np.ones(3))
    monkeypatch.chdir("/")
    assert F.dists_path(record("ppl_wend", ppl_extras("d.npy")), tmp_path) == tmp_path / "d.npy"
    assert F.dists_path(record("ppl_wend", ppl_extras(str(tmp_path / "d.npy")))) == tmp_path / "d.npy"
    assert F.dists_path(record("ppl_wend", ppl_extras("missing.npy")), tmp_path) is None
    assert F.dists_path(record("ppl_wend", ppl_extras(None)), tmp_path) is None  # --save-dists not given
    assert "dists_file" not in ppl_extras(None)


def test_extras_are_read_by_field_and_a_misspelt_key_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown extras .*dists_path"):
        F.dists_path(record("ppl_wend", {**ppl_extras(None), "dists_path": "d.npy"}), tmp_path)
    with pytest.raises(ValueError, match="unknown extras .*conditional_entropies"):
        F.entropies_of(record("ls_z", {**ls_extras(["a"], [0.3]), "conditional_entropies": [0.3]}))


def ls_extras(names, entropies):
    """What compute_separability writes into a record's extras (LSExtras.to_dict)."""
    n = len(names)
    return LSExtras(names, entropies, [1.0] * n, ["ok"] * n, [5] * n, 10, 1, []).to_dict()


def test_entropies_of_separability_records_only():
    assert F.entropies_of(record("ls_w", ls_extras(["smile", "hat"], [0.1, 0.2]))) == {"smile": 0.1, "hat": 0.2}
    assert F.entropies_of(record("ppl_wend", ppl_extras(None))) is None


def test_figures_read_what_the_producers_write(tmp_path, torch_home):
    """Records from compute_ppl / compute_separability themselves feed the figure inputs."""
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset
    from stylegan_eval.classifier import build_classifier, classifier_config
    from stylegan_eval.metrics.ppl import compute_ppl
    from stylegan_eval.metrics.separability import compute_separability

    G = Generator(get_preset("F-test16").generator)
    rec = compute_ppl(G, num_samples=4, crop=False, substitute_weights=True, save_dists=tmp_path / "d.npy", progress=False)
    assert F.dists_path(rec) == tmp_path / "d.npy" and np.load(tmp_path / "d.npy").shape == (4,)
    clf = build_classifier(classifier_config(["Smiling", "Hat"], 8, fmap_base=64, fmap_max=16), 0)
    (ls_w,) = compute_separability(G, clf, num_samples=20, spaces=("w",), progress=False)
    assert list(F.entropies_of(ls_w)) == ["Smiling", "Hat"]


def test_entropy_bars(tmp_path):
    fig = F.entropy_bars("m", {"a": 0.3, "b": 0.1}, {"a": 0.1, "b": 0.05}, tmp_path / "e.png")
    assert_png_with_content(fig.path)
    fig = F.entropy_bars("m", None, {"a": 0.1}, tmp_path / "e2.png")
    assert_png_with_content(fig.path)


def test_training_curves_flat_and_nested(tmp_path):
    stats = tmp_path / "run" / "stats.jsonl"
    stats.parent.mkdir()
    lines = [json.dumps({"kimg": k, "loss": {"G": 1.0 / (k + 1), "D": 0.5}, "images_per_s": 100 + k}) for k in range(5)]
    stats.write_text("\n".join(lines) + '\n{"kimg": 5, "lo')  # a torn last line is skipped
    assert len(F.read_stats(stats)) == 5
    fig = F.training_curves(stats, tmp_path / "t.png")
    assert fig is not None and fig.title == "Training curves: run"
    assert_png_with_content(fig.path)
    flat = tmp_path / "flat.jsonl"
    flat.write_text("\n".join(json.dumps({"cur_nimg": i * 64, "loss_D": 0.1 * i}) for i in range(3)))
    assert F.training_curves(flat, tmp_path / "f.png") is not None


def test_training_curves_nothing_to_plot(tmp_path):
    stats = tmp_path / "s.jsonl"
    stats.write_text(json.dumps({"message": "started"}) + "\n")
    assert F.training_curves(stats, tmp_path / "t.png") is None
    assert not (tmp_path / "t.png").exists()


def test_sample_figures_with_real_generators(tmp_path):
    from stylegan_core.generator import Generator
    from stylegan_core.presets import get_preset

    style = F.sample_figures(Generator(get_preset("F-test16").generator), "F", True, tmp_path)
    names = [p.split("/")[-1] for _, p in style]
    assert names == ["F_samples.png", "F_truncation.png", "F_interpolation.png", "F_style_mixing.png"]
    sizes = {n: Image.open(tmp_path / n).size for n in names}
    assert sizes["F_samples.png"] == (8 * 16, 4 * 16)  # 32 seeds, 8 columns of 16x16
    assert sizes["F_truncation.png"] == (6 * 16, 4 * 16)  # 4 seeds x 6 psis
    assert sizes["F_interpolation.png"] == (8 * 16, 2 * 16)  # Z strip over W strip
    assert sizes["F_style_mixing.png"] == (6 * 16, 4 * 16)  # header row/column + 3 x 5
    trad = F.sample_figures(Generator(get_preset("B-test16").generator), "B", False, tmp_path)
    assert [t for t, _ in trad if "style mixing" in t] == [] and len(trad) == 3
