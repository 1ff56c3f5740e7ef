"""stylegan_eval.metrics.feature_store: the chunked on-disk store, the image-pass consumer that
fills it (rows of each sample in index order, whatever the batch size), the dataset cache and the
scratch folder of one run's generated rows."""

import numpy as np
import pytest
import torch

from stylegan_core.data import open_dataset
from stylegan_core.errors import ConfigError, NonFiniteError
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.metrics.feature_store import (
    FeatureStore,
    StoreConsumer,
    dataset_features,
    generated_store,
    scratch_folder,
)
from stylegan_eval.metrics.fid import DEFAULT_CHUNK, load_images
from stylegan_eval.metrics.generation import generate_uint8
from stylegan_eval.metrics.image_pass import generated_loader, run_pass

from tests.eval.metrics.test_fid import PixelFeatures


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("store") / "data", 24, 16, seed=0)


@pytest.fixture(scope="module")
def G():
    return Generator(get_preset("F-test16").generator).eval()


# ----------------------------------------------------------------------------------------------
# The folder
# ----------------------------------------------------------------------------------------------
def chunk_files(store):
    return sorted(p.name for p in store.directory.glob("chunk-*.npy"))


def test_chunks_stream_into_one_memory_mapped_file(tmp_path):
    rows = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    store = FeatureStore(tmp_path, "features", {"what": "test"}, num=10, dim=3, chunk_size=4)
    assert store.num_chunks == 3 and list(store.chunk_rows(2)) == [8, 9] and not store.directory.exists()
    store.prepare()
    for c in (2, 0):
        store.write_chunk(c, rows[store.chunk_rows(c).start : store.chunk_rows(c).stop])
    assert chunk_files(store) == ["chunk-000000.npy", "chunk-000002.npy"] and not store.complete
    with pytest.raises(RuntimeError, match=r"chunks \[1\] are missing"):
        store.finish()
    store.write_chunk(1, rows[4:8])
    store.finish()
    loaded = store.load()
    assert isinstance(loaded, np.memmap) and loaded.dtype == np.float32 and np.array_equal(loaded, rows)
    assert sorted(p.name for p in store.directory.iterdir()) == ["features.npy", "meta.json"]
    assert store.complete


def test_keys_name_the_folder_and_wrong_rows_are_refused(tmp_path):
    a = FeatureStore(tmp_path, "features", {"dataset": "x"}, 10, 3, 4)
    assert a.directory == FeatureStore(tmp_path, "features", {"dataset": "x"}, 10, 3, 4).directory
    for other in ({"dataset": "y"}, 10, 3, 5), ({"dataset": "x"}, 11, 3, 4), ({"dataset": "x"}, 10, 4, 4):
        assert FeatureStore(tmp_path, "features", *other).directory != a.directory
    a.prepare()
    with pytest.raises(ValueError, match=r"chunk 2 of features-[0-9a-f]{24}: expected rows \(2, 3\), got \(4, 3\)"):
        a.write_chunk(2, np.zeros((4, 3), np.float32))
    with pytest.raises(ConfigError, match="num, dim and chunk_size >= 1"):
        FeatureStore(tmp_path, "features", {}, 0, 3, 4)


def test_a_damaged_folder_is_emptied_not_trusted(tmp_path):
    store = FeatureStore(tmp_path, "features", {"what": "test"}, 4, 2, 2)
    store.prepare()
    store.write_chunk(0, np.ones((2, 2), np.float32))
    (store.directory / "meta.json").write_text("{broken")
    store.prepare()
    assert chunk_files(store) == []


# ----------------------------------------------------------------------------------------------
# Filling a store from the image pass
# ----------------------------------------------------------------------------------------------
def test_features_are_those_of_each_sample_in_index_order(data_dir, tmp_path):
    ds = open_dataset(data_dir)
    store, hit = dataset_features(ds, 20, PixelFeatures(), 8, torch.device("cpu"), tmp_path, True, progress=False)
    want = PixelFeatures()(load_images(ds, range(20))).numpy()
    assert not hit and np.array_equal(store.load(), want)
    assert sorted(p.name for p in store.directory.iterdir()) == ["features.npy", "meta.json"]
    again, hit = dataset_features(ds, 20, PixelFeatures(fail_after=0), 8, "cpu", tmp_path, True, progress=False)
    assert hit and again.directory == store.directory  # the cache: no feature computed
    fresh, hit = dataset_features(ds, 20, PixelFeatures(value=0.5), 8, "cpu", tmp_path, False, progress=False)
    assert not hit and (fresh.load() == 0.5).all()  # use_cache=False counts again
    other, hit = dataset_features(ds, 19, PixelFeatures(), 8, "cpu", tmp_path, True, progress=False)
    assert not hit and other.directory != store.directory  # keyed by the number of images, as FID statistics


def _generated_rows(G, folder, num, batch, extractor, chunk=DEFAULT_CHUNK):
    consumer = StoreConsumer(extractor, FeatureStore(folder, "generated", {}, num, extractor.dim, chunk), "cpu")
    run_pass(num, generated_loader(G, 3, "cpu"), [consumer], batch, chunk, progress=False)
    return consumer.finish().load()


def test_generated_rows_do_not_depend_on_the_batch_size(G, tmp_path):
    a = _generated_rows(G, tmp_path / "a", 13, 8, PixelFeatures())
    b = _generated_rows(G, tmp_path / "b", 13, 3, PixelFeatures(), chunk=5)  # 3 chunks, the last of 3
    direct = PixelFeatures()(generate_uint8(G, list(range(13)), 3, device="cpu")).numpy()
    # The generator itself may round a pixel differently in another batch (see the FID tests): one
    # uint8 level in a 2x2 average of 64 pixels is at most 1 / (255 * 64).
    assert a.shape == (13, 12) and np.abs(a - b).max() <= 1 / (255 * 64) + 1e-7
    assert np.abs(a - direct).max() <= 1 / (255 * 64) + 1e-7


def test_the_store_and_the_pass_must_agree(G, tmp_path):
    with pytest.raises(ValueError, match="holds 48-d rows, the extractor gives 12"):
        StoreConsumer(PixelFeatures(), FeatureStore(tmp_path, "generated", {}, 4, 48, DEFAULT_CHUNK), "cpu")
    consumer = StoreConsumer(PixelFeatures(), FeatureStore(tmp_path, "generated", {}, 4, 12, 2), "cpu")
    with pytest.raises(ValueError, match=r"expected rows \(2, 12\), got \(4, 12\)"):  # the pass's chunks are larger
        run_pass(4, generated_loader(G, 0, "cpu"), [consumer], 4, progress=False)


def test_non_finite_features_are_a_clear_error(G, tmp_path):
    with pytest.raises(NonFiniteError, match="test-pixels-2x2: the feature network produced NaN or Inf"):
        _generated_rows(G, tmp_path, 4, 2, PixelFeatures(value=float("nan")))


def test_a_scratch_folder_is_removed_however_the_run_ends(tmp_path):
    with scratch_folder(tmp_path) as scratch:
        generated_store(scratch, "kid", 4, PixelFeatures()).prepare()
        assert scratch.parent == tmp_path / "progress" and scratch.is_dir()
    assert not scratch.exists()
    with pytest.raises(KeyboardInterrupt), scratch_folder(tmp_path) as interrupted:
        interrupted.mkdir(parents=True)
        raise KeyboardInterrupt
    assert not interrupted.exists() and not list((tmp_path / "progress").iterdir())
    with scratch_folder(tmp_path) as other:
        assert other != scratch  # concurrent runs never share one
