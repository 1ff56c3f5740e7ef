"""stylegan_eval.metrics.fid.dataset_batches, the one loader of every dataset feature pass
(FID statistics, KID/PR feature rows): the same batches as plain loading, in order, for any
number of prefetching threads, and an unreadable image raised as the same one-line error."""

import re

import numpy as np
import pytest
import torch

from stylegan_core.data import open_dataset
from stylegan_core.errors import DatasetError
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.metrics.feature_store import dataset_features
from stylegan_eval.metrics.fid import batch_schedule, dataset_batches, dataset_stats, load_images
from stylegan_eval.metrics.image_pass import dataset_loader

from tests.eval.metrics.test_fid import PixelFeatures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("batches") / "data", 21, 16, seed=5)


def plain(ds, batches):
    return [load_images(ds, idx) for idx in batches]


@pytest.mark.parametrize("cache_bytes", [0, 4 << 30])  # decoded on each read / kept in memory
@pytest.mark.parametrize("workers", [0, 1, 2, 5])
@pytest.mark.parametrize("batch_size", [1, 4, 8])
def test_prefetched_batches_equal_the_plain_ones_in_order(data_dir, cache_bytes, workers, batch_size):
    ds = open_dataset(data_dir, cache_bytes=cache_bytes)
    batches = [idx for _, bs in batch_schedule(0, 19, 6, batch_size) for idx in bs]
    assert [i for idx in batches for i in idx] == list(range(19))
    want = plain(ds, batches)
    got = list(dataset_batches(ds, batches, "cpu", workers))
    assert len(got) == len(want)
    assert all(g.dtype == torch.uint8 and torch.equal(g, w) for g, w in zip(got, want))
    # the image pass's dataset loader yields the same images under the same indices
    passed = list(dataset_loader(ds, "cpu", workers)(batches))
    assert [b.indices for b in passed] == batches
    assert all(torch.equal(b.uint8(), w) for b, w in zip(passed, want))


def test_dataset_passes_load_through_prefetch_and_do_not_depend_on_it(data_dir, tmp_path, monkeypatch):
    import stylegan_eval.metrics.fid as fid

    ds = open_dataset(data_dir, cache_bytes=0)
    real_prefetch, calls = fid.prefetch, []

    def results(workers):
        def forced(load, keys, _workers):
            calls.append(workers)
            return real_prefetch(load, keys, workers)

        monkeypatch.setattr(fid, "prefetch", forced)
        stats, hit, _ = dataset_stats(ds, ds.fingerprint(), 21, PixelFeatures(), 4, torch.device("cpu"),
                                      tmp_path / str(workers), False, False, "real", progress=False)
        store, _ = dataset_features(ds, 21, PixelFeatures(), 4, "cpu", tmp_path / str(workers), False, progress=False)
        return stats.state_dict(), store.load()

    (s0, rows0), (s3, rows3) = results(0), results(3)
    assert calls == [0, 0, 3, 3]  # both passes read through the one loader
    assert all(torch.equal(s0[k], s3[k]) if torch.is_tensor(s0[k]) else s0[k] == s3[k] for k in s0)
    assert np.array_equal(rows0, rows3)
    assert np.array_equal(rows0, PixelFeatures()(load_images(ds, range(21))).numpy())


@pytest.mark.parametrize("workers", [0, 1, 3])
def test_an_unreadable_image_raises_the_same_one_line_error(data_dir, tmp_path, workers):
    import shutil

    copy = tmp_path / "data"
    shutil.copytree(data_dir, copy)
    ds = open_dataset(copy, cache_bytes=0)  # read again in the pass
    bad = next(p for p in copy.rglob("*.png") if p.relative_to(copy).as_posix() == ds.names[9])
    bad.write_bytes(b"not a png")
    batches = [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9, 10, 11], [12, 13]]
    got = []
    with pytest.raises(DatasetError) as e:
        for images in dataset_batches(ds, batches, "cpu", workers):
            got.append(images)
    assert len(got) == 2  # the batches before the broken one
    msg = str(e.value)
    assert msg.startswith(f"cannot read image {bad}: ") and "\n" not in msg
    with pytest.raises(DatasetError) as plain_error:
        load_images(ds, batches[2])
    # equal up to the address of the in-memory file object Pillow's message may name
    assert re.sub("0x[0-9a-f]+", "", msg) == re.sub("0x[0-9a-f]+", "", str(plain_error.value))
    with pytest.raises(DatasetError, match="cannot read image"):
        dataset_stats(ds, ds.fingerprint(), 14, PixelFeatures(), 4, torch.device("cpu"), tmp_path / "c", False, False,
                      "real", progress=False)
