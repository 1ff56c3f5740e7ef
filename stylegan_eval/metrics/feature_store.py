"""Feature rows streamed to disk, for metrics that need the samples themselves (KID, precision and
recall), not only their mean and covariance (FID).

50,000 x 2048 float32 Inception features are 400 MB (x 4096 VGG16: 800 MB); a list of batches
concatenated at the end would hold them twice. Instead each chunk of samples (1,000 by default)
is written as its own `.npy` file the moment it is complete (atomically: a chunk file exists only
whole), and when all are there they are streamed into one `.npy` file that metrics read
memory-mapped.

Stores live in a folder named after the SHA-256 of their key, like the FID statistics of
stylegan_eval.fid_cache: a dataset's features are keyed exactly as its FID statistics (dataset
fingerprint, number of images, feature network and its weights hash) and kept as a cache; the
features of one run's generated images live under `progress/` and are removed once the metric is
computed.

Layers:
1. `FeatureStore`: the folder (no torch, no network).
2. `StoreConsumer`: a consumer of the shared image pass (stylegan_eval.metrics.image_pass) that
   writes each chunk of rows into a store; the pass makes it deterministic per sample index and
   independent of batch size and process count.
3. `dataset_features` (cached), `scratch_folder` and `generated_store` (one run's, temporary):
   which samples, which folder.
"""

import json
import math
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from stylegan_core import distributed
from stylegan_core.atomic import atomic_open
from stylegan_core.errors import ConfigError
from stylegan_eval.fid_cache import key_digest
from stylegan_eval.metrics.fid import DEFAULT_CHUNK, _extractor_key
from stylegan_eval.metrics.image_pass import Batch, dataset_loader, run_pass

STORE_VERSION = 1  # bump when the layout or meaning of a store changes
FEATURES_FILE = "features.npy"


# ---------------------------------------------------------------------------------------------
# 1. The folder
# ---------------------------------------------------------------------------------------------
class FeatureStore:
    """Rows [num, dim] float32 of features, written chunk by chunk into `root/<kind>-<digest>/`.

    Creating the object touches no file; `prepare()` creates the folder (one process only).
    """

    def __init__(self, root: str | Path, kind: str, key: dict[str, Any], num: int, dim: int, chunk_size: int):
        if num < 1 or dim < 1 or chunk_size < 1:
            raise ConfigError(f"a feature store needs num, dim and chunk_size >= 1, got {num}, {dim}, {chunk_size}")
        self.meta = {"version": STORE_VERSION, "key": key, "num": num, "dim": dim, "chunk_size": chunk_size}
        self.directory = Path(root) / f"{kind}-{key_digest(self.meta)[:24]}"
        self.num, self.dim, self.chunk_size = num, dim, chunk_size

    @property
    def num_chunks(self) -> int:
        return math.ceil(self.num / self.chunk_size)

    def chunk_rows(self, chunk: int) -> range:
        """Sample indices of chunk `chunk`."""
        return range(chunk * self.chunk_size, min((chunk + 1) * self.chunk_size, self.num))

    def _chunk_path(self, chunk: int) -> Path:
        return self.directory / f"chunk-{chunk:06d}.npy"

    @property
    def path(self) -> Path:
        """The complete features, once `finish()` has run."""
        return self.directory / FEATURES_FILE

    def prepare(self) -> None:
        """Create the folder; a folder holding another key's data (it cannot, unless damaged) is emptied."""
        meta_path = self.directory / "meta.json"
        if meta_path.is_file():
            try:
                same = json.loads(meta_path.read_text()) == json.loads(json.dumps(self.meta))
            except (OSError, ValueError):
                same = False
            if same:
                return
            shutil.rmtree(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        with atomic_open(meta_path) as f:
            f.write(json.dumps(self.meta, sort_keys=True, indent=1).encode())

    @property
    def complete(self) -> bool:
        return self.path.is_file()

    def write_chunk(self, chunk: int, rows: np.ndarray) -> None:
        """Store the features of chunk `chunk`: [len(chunk_rows(chunk)), dim]."""
        want = (len(self.chunk_rows(chunk)), self.dim)
        if rows.shape != want:
            raise ValueError(f"chunk {chunk} of {self.directory.name}: expected rows {want}, got {rows.shape}")
        with atomic_open(self._chunk_path(chunk)) as f:
            np.save(f, np.ascontiguousarray(rows, dtype=np.float32), allow_pickle=False)

    def finish(self) -> None:
        """Stream the chunk files into one `.npy` file (atomically), then delete them."""
        missing = [c for c in range(self.num_chunks) if not self._chunk_path(c).is_file()]
        if missing:
            raise RuntimeError(f"{self.directory}: chunks {missing[:5]} are missing")
        header = {"descr": np.lib.format.dtype_to_descr(np.dtype("<f4")), "fortran_order": False,
                  "shape": (self.num, self.dim)}
        with atomic_open(self.path) as f:
            np.lib.format.write_array_header_1_0(f, header)
            for c in range(self.num_chunks):
                f.write(np.load(self._chunk_path(c), allow_pickle=False).astype("<f4", copy=False).tobytes())
        for c in range(self.num_chunks):
            self._chunk_path(c).unlink()

    def load(self) -> np.ndarray:
        """The features [num, dim] float32, memory-mapped read-only."""
        rows = np.load(self.path, mmap_mode="r", allow_pickle=False)
        if rows.shape != (self.num, self.dim) or rows.dtype != np.float32:
            raise RuntimeError(f"{self.path}: holds {rows.dtype} {rows.shape}, expected float32 {(self.num, self.dim)}")
        return rows

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# 2. The image-pass consumer
# ---------------------------------------------------------------------------------------------
def broadcast_from_main(values: list[float], device) -> list[float]:
    """Rank 0's numbers on every rank (the others contribute zeros to a float64 sum: exact)."""
    t = torch.tensor([float(v) if distributed.is_main() else 0.0 for v in values], dtype=torch.float64, device=device)
    return distributed.all_reduce_sum(t).tolist()


class StoreConsumer:
    """KID, precision/recall: every sample's `extractor` row, float32, written chunk by chunk into
    `store` by rank 0 (the pass's chunks are the store's: `store.chunk_size` samples each). Every
    rank feeds it; after `finish()` rank 0's store is complete (the other ranks hold no rows)."""

    def __init__(self, extractor: torch.nn.Module, store: FeatureStore, device):
        if store.dim != extractor.dim:
            raise ValueError(f"{store.directory.name} holds {store.dim}-d rows, the extractor gives {extractor.dim}")
        self.extractor, self.store, self.num, self.device = extractor, store, store.num, torch.device(device)
        self._local: list[torch.Tensor] = []
        self._chunk = 0
        if distributed.is_main():
            store.prepare()

    def update(self, batch: Batch, rows: slice) -> None:
        self._local.append(batch.features(self.extractor)[rows].float())

    def end_chunk(self, chunk_size: int) -> None:
        # Gathered from `device`: NCCL moves CUDA tensors only (gloo takes CPU ones).
        local = torch.cat(self._local) if self._local else torch.empty((0, self.extractor.dim), device=self.device)
        rows = distributed.gather_by_index(local.to(self.device), chunk_size)  # [chunk_size, dim], index order
        if distributed.is_main():
            self.store.write_chunk(self._chunk, rows.numpy())
        self._chunk, self._local = self._chunk + 1, []

    def finish(self) -> FeatureStore:
        if distributed.is_main():
            self.store.finish()
        distributed.barrier()
        return self.store


# ---------------------------------------------------------------------------------------------
# 3. Which samples
# ---------------------------------------------------------------------------------------------
def dataset_features(ds, num: int, extractor, batch_size: int, device, cache_dir: Path, use_cache: bool,
                     desc: str = "real images", progress: bool = True) -> tuple[FeatureStore, bool]:
    """Features of the first `num` images of `ds`, cached under the key of its FID statistics
    (fingerprint, num, extractor). Returns (store, cache_hit); `use_cache=False` recounts and
    refreshes the entry. The rows are complete on rank 0."""
    key = {"dataset": ds.fingerprint(), "num_images": num, **_extractor_key(extractor)}
    store = FeatureStore(cache_dir, "features", key, num, extractor.dim, DEFAULT_CHUNK)
    # Rank 0 decides and broadcasts, so ranks never disagree about a hit.
    hit = broadcast_from_main([use_cache and store.complete], device)[0] > 0
    if hit:
        return store, True
    if distributed.is_main():
        store.remove()  # a partial or outdated entry is counted again
    consumer = StoreConsumer(extractor, store, device)
    run_pass(num, dataset_loader(ds, device), [consumer], batch_size, DEFAULT_CHUNK, desc, progress)
    return consumer.finish(), False


@contextmanager
def scratch_folder(cache_dir: Path) -> Iterator[Path]:
    """A fresh folder under `cache_dir/progress/` for one run's generated features, removed (by
    rank 0, the only writer) when the run ends, however it ends."""
    folder = Path(cache_dir) / "progress" / f"run-{uuid.uuid4().hex}"
    try:
        yield folder
    finally:
        if distributed.is_main():
            shutil.rmtree(folder, ignore_errors=True)


def generated_store(scratch: Path, metric: str, num: int, extractor) -> FeatureStore:
    """The store of `metric`'s rows (`extractor` of generated samples 0..num-1) in a run's scratch folder."""
    return FeatureStore(scratch, "generated", {"metric": metric, **_extractor_key(extractor)}, num, extractor.dim,
                        DEFAULT_CHUNK)
