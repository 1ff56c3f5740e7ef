import json

import numpy as np
from PIL import Image

from stylegan_eval import figures as F
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


def test_dists_path_resolves_relative_to_results_folder(tmp_path, monkeypatch):
    np.save(tmp_path / "d.npy", np.ones(3))
    monkeypatch.chdir("/")
    assert F.dists_path(record("ppl_wend", {"dists_path": "d.npy"}), tmp_path) == tmp_path / "d.npy"
    assert F.dists_path(record("ppl_wend", {"dists_path": str(tmp_path / "d.npy")})) == tmp_path / "d.npy"
    assert F.dists_path(record("ppl_wend", {"dists_path": "missing.npy"}), tmp_path) is None
    assert F.dists_path(record("ppl_wend", {"note": "d.npy"}), tmp_path) is None


def test_entropies_of_dict_and_list_forms():
    assert F.entropies_of(record("ls_w", {"entropies": {"smile": 0.1, "hat": 0.2}})) == {"smile": 0.1, "hat": 0.2}
    got = F.entropies_of(record("ls_z", {"conditional_entropies": [0.3, 0.4], "attributes": ["a", "b"]}))
    assert got == {"a": 0.3, "b": 0.4}
    assert F.entropies_of(record("ls_z", {"svm_accuracy": {"a": 0.9}})) is None


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
