"""stylegan_eval.metrics.feature_store: the chunked on-disk store, the streaming loop (determinism
per sample index, resumption, the dataset cache) and the generator/folder pairing."""

import json
import os
import socket

import numpy as np
import pytest
import torch

from stylegan_core import distributed
from stylegan_core.data import open_dataset
from stylegan_core.errors import ConfigError, NonFiniteError
from stylegan_core.generator import Generator
from stylegan_core.presets import get_preset
from stylegan_core.synthetic import synthesize_dataset
from stylegan_eval.metrics.fid import generate_uint8, load_images
from stylegan_eval.metrics.feature_store import (
    FeatureStore,
    dataset_features,
    features_for,
    generator_features,
)
from stylegan_eval.metrics.kid import compute_kid
from stylegan_eval.metrics.precision_recall import compute_pr
from stylegan_eval.records import FeatureNetwork


class ColourFeatures(torch.nn.Module):
    """A cheap stand-in for a feature network (same interface): 2x2 average colours in [0, 1]
    (12-d), computed per image so a sample's features never depend on its batch."""

    dim = 12
    identity = FeatureNetwork("test-colours-2x2", "none", False)
    digest = "test-colours-2x2"

    def __init__(self, fail_after: int | None = None, value: float | None = None):
        super().__init__()
        self.calls, self.fail_after, self.value = 0, fail_after, value

    def forward(self, images):
        assert images.dtype == torch.uint8 and images.shape[1] == 3
        self.calls += 1
        if self.fail_after is not None and self.calls > self.fail_after:
            raise KeyboardInterrupt("simulated interruption")
        out = torch.stack([torch.nn.functional.adaptive_avg_pool2d(x.float() / 255, 2).flatten() for x in images])
        return out if self.value is None else torch.full_like(out, self.value)


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return synthesize_dataset(tmp_path_factory.mktemp("store") / "data", 24, 16, seed=0)


@pytest.fixture(scope="module")
def G():
    return Generator(get_preset("F-test16").generator).eval()


# ----------------------------------------------------------------------------------------------
# The folder
# ----------------------------------------------------------------------------------------------
def test_chunks_stream_into_one_memory_mapped_file(tmp_path):
    rows = np.random.default_rng(0).standard_normal((10, 3)).astype(np.float32)
    store = FeatureStore(tmp_path, "features", {"what": "test"}, num=10, dim=3, chunk_size=4)
    assert store.num_chunks == 3 and list(store.chunk_rows(2)) == [8, 9] and not store.directory.exists()
    store.prepare()
    for c in (2, 0):
        store.write_chunk(c, rows[store.chunk_rows(c).start : store.chunk_rows(c).stop])
    assert [store.has_chunk(c) for c in range(3)] == [True, False, True] and not store.complete
    with pytest.raises(RuntimeError, match=r"chunks \[1\] are missing"):
        store.finish()
    store.write_chunk(1, rows[4:8])
    store.finish()
    loaded = store.load()
    assert isinstance(loaded, np.memmap) and loaded.dtype == np.float32 and np.array_equal(loaded, rows)
    assert sorted(p.name for p in store.directory.iterdir()) == ["features.npy", "meta.json"]
    assert np.array_equal(np.concatenate(list(store.iter_chunks())), rows)
    assert store.complete and all(store.has_chunk(c) for c in range(3))


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
    assert not store.has_chunk(0)


# ----------------------------------------------------------------------------------------------
# The streaming loop
# ----------------------------------------------------------------------------------------------
def test_features_are_those_of_each_sample_in_index_order(data_dir, tmp_path):
    ds = open_dataset(data_dir)
    store, hit = dataset_features(ds, ds.fingerprint(), 20, ColourFeatures(), 8, torch.device("cpu"), tmp_path, True, "t")
    want = ColourFeatures()(load_images(ds, range(20))).numpy()
    assert not hit and np.array_equal(store.load(), want)
    again, hit = dataset_features(ds, ds.fingerprint(), 20, ColourFeatures(fail_after=0), 8, "cpu", tmp_path, True, "t")
    assert hit and again.directory == store.directory  # the cache: no feature computed
    fresh, hit = dataset_features(ds, ds.fingerprint(), 20, ColourFeatures(value=0.5), 8, "cpu", tmp_path, False, "t")
    assert not hit and (fresh.load() == 0.5).all()  # use_cache=False counts again


def test_generated_features_do_not_depend_on_batch_or_chunk_size(G, tmp_path):
    a, _ = generator_features(G, 13, 3, 1.0, None, ColourFeatures(), 8, 1000, "cpu", tmp_path / "a", True, "t")
    b, _ = generator_features(G, 13, 3, 1.0, None, ColourFeatures(), 3, 5, "cpu", tmp_path / "b", True, "t")
    direct = ColourFeatures()(generate_uint8(G, list(range(13)), 3, 1.0, None, "cpu")).numpy()
    # The generator itself may round a pixel differently in another batch (see test_fid): one
    # uint8 level in a 2x2 average of 64 pixels is at most 1 / (255 * 64).
    assert np.abs(a.load() - b.load()).max() <= 1 / (255 * 64) + 1e-7
    assert np.abs(a.load() - direct).max() <= 1 / (255 * 64) + 1e-7


def test_an_interrupted_run_resumes_after_its_last_complete_chunk(G, tmp_path):
    full, _ = generator_features(G, 10, 0, 1.0, None, ColourFeatures(), 2, 4, "cpu", tmp_path / "a", True, "t")
    with pytest.raises(KeyboardInterrupt):  # batches of 2, chunks of 4: the 5th batch is in chunk 2
        generator_features(G, 10, 0, 1.0, None, ColourFeatures(fail_after=4), 2, 4, "cpu", tmp_path / "b", True, "t")
    counting = ColourFeatures()
    resumed, found = generator_features(G, 10, 0, 1.0, None, counting, 2, 4, "cpu", tmp_path / "b", True, "t")
    assert found == 8 and counting.calls == 1 and np.array_equal(resumed.load(), full.load())
    restart = ColourFeatures()
    _, found = generator_features(G, 10, 0, 1.0, None, restart, 2, 4, "cpu", tmp_path / "b", False, "t")
    assert found == 0 and restart.calls == 5


def test_non_finite_features_are_a_clear_error(G, tmp_path):
    with pytest.raises(NonFiniteError, match="generated images: the feature network produced NaN or Inf"):
        generator_features(G, 4, 0, 1.0, None, ColourFeatures(value=float("nan")), 2, 4, "cpu", tmp_path, True,
                           "generated images")


def test_pairs_of_a_generator_and_of_two_folders(G, data_dir, tmp_path):
    pair = features_for(G, data_dir, ColourFeatures(), 6, 30, 4, 0, torch.device("cpu"), tmp_path)
    assert pair.real.num == 24 and pair.fake.num == 6 and pair.fake_is_temporary and not pair.real_cache_hit
    assert pair.fake.directory.parent == tmp_path / "progress"
    folders = features_for(data_dir, data_dir, ColourFeatures(), 5, 30, 4, 0, torch.device("cpu"), tmp_path)
    assert folders.real_cache_hit and not folders.fake_is_temporary and folders.fake.num == 5
    assert np.array_equal(folders.fake.load(), folders.real.load()[:5])
    with pytest.raises(ConfigError, match="need num_gen, num_real >= 2"):
        features_for(G, data_dir, ColourFeatures(), 1, 30, 4, 0, torch.device("cpu"), tmp_path)


# ----------------------------------------------------------------------------------------------
# One process or two
# ----------------------------------------------------------------------------------------------
def _two_process_worker(rank, world, port, data, cache, out):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world), RANK=str(rank),
                      LOCAL_RANK=str(rank))
    torch.set_num_threads(1)
    distributed.init("cpu")
    try:
        G = Generator(get_preset("F-test16").generator).eval()
        values = _metrics(G, data, cache)
        if rank == 0:
            (out / "two.json").write_text(json.dumps(values))
    finally:
        torch.distributed.destroy_process_group()


def _metrics(G, data, cache):
    args = dict(num_gen=11, num_real=24, batch_size=2, chunk_size=4, seed=0, cache_dir=cache, extractor=ColourFeatures())
    kid = compute_kid(G, data, num_subsets=6, subset_size=8, **args)
    pr = compute_pr(G, data, distance_batch=5, **args)
    return [kid.kid.mean, kid.kid.std, pr.pr.precision, pr.pr.recall]


@pytest.mark.slow
def test_values_do_not_depend_on_the_number_of_processes(G, data_dir, tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    torch.multiprocessing.spawn(_two_process_worker, args=(2, port, data_dir, tmp_path / "two", tmp_path), nprocs=2)
    two = json.loads((tmp_path / "two.json").read_text())
    one = _metrics(G, data_dir, tmp_path / "one")
    # The generator may round a pixel differently in other batches (see test_fid); nothing else differs.
    assert two[:2] == pytest.approx(one[:2], rel=1e-4) and two[2:] == one[2:]
