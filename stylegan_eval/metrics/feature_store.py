"""Feature rows streamed to disk, for metrics that need the samples themselves (KID, precision and
recall), not only their mean and covariance (FID).

50,000 x 2048 float32 Inception features are 400 MB (x 4096 VGG16: 800 MB); a list of batches
concatenated at the end would hold them twice. Instead each chunk of samples (1,000 by default)
is written as its own `.npy` file the moment it is complete (atomically: a chunk file exists only
whole), and when all are there they are streamed into one `.npy` file that metrics read
memory-mapped. A chunk file also marks progress, so an interrupted run resumes after the last
complete chunk.

Stores live in a folder named after the SHA-256 of their key, like the FID statistics of
stylegan_eval.fid_cache: a dataset's features are keyed by (dataset fingerprint, number of
images, feature network and its weights hash) and kept as a cache; a generator's by (its
weights hash, seed, number, truncation, noise mode, feature network) under `progress/`, removed
once the metric is computed.

Layers:
1. `FeatureStore`: the folder (no torch, no network).
2. `extract_features`: the streaming loop, deterministic per sample index, sharded over ranks.
3. `dataset_features`, `generator_features`, `features_for`: which samples, which cache entry.
"""

import json
import math
import shutil
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

from stylegan_core import distributed
from stylegan_core.atomic import atomic_open
from stylegan_core.errors import ConfigError, NonFiniteError
from stylegan_eval.metrics.fid import DEFAULT_CHUNK, _extractor_key, _open, generate_uint8, load_images, noise_mode_of
from stylegan_eval.fid_cache import key_digest, tensors_sha256

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

    def has_chunk(self, chunk: int) -> bool:
        return self.complete or self._chunk_path(chunk).is_file()

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

    def iter_chunks(self) -> Iterator[np.ndarray]:
        """The complete features in chunks of `chunk_size` rows (e.g. to accumulate FID statistics)."""
        rows = self.load()
        for c in range(self.num_chunks):
            yield np.asarray(rows[self.chunk_rows(c).start : self.chunk_rows(c).stop])

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


# ---------------------------------------------------------------------------------------------
# 2. The streaming loop
# ---------------------------------------------------------------------------------------------
def broadcast_from_main(values: list[float], device) -> list[float]:
    """Rank 0's numbers on every rank (the others contribute zeros to a float64 sum: exact)."""
    t = torch.tensor([float(v) if distributed.is_main() else 0.0 for v in values], dtype=torch.float64, device=device)
    return distributed.all_reduce_sum(t).tolist()


def _broadcast_flags(flags: list[bool], device) -> list[bool]:
    return [v > 0 for v in broadcast_from_main([float(f) for f in flags], device)]


@torch.no_grad()
def extract_features(
    store: FeatureStore,
    load: Callable[[list[int]], torch.Tensor],  # sample indices -> uint8 images [n, 3, H, W]
    extractor: torch.nn.Module,  # uint8 [n, 3, H, W] -> [n, dim]
    batch_size: int,  # per rank; does not change the features of a sample
    device: torch.device,
    desc: str,
) -> int:
    """Fill `store` with the features of samples 0..num-1 and return how many were already there.

    Each chunk is sharded over ranks and gathered in index order; rank 0 writes it. Every rank
    must call this; afterwards rank 0's `store` is complete.
    """
    if batch_size < 1:
        raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
    if distributed.is_main():
        store.prepare()
    done = _broadcast_flags([distributed.is_main() and store.has_chunk(c) for c in range(store.num_chunks)], device)
    resumed = sum(len(store.chunk_rows(c)) for c in range(store.num_chunks) if done[c])
    quiet = not distributed.is_main()
    with tqdm(total=store.num, initial=resumed, desc=desc, unit="img", disable=quiet, leave=False) as bar:
        for c in range(store.num_chunks):
            if done[c]:
                continue
            chunk = store.chunk_rows(c)
            mine = distributed.shard(chunk)
            parts = [torch.empty((0, store.dim), dtype=torch.float32)]
            for b in range(0, len(mine), batch_size):
                features = extractor(load(list(mine[b : b + batch_size])).to(device))  # [n, dim]
                if not torch.isfinite(features).all():
                    raise NonFiniteError(f"{desc}: the feature network produced NaN or Inf")
                parts.append(features.float().cpu())
            rows = distributed.gather_by_index(torch.cat(parts), len(chunk))  # [len(chunk), dim], index order
            if distributed.is_main():
                store.write_chunk(c, rows.numpy())
            bar.update(len(chunk))
    if distributed.is_main() and not store.complete:
        store.finish()
    distributed.barrier()
    return resumed


# ---------------------------------------------------------------------------------------------
# 3. Which samples
# ---------------------------------------------------------------------------------------------
def dataset_features(ds, fingerprint: str, num: int, extractor, batch_size: int, device, cache_dir: Path,
                     use_cache: bool, desc: str) -> tuple[FeatureStore, bool]:
    """Features of the first `num` images of `ds`, cached under (fingerprint, num, extractor).
    Returns (store, cache_hit); `use_cache=False` recounts and refreshes the entry."""
    key = {"dataset": fingerprint, "num_images": num, **_extractor_key(extractor)}
    store = FeatureStore(cache_dir, "features", key, num, extractor.dim, DEFAULT_CHUNK)
    (hit,) = _broadcast_flags([use_cache and store.complete], device)
    if not hit:
        if not use_cache and distributed.is_main():
            store.remove()  # count again; otherwise chunks of an interrupted run are reused
        extract_features(store, lambda idx: load_images(ds, idx), extractor, batch_size, device, desc)
    return store, hit


def generator_features(G, num: int, seed: int, truncation_psi: float, truncation_cutoff, extractor, batch_size: int,
                       chunk_size: int, device, cache_dir: Path, resume: bool, desc: str) -> tuple[FeatureStore, int]:
    """Features of generated samples 0..num-1 (sample i from (seed, i) only), under `progress/`
    so an interrupted run resumes. Returns (store, samples found from an earlier run)."""
    key = {"what": "generator", "generator_sha256": tensors_sha256(G.state_dict()), "seed": seed, "num": num,
           "truncation_psi": truncation_psi, "truncation_cutoff": truncation_cutoff, "noise_mode": noise_mode_of(G),
           **_extractor_key(extractor)}
    store = FeatureStore(cache_dir / "progress", "features", key, num, extractor.dim, chunk_size)
    if not resume and distributed.is_main():
        store.remove()
    load = lambda idx: generate_uint8(G, idx, seed, truncation_psi, truncation_cutoff, device)  # noqa: E731
    return store, extract_features(store, load, extractor, batch_size, device, desc)


@dataclass(frozen=True)
class FeaturePair:
    """Real and generated features of one evaluation (complete on rank 0)."""

    real: FeatureStore
    fake: FeatureStore
    fake_is_temporary: bool  # generated: remove `fake` once the metric is computed
    real_cache_hit: bool
    fake_cache_hit: bool  # a folder source found in the cache
    resumed_from: int  # generated samples an earlier, interrupted run had already extracted
    time_real_s: float
    time_fake_s: float


def features_for(
    source,  # a Generator (stylegan_core interface), or a folder / zip / dataset of images
    data,  # the reference dataset: a folder / zip path, or an object from open_dataset
    extractor: torch.nn.Module,  # uint8 [n, 3, H, W] -> [n, dim], with .dim, .identity, .digest
    num_gen: int,  # generated images; a folder source uses its first min(num_gen, len) images
    num_real: int,  # dataset images: the first min(num_real, len(data))
    batch_size: int,
    seed: int,  # sample i's latent and noise depend only on (seed, i)
    device: torch.device,
    cache_dir: Path,
    use_cache: bool = True,
    resume: bool = True,
    chunk_size: int = DEFAULT_CHUNK,
    truncation_psi: float = 1.0,
    truncation_cutoff: int | None = None,
    fit: str = "error",
) -> FeaturePair:
    """Stream both sides' features to disk (the dataset's cached) with the FID machinery's
    sample definitions: the same images FID measures, so KID and FID see the same samples."""
    if num_gen < 2 or num_real < 2 or chunk_size < 1:
        raise ConfigError(f"need num_gen, num_real >= 2 and chunk_size >= 1, got {num_gen}, {num_real}, {chunk_size}")
    is_generator = isinstance(source, torch.nn.Module)
    t0 = time.perf_counter()
    ds_real = _open(data, source.img_resolution if is_generator else None, fit)
    n_real = min(num_real, len(ds_real))
    real, real_hit = dataset_features(ds_real, ds_real.fingerprint(), n_real, extractor, batch_size, device, cache_dir,
                                      use_cache, "real images")
    t1 = time.perf_counter()
    if is_generator:
        fake, resumed = generator_features(source.to(device), num_gen, seed, truncation_psi, truncation_cutoff,
                                           extractor, batch_size, chunk_size, device, cache_dir, resume,
                                           "generated images")
        fake_hit, temporary = False, True
    else:
        ds_fake = _open(source, None, fit)
        fake, fake_hit = dataset_features(ds_fake, ds_fake.fingerprint(), min(num_gen, len(ds_fake)), extractor,
                                          batch_size, device, cache_dir, use_cache, "source images")
        resumed, temporary = 0, False
    return FeaturePair(real, fake, temporary, real_hit, fake_hit, resumed, t1 - t0, time.perf_counter() - t1)
