import dataclasses
import hashlib

import numpy as np
import pytest
from PIL import Image

from stylegan_core.attributes import read_attributes
from stylegan_core.errors import ConfigError, DatasetError
from stylegan_core.synthetic import (
    SYNTH_ATTRIBUTES,
    SYNTH_PROBABILITIES,
    render,
    sample_params,
    synthesize,
    synthesize_dataset,
)

A = {name: k for k, name in enumerate(SYNTH_ATTRIBUTES)}


def _tree_digest(folder):
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_same_seed_gives_identical_files_and_chunking_does_not_matter(tmp_path):
    a = synthesize_dataset(tmp_path / "a", 23, 16, seed=5)
    b = synthesize_dataset(tmp_path / "b", 23, 16, seed=5, chunk_size=4)
    c = synthesize_dataset(tmp_path / "c", 23, 16, seed=6)
    da, db, dc = _tree_digest(a), _tree_digest(b), _tree_digest(c)
    assert da == db
    assert len(da) == 23 + 3 and "images/000022.png" in da and "list_attr.txt" in da
    assert da["images/000000.png"] != dc["images/000000.png"]


def test_image_depends_only_on_seed_and_index():
    whole, lab = synthesize(3, range(10), 32)
    part, lab_part = synthesize(3, [7, 8], 32)
    assert np.array_equal(whole[7:9], part) and np.array_equal(lab[7:9], lab_part)
    assert whole.shape == (10, 32, 32, 3) and whole.dtype == np.uint8
    assert set(np.unique(lab)) <= {-1, 1}


def test_label_files_agree_with_each_other_and_with_the_images(tmp_path):
    out = synthesize_dataset(tmp_path / "d", 30, 16, seed=1)
    txt = read_attributes(out / "list_attr.txt")
    csv = read_attributes(out / "attributes.csv")
    assert txt.names == csv.names == SYNTH_ATTRIBUTES
    assert txt.filenames == csv.filenames and np.array_equal(txt.values, csv.values)
    imgs, labels = synthesize(1, range(30), 16)
    assert np.array_equal(txt.values, labels)
    assert np.array_equal(np.asarray(Image.open(out / "images" / "000017.png")), imgs[17])
    assert (out / "list_attr.txt").read_text().splitlines()[0] == "30"


def test_attribute_rates_follow_the_probabilities():
    labels = sample_params(0, range(3000), 8).labels
    for name, p in SYNTH_PROBABILITIES.items():
        assert abs(labels[:, A[name]].mean() - p) < 0.04, name
    # roughly independent: no pair correlates strongly
    corr = np.corrcoef(labels.T.astype(float))
    assert np.abs(corr - np.eye(len(A))).max() < 0.1


@pytest.fixture(scope="module")
def drawn():
    params = sample_params(11, range(300), 32)
    return params, render(params, 32).astype(np.float32) / 255


def test_background_tone_is_visible_in_the_top_corners(drawn):
    params, imgs = drawn
    corners = np.concatenate([imgs[:, :3, :3], imgs[:, :3, -3:]], axis=1).mean(axis=(1, 2, 3))
    light = params.labels[:, A["Light_Background"]]
    assert corners[light].min() > 0.47 > corners[~light].max()


def test_skin_tone_is_visible_on_the_cheeks(drawn):
    params, imgs = drawn
    # below the eyes, beside the nose; skip beards and hats do not reach here
    keep = ~params.labels[:, A["Beard"]]
    cheeks = imgs[:, 17:19, 11:21].mean(axis=(1, 2, 3))
    pale = params.labels[:, A["Pale_Skin"]]
    assert cheeks[keep & pale].mean() - cheeks[keep & ~pale].mean() > 0.25
    threshold = (cheeks[keep & pale].mean() + cheeks[keep & ~pale].mean()) / 2
    assert ((cheeks > threshold) == pale)[keep].mean() > 0.9


def _flip(params, name, value):
    labels = params.labels.copy()
    labels[:, A[name]] = value
    return render(dataclasses.replace(params, labels=labels), 32).astype(np.float32) / 255


def _changed(params, name):
    """Pixels (any channel differs by > 0.1) that change when the attribute is switched on: [B, R, R]."""
    return np.abs(_flip(params, name, True) - _flip(params, name, False)).max(axis=-1) > 0.1


@pytest.mark.parametrize("name", SYNTH_ATTRIBUTES)
def test_every_attribute_is_clearly_visible_at_32(drawn, name):
    params, _ = drawn
    changed = _changed(sample_params(11, range(40), 32), name)
    assert changed.sum(axis=(1, 2)).min() >= 4, f"{name} changes too few pixels in some image"


def test_hat_is_a_saturated_colour_above_the_face(drawn):
    params, _ = drawn
    changed = _changed(params, "Wearing_Hat")
    rows = np.nonzero(changed.any(axis=(0, 2)))[0]
    assert rows.max() < 16  # the upper half only
    hat = _flip(params, "Wearing_Hat", True)
    sat = hat.max(axis=-1) - hat.min(axis=-1)
    assert sat[changed].mean() > 0.45


def test_smile_and_glasses_change_their_own_regions(drawn):
    params, imgs = drawn
    smile_rows = np.nonzero(_changed(params, "Smiling").any(axis=(0, 2)))[0]
    glasses_rows = np.nonzero(_changed(params, "Eyeglasses").any(axis=(0, 2)))[0]
    assert smile_rows.min() > 16 and glasses_rows.max() < 20 and glasses_rows.min() > 6
    # glasses darken the eye band
    with_g, without_g = _flip(params, "Eyeglasses", True), _flip(params, "Eyeglasses", False)
    assert (with_g[:, 9:17] < without_g[:, 9:17] - 1e-6).mean() > 0.05


def test_bad_arguments_and_existing_folders(tmp_path):
    with pytest.raises(ConfigError, match="power of two"):
        synthesize_dataset(tmp_path / "x", 4, 24, seed=0)
    with pytest.raises(ConfigError, match="at least 1"):
        synthesize_dataset(tmp_path / "x", 0, 16, seed=0)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "keep.txt").write_text("mine")
    # A folder of someone's files is never replaced, not even with overwrite.
    for overwrite in (False, True):
        with pytest.raises(DatasetError, match="not empty and is not a synthetic dataset.*never replaced"):
            synthesize_dataset(busy, 4, 16, seed=0, overwrite=overwrite)
    assert (busy / "keep.txt").read_text() == "mine"
    earlier = synthesize_dataset(tmp_path / "earlier", 2, 16, seed=0)
    with pytest.raises(DatasetError, match="earlier synthetic dataset.*--overwrite"):
        synthesize_dataset(earlier, 4, 16, seed=0)
    synthesize_dataset(earlier, 4, 16, seed=0, overwrite=True)
    assert len(list((earlier / "images").iterdir())) == 4
    empty = tmp_path / "empty"
    empty.mkdir()
    synthesize_dataset(empty, 2, 16, seed=0)
    assert (empty / "dataset.json").exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary left behind


def test_interrupted_run_leaves_nothing_that_looks_complete(tmp_path, monkeypatch):
    import stylegan_core.synthetic as synthetic

    def boom(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(synthetic, "_write_labels", boom)
    with pytest.raises(KeyboardInterrupt):
        synthesize_dataset(tmp_path / "out", 5, 16, seed=0)
    assert list(tmp_path.iterdir()) == []
