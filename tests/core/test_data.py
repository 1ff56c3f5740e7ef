import zipfile

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core.attributes import read_attributes
from stylegan_core.data import open_dataset
from stylegan_core.errors import ConfigError, DatasetError
from stylegan_core.synthetic import SYNTH_ATTRIBUTES, synthesize_dataset


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("d") / "synth", 12, 16, seed=3)


def _png(path, arr, mode=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(arr, dtype=np.uint8), mode).save(path)


def _rgb(seed, size=8, h=None):
    return np.random.default_rng(seed).integers(0, 256, (h or size, size, 3), dtype=np.uint8)


def test_synthetic_folder_opens_with_its_labels(synth):
    ds = open_dataset(synth, attributes=synth / "list_attr.txt")
    assert len(ds) == 12 and ds.resolution == 16 and ds.num_channels == 3 and ds.skipped == 0
    x = ds[5]
    assert x.dtype == torch.uint8 and x.shape == (3, 16, 16)
    assert np.array_equal(x.permute(1, 2, 0).numpy(), np.asarray(Image.open(synth / "images" / "000005.png")))
    assert ds.attribute_names == list(SYNTH_ATTRIBUTES)
    table = read_attributes(synth / "list_attr.txt")
    assert ds.attributes.dtype == torch.int8 and np.array_equal(ds.attributes.numpy(), table.values)
    ds_csv = open_dataset(synth, attributes=synth / "attributes.csv")
    assert torch.equal(ds_csv.attributes, ds.attributes)
    everything = ds.load_all()
    assert everything.shape == (12, 3, 16, 16) and torch.equal(everything[5], x)
    picked = open_dataset(synth, attributes=synth / "attributes.csv", attribute_names=["Smiling", "Eyeglasses"])
    assert picked.attribute_names == ["Smiling", "Eyeglasses"]
    assert torch.equal(picked.attributes[:, 1], ds.attributes[:, 0])


def test_zip_equals_folder_and_uncached_equals_cached(synth, tmp_path):
    z = tmp_path / "synth.zip"
    with zipfile.ZipFile(z, "w") as f:
        for p in sorted((synth / "images").iterdir()):
            f.write(p, f"images/{p.name}")
        f.writestr("__MACOSX/images/._000000.png", b"junk")
    folder, zipped = open_dataset(synth), open_dataset(z, attributes=synth / "list_attr.txt")
    assert zipped.names == folder.names
    assert torch.equal(zipped.load_all(), folder.load_all())
    assert zipped.fingerprint() == folder.fingerprint()
    lazy = open_dataset(z, cache_bytes=0)
    assert torch.equal(lazy.load_all(), folder.load_all()) and torch.equal(lazy[-1], folder[11])
    with pytest.raises(IndexError):
        lazy[12]


def test_recursive_search_ignores_hidden_and_other_files(tmp_path):
    _png(tmp_path / "b" / "deep" / "x.png", _rgb(0))
    _png(tmp_path / "a.png", _rgb(1))
    Image.fromarray(_rgb(2)).save(tmp_path / "c.JPEG", quality=95)
    _png(tmp_path / ".hidden" / "h.png", _rgb(3))
    _png(tmp_path / ".h.png", _rgb(3))
    (tmp_path / "notes.txt").write_text("not an image")
    ds = open_dataset(tmp_path)
    assert ds.names == ("a.png", "b/deep/x.png", "c.JPEG")
    assert np.array_equal(ds[0].permute(1, 2, 0).numpy(), _rgb(1))


def test_fingerprint_follows_content_and_sizing(tmp_path):
    for i in range(3):
        _png(tmp_path / f"{i}.png", _rgb(i))
    before = open_dataset(tmp_path).fingerprint()
    assert open_dataset(tmp_path).fingerprint() == before
    assert open_dataset(tmp_path, resolution=8).fingerprint() == before
    assert open_dataset(tmp_path, resolution=4, fit="resize").fingerprint() != before
    changed = _rgb(1)
    changed[0, 0, 0] ^= 1
    _png(tmp_path / "1.png", changed)
    assert open_dataset(tmp_path).fingerprint() != before
    (tmp_path / "1.png").rename(tmp_path / "9.png")
    assert open_dataset(tmp_path).fingerprint() != before


def test_corrupt_image_is_named_or_skipped(tmp_path):
    for i in range(3):
        _png(tmp_path / f"{i}.png", _rgb(i))
    good = (tmp_path / "1.png").read_bytes()
    (tmp_path / "1.png").write_bytes(good[: len(good) // 2])  # truncated
    (tmp_path / "3.jpg").write_bytes(b"this is not a jpeg")
    with pytest.raises(DatasetError, match=r"cannot read image .*1\.png.*on_bad_image='skip'"):
        open_dataset(tmp_path)
    ds = open_dataset(tmp_path, on_bad_image="skip")
    assert len(ds) == 2 and ds.skipped == 2 and ds.skipped_names == ("1.png", "3.jpg")
    assert "2 unreadable skipped" in ds.describe()


def test_all_bad_empty_missing_and_not_a_zip(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no PNG/JPEG images found in .*empty"):
        open_dataset(tmp_path / "empty")
    with pytest.raises(DatasetError, match="does not exist"):
        open_dataset(tmp_path / "nope")
    (tmp_path / "file.zip").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="not a zip archive"):
        open_dataset(tmp_path / "file.zip")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "x.png").write_bytes(b"nope")
    with pytest.raises(DatasetError, match="none of the 1 images"):
        open_dataset(bad, on_bad_image="skip")


def test_sizes_must_be_square_powers_of_two_unless_fit_is_given(tmp_path):
    img = np.zeros((8, 12, 3), np.uint8)
    img[:, 2:10] = (0, 0, 255)  # blue centre square, red bars left and right
    img[:, :2] = img[:, 10:] = (255, 0, 0)
    _png(tmp_path / "wide.png", img)
    with pytest.raises(DatasetError, match=r"wide\.png is 12x8; .*square with a power-of-two side.*fit="):
        open_dataset(tmp_path)
    with pytest.raises(ConfigError, match="needs an explicit resolution"):
        open_dataset(tmp_path, fit="resize")
    with pytest.raises(ConfigError, match="power of two"):
        open_dataset(tmp_path, resolution=12, fit="resize")
    cropped = open_dataset(tmp_path, resolution=4, fit="center-crop")[0]
    assert cropped.shape == (3, 4, 4) and (cropped[2] > 200).all() and (cropped[0] < 30).all()
    resized = open_dataset(tmp_path, resolution=4, fit="resize")[0]
    assert resized.shape == (3, 4, 4) and (resized[0, :, 0] > 100).all()  # the red bar survives
    with pytest.raises(ConfigError, match="fit must be"):
        open_dataset(tmp_path, fit="stretch")
    with pytest.raises(ConfigError, match="on_bad_image must be"):
        open_dataset(tmp_path, on_bad_image="ignore")


def test_mixed_sizes_are_refused(tmp_path):
    _png(tmp_path / "a.png", _rgb(0, 8))
    _png(tmp_path / "b.png", _rgb(0, 16))
    with pytest.raises(DatasetError, match=r"b\.png is 16x16 but the dataset resolution is 8x8"):
        open_dataset(tmp_path)
    with pytest.raises(DatasetError, match=r"a\.png is 8x8 but the dataset resolution is 16x16"):
        open_dataset(tmp_path, resolution=16)
    assert open_dataset(tmp_path, resolution=8, fit="resize").load_all().shape == (2, 3, 8, 8)


def test_grayscale_rgba_and_16_bit_become_rgb(tmp_path):
    gray = np.arange(64, dtype=np.uint8).reshape(8, 8) * 4
    _png(tmp_path / "g.png", gray, "L")
    rgba = np.dstack([_rgb(1), np.full((8, 8), 7, np.uint8)])
    _png(tmp_path / "r.png", rgba, "RGBA")
    Image.fromarray((gray.astype(np.uint16) * 257)).save(tmp_path / "w.png")  # 16-bit grayscale
    ds = open_dataset(tmp_path)
    assert ds.num_channels == 3 and ds.load_all().shape == (3, 3, 8, 8)
    assert all(torch.equal(ds[0][c], torch.from_numpy(gray)) for c in range(3))
    assert np.array_equal(ds[1].permute(1, 2, 0).numpy(), _rgb(1))  # alpha dropped, colour kept
    assert torch.equal(ds[2][1], torch.from_numpy(gray))
    assert ds.conversions["L"] == 1 and ds.conversions["RGBA"] == 1
    assert "alpha dropped" in ds.describe()


def _labelled(tmp_path, n=3):
    for i in range(n):
        _png(tmp_path / "img" / f"{i}.png", _rgb(i))
    return tmp_path / "img"


def _celeba(path, count, rows, names="A B"):
    path.write_text(f"{count}\n{names}\n" + "".join(r + "\n" for r in rows))
    return path


def test_attribute_file_problems_name_the_line(tmp_path):
    d = _labelled(tmp_path)
    ok = _celeba(tmp_path / "ok.txt", 3, ["0.png  1 -1", "1.png -1  0", "2.png  1  1"])
    assert open_dataset(d, attributes=ok).attributes.tolist() == [[1, -1], [-1, 0], [1, 1]]
    cases = {
        "missing": (["0.png 1 -1", "1.png -1 1"], 2, r"no row for image .*2\.png"),
        "extra": (["0.png 1 -1", "1.png -1 1", "2.png 1 1", "7.png 1 1"], 4, r"extra\.txt:6: row for '7\.png' but no such image"),
        "value": (["0.png 1 -1", "1.png -1 2", "2.png 1 1"], 3, r"value\.txt:4: value '2' for attribute 'B' is not 1, -1 or 0"),
        "short": (["0.png 1 -1", "1.png -1", "2.png 1 1"], 3, r"short\.txt:4: expected a file name and 2 values \(one per attribute\), got a file name and 1 value$"),
        "count": (["0.png 1 -1", "1.png -1 1", "2.png 1 1"], 5, r"count\.txt:1: the header says 5 rows but the file has 3"),
        "dup": (["0.png 1 -1", "0.png -1 1", "2.png 1 1"], 3, r"dup\.txt:4: file '0\.png' already listed on line 3"),
    }
    for name, (rows, count, pattern) in cases.items():
        with pytest.raises(DatasetError, match=pattern):
            open_dataset(d, attributes=_celeba(tmp_path / f"{name}.txt", count, rows))
    with pytest.raises(DatasetError, match=r"names\.txt:2: attribute name 'A' appears twice"):
        read_attributes(_celeba(tmp_path / "names.txt", 0, [], names="A A"))
    with pytest.raises(DatasetError, match=r"head\.txt:1: expected the number of rows"):
        read_attributes(_celeba(tmp_path / "head.txt", "A B", []))
    with pytest.raises(DatasetError, match=r"unknown attribute name\(s\) Smiling; the file has: A, B"):
        read_attributes(ok, ["A", "Smiling"])
    with pytest.raises(DatasetError, match="cannot read attribute file"):
        read_attributes(tmp_path / "absent.txt")


def test_csv_attribute_files(tmp_path):
    d = _labelled(tmp_path)
    good = tmp_path / "ok.csv"
    good.write_text("file,Smiling,Hat\n2.png,1,-1\n0.png,-1,-1\n1.png,0,1\n")
    ds = open_dataset(d, attributes=good)
    assert ds.attribute_names == ["Smiling", "Hat"] and ds.attributes.tolist() == [[-1, -1], [0, 1], [1, -1]]
    bad = tmp_path / "bad.csv"
    bad.write_text("file,Smiling,Hat\n0.png,1,-1\n1.png,yes,1\n2.png,1,1\n")
    with pytest.raises(DatasetError, match=r"bad\.csv:3: value 'yes' for attribute 'Smiling'"):
        open_dataset(d, attributes=bad)
    header = tmp_path / "header.csv"
    header.write_text("file\n0.png\n")
    with pytest.raises(DatasetError, match=r"header\.csv:1: expected a header"):
        read_attributes(header)
    no_names = tmp_path / "nonames.csv"
    no_names.write_text("Smiling,Hat\n1,-1\n")
    with pytest.raises(DatasetError, match=r"nonames\.csv:2: the first column must be the image file name, got '1'"):
        read_attributes(no_names)
    extra_col = tmp_path / "cols.csv"
    extra_col.write_text("file,Smiling\n0.png,1,1\n1.png,1\n2.png,1\n")
    with pytest.raises(DatasetError, match=r"cols\.csv:2: expected a file name and 1 value \(one per attribute\), got a file name and 2 values"):
        read_attributes(extra_col)


def test_rows_match_by_path_or_unique_file_name_and_skipped_rows_are_allowed(tmp_path):
    _png(tmp_path / "d" / "x" / "a.png", _rgb(0))
    _png(tmp_path / "d" / "y" / "a.png", _rgb(1))
    _png(tmp_path / "d" / "y" / "b.png", _rgb(2))
    (tmp_path / "d" / "y" / "c.png").write_bytes(b"corrupt")
    attrs = _celeba(tmp_path / "a.txt", 4, ["x/a.png 1", "y/a.png -1", "b.png 1", "c.png -1"], names="A")
    ds = open_dataset(tmp_path / "d", attributes=attrs, on_bad_image="skip")
    assert ds.attributes.tolist() == [[1], [-1], [1]] and ds.skipped == 1
    ambiguous = _celeba(tmp_path / "amb.txt", 3, ["a.png 1", "b.png 1", "c.png 1"], names="A")
    with pytest.raises(DatasetError, match=r"no row for image .*x/a\.png \(and 1 more\)"):
        open_dataset(tmp_path / "d", attributes=ambiguous, on_bad_image="skip")


def test_corrupt_zip_member_is_named(tmp_path):
    z = tmp_path / "d.zip"
    with zipfile.ZipFile(z, "w", zipfile.ZIP_STORED) as f:
        for i in range(2):
            _png(tmp_path / f"{i}.png", _rgb(i))
            f.write(tmp_path / f"{i}.png", f"{i}.png")
    raw = bytearray(z.read_bytes())
    at = raw.index(b"IDAT", raw.index(b"1.png")) + 8  # inside the second image's pixel data
    raw[at] ^= 0xFF
    z.write_bytes(bytes(raw))
    with pytest.raises(DatasetError, match=r"cannot read image .*d\.zip:1\.png"):
        open_dataset(z)
    assert len(open_dataset(z, on_bad_image="skip")) == 1


# ----------------------------------------------------------------------------------------------
# prefetch: loading ahead of the caller, in order, errors in the caller's thread
# ----------------------------------------------------------------------------------------------
@pytest.mark.parametrize("workers", [0, 1, 2, 4])
def test_prefetch_yields_every_result_in_key_order(workers):
    import threading
    import time

    from stylegan_core.data import prefetch

    threads = set()

    def load(k):
        time.sleep(0.002 * ((7 * k) % 5))  # later keys often finish first
        threads.add(threading.current_thread().name)
        return [k, k * k]

    got = list(prefetch(load, range(23), workers))
    assert got == [[k, k * k] for k in range(23)]
    # workers > 0 loads in the pool's threads, never in the caller's
    assert all(n.startswith("prefetch") for n in threads) == (workers > 0)


def test_prefetch_loads_the_next_keys_while_the_caller_holds_a_result():
    import threading

    from stylegan_core.data import prefetch

    started = {k: threading.Event() for k in range(6)}

    def load(k):
        started[k].set()
        return k

    it = prefetch(load, range(6), workers=2)
    assert next(it) == 0
    # While the caller works on result 0, keys 1 and 2 are being (or have been) loaded.
    assert started[1].wait(5) and started[2].wait(5)
    assert list(it) == [1, 2, 3, 4, 5]


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_prefetch_raises_a_loaders_error_in_turn_and_leaves_no_thread(workers):
    import threading

    from stylegan_core.data import prefetch

    before = threading.active_count()

    def load(k):
        if k == 3:
            raise DatasetError(f"cannot read image {k}.png: broken")
        return k

    got = []
    with pytest.raises(DatasetError) as e:
        for x in prefetch(load, range(10), workers):
            got.append(x)
    assert got == [0, 1, 2] and str(e.value) == "cannot read image 3.png: broken"
    assert threading.active_count() == before
    it = prefetch(load, range(3), workers)  # closed early: the pool is shut down
    assert next(it) == 0
    it.close()
    assert threading.active_count() == before
