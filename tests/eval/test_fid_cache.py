"""stylegan_eval.fid_cache and how compute_fid uses it: entries keyed by the dataset's content,
the image count and the feature network; a hit skips the real images; a stale, foreign or
corrupt entry is never used; writes are atomic; a cache that cannot be written is a warning."""

import errno
import os
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from stylegan_core import atomic
from stylegan_core.data import open_dataset
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval import fid_cache
from stylegan_eval.metrics.fid import compute_fid

from tests.eval.metrics.test_fid import PixelFeatures


class CountingDataset:
    """open_dataset's object, counting the images read."""

    def __init__(self, ds):
        self.ds, self.reads = ds, 0

    def __len__(self):
        return len(self.ds)

    def __getitem__(self, i):
        self.reads += 1
        return self.ds[i]

    def fingerprint(self):
        return self.ds.fingerprint()


@pytest.fixture(scope="module")
def G():
    return Generator(get_preset("F-test16").generator).eval()


@pytest.fixture
def data_dir(tmp_path):
    return synthesize_dataset(tmp_path / "data", 20, 16, seed=0)


def fid(G, data, cache, **kw):
    args = dict(num_gen=16, num_real=20, batch_size=8, cache_dir=cache, extractor=PixelFeatures())
    args.update(kw)
    return compute_fid(G, data, **args)


def test_second_run_hits_the_cache_and_skips_the_real_images(G, data_dir, tmp_path):
    first = CountingDataset(open_dataset(data_dir))
    a = fid(G, first, tmp_path / "c")
    assert first.reads == 20 and not a.extras["cache_hit"]
    again = CountingDataset(open_dataset(data_dir))
    b = fid(G, again, tmp_path / "c")
    assert again.reads == 0 and b.extras["cache_hit"] and b.value == pytest.approx(a.value, rel=1e-12)
    assert len(list((tmp_path / "c").glob("fid-stats-*.pt"))) == 1
    # --no-cache: recount (and refresh the entry), same value.
    forced = CountingDataset(open_dataset(data_dir))
    c = fid(G, forced, tmp_path / "c", use_cache=False)
    assert forced.reads == 20 and not c.extras["cache_hit"] and c.value == pytest.approx(a.value, rel=1e-12)


def test_changing_one_image_invalidates_the_cache(G, data_dir, tmp_path):
    a = fid(G, data_dir, tmp_path / "c")
    path = data_dir / "images" / "000007.png"
    img = np.asarray(Image.open(path)).copy()
    img[:8] = 255 - img[:8]
    Image.fromarray(img).save(path)
    b = fid(G, data_dir, tmp_path / "c")
    assert not b.extras["cache_hit"] and b.value != a.value
    assert b.params["data_fingerprint"] != a.params["data_fingerprint"]
    assert len(list((tmp_path / "c").glob("fid-stats-*.pt"))) == 2


def test_count_and_feature_network_are_part_of_the_key(G, data_dir, tmp_path):
    fid(G, data_dir, tmp_path / "c")
    assert not fid(G, data_dir, tmp_path / "c", num_real=12).extras["cache_hit"]

    class Other(PixelFeatures):
        digest = "other-weights"

    assert not fid(G, data_dir, tmp_path / "c", extractor=Other()).extras["cache_hit"]
    assert fid(G, data_dir, tmp_path / "c").extras["cache_hit"]


def test_entry_for_another_key_or_version_is_never_used(tmp_path):
    key = {"dataset": "abc", "num_images": 3}
    fid_cache.save_entry(tmp_path, "fid-stats", key, {"x": torch.ones(2)})
    assert torch.equal(fid_cache.load_entry(tmp_path, "fid-stats", key)["x"], torch.ones(2))
    assert fid_cache.load_entry(tmp_path, "fid-stats", {**key, "num_images": 4}) is None
    # A file renamed onto another key's name (or written by another version) is a miss.
    other = {"dataset": "abd", "num_images": 3}
    shutil.copy(fid_cache.entry_path(tmp_path, "fid-stats", key), fid_cache.entry_path(tmp_path, "fid-stats", other))
    assert fid_cache.load_entry(tmp_path, "fid-stats", other) is None


def test_corrupt_entry_is_a_miss_with_a_warning(tmp_path):
    key = {"dataset": "abc"}
    fid_cache.entry_path(tmp_path, "fid-stats", key).write_bytes(b"truncated")
    with pytest.warns(RuntimeWarning, match="ignoring unreadable cache file"):
        assert fid_cache.load_entry(tmp_path, "fid-stats", key) is None


def test_atomic_save_leaves_no_partial_file(tmp_path):
    class Unpicklable:
        def __reduce__(self):
            raise RuntimeError("boom")

    target = tmp_path / "x.pt"
    with pytest.raises(RuntimeError, match="boom"):
        fid_cache.atomic_save({"bad": Unpicklable()}, target)
    assert os.listdir(tmp_path) == []


def test_default_cache_dir_is_outside_the_package(monkeypatch, tmp_path):
    monkeypatch.delenv("STYLEGAN_EVAL_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert fid_cache.default_cache_dir() == tmp_path / "stylegan-eval"
    monkeypatch.setenv("STYLEGAN_EVAL_CACHE", str(tmp_path / "elsewhere"))
    assert fid_cache.default_cache_dir() == tmp_path / "elsewhere"


def _file_where_the_folder_goes(tmp_path, monkeypatch):
    (tmp_path / "blocker").write_text("a file, not a folder")
    return tmp_path / "blocker" / "cache"


def _disk_full(tmp_path, monkeypatch):
    def no_space(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(atomic.os, "fsync", no_space)
    return tmp_path / "c"


@pytest.mark.parametrize("make_cache", [_file_where_the_folder_goes, _disk_full], ids=["not-a-folder", "disk-full"])
def test_unwritable_cache_is_a_warning_and_the_value_is_returned(G, data_dir, tmp_path, monkeypatch, make_cache):
    expected = fid(G, data_dir, tmp_path / "ok").value
    cache = make_cache(tmp_path, monkeypatch)
    with pytest.warns(RuntimeWarning, match=r"cache entry not saved: .* is not writable \((Not a directory|File exists|No space left on device)\); the result is unaffected"):
        result = fid(G, data_dir, cache)
    assert result.value == pytest.approx(expected, rel=1e-12) and not result.extras["cache_hit"]
    assert not [p for p in tmp_path.rglob("*.tmp")]  # the failed write left no temporary behind
