"""Image datasets for training and the metrics: a folder of PNG/JPEG images (searched
recursively) or a .zip of them, with optional binary attribute labels.

`open_dataset` scans every image once: it reads and hashes the bytes, decodes the image (so a
corrupt file is found now, not an hour into training), checks or fits its size, and converts it
to RGB. Grayscale and palette images are expanded to RGB; the alpha channel of RGBA/LA images is
dropped (the colour under it is kept); 16-bit images are reduced to 8 bits. `ds.conversions`
counts what was converted. Decoded images are kept in memory when they fit `cache_bytes`
(the CPU-sized datasets always do), so `ds[i]` and `load_all()` are then free.

Resolution: with fit="error" every image must be square with the same power-of-two side
(the official dataset tool's rule). fit="resize" scales every image to resolution x resolution
(ignoring aspect ratio); fit="center-crop" takes the central square, then scales. Both need an
explicit resolution. Mirror augmentation is the trainer's job, not the dataset's.

Hidden files and folders (names starting with '.') and macOS '__MACOSX' archive folders are
ignored. File order is the sorted relative path, so index i means the same file everywhere.
"""

import hashlib
import io
import json
import os
import zipfile
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path, PurePosixPath
from typing import Literal, TypeVar

import numpy as np
import torch
from PIL import Image

from stylegan_core.attributes import AttributeTable, read_attributes
from stylegan_core.errors import ConfigError, DatasetError

Fit = Literal["error", "resize", "center-crop"]
OnBadImage = Literal["error", "skip"]
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")
_FINGERPRINT_VERSION = 1
# What a failing read or decode raises: Pillow (truncated, not an image, decompression bomb, bad
# header) and zipfile/zlib (bad CRC or deflate stream inside an archive).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError, zipfile.BadZipFile, zlib.error)


def _is_power_of_two(n: int) -> bool:
    return n >= 1 and n & (n - 1) == 0


def _wanted(rel: str) -> bool:
    parts = PurePosixPath(rel).parts
    if any(p.startswith(".") or p == "__MACOSX" for p in parts):
        return False
    return rel.lower().endswith(IMAGE_SUFFIXES)


class _Source:
    """Where image bytes come from: a folder or a zip (reopened per process, for DataLoader workers)."""

    def __init__(self, path: Path):
        self.path = path
        self.is_zip = path.is_file()
        self._zip: zipfile.ZipFile | None = None
        self._zip_pid = -1
        if not path.exists():
            raise DatasetError(f"dataset {path} does not exist")
        if self.is_zip and not zipfile.is_zipfile(path):
            raise DatasetError(f"dataset {path} is a file but not a zip archive; give a folder of images or a .zip")

    def list(self) -> list[str]:
        if self.is_zip:
            names = [i.filename for i in self._archive().infolist() if not i.is_dir()]
        else:
            names = []
            for dirpath, dirnames, filenames in os.walk(self.path):
                dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                rel = Path(dirpath).relative_to(self.path)
                names += [(rel / f).as_posix() for f in filenames]
        return sorted(n for n in names if _wanted(n))

    def _archive(self) -> zipfile.ZipFile:
        if self._zip is None or self._zip_pid != os.getpid():
            try:
                self._zip = zipfile.ZipFile(self.path)
            except (OSError, zipfile.BadZipFile) as e:
                raise DatasetError(f"cannot open zip archive {self.path}: {e}") from None
            self._zip_pid = os.getpid()
        return self._zip

    def read(self, name: str) -> bytes:
        if self.is_zip:
            return self._archive().read(name)
        return (self.path / name).read_bytes()

    def display(self, name: str) -> str:
        return f"{self.path}:{name}" if self.is_zip else str(self.path / name)

    def __getstate__(self):
        return {**self.__dict__, "_zip": None, "_zip_pid": -1}


def _decode(data: bytes) -> tuple[Image.Image, str]:
    """Fully decode image bytes (raises on corrupt data); returns the RGB image and the original mode."""
    img = Image.open(io.BytesIO(data))
    img.load()
    mode = img.mode
    if mode.startswith("I;16") or mode == "I":
        img = Image.fromarray((np.asarray(img, dtype=np.int64) >> (16 if mode == "I" else 8)).clip(0, 255).astype(np.uint8))
    if img.mode != "RGB":
        img = img.convert("RGB")
    return img, mode


def _fit(img: Image.Image, resolution: int, fit: Fit) -> Image.Image:
    w, h = img.size
    if fit == "center-crop" and w != h:
        s = min(w, h)
        left, top = (w - s) // 2, (h - s) // 2
        img = img.crop((left, top, left + s, top + s))
    if img.size != (resolution, resolution):
        img = img.resize((resolution, resolution), Image.LANCZOS)
    return img


K = TypeVar("K")
R = TypeVar("R")
# Batches a dataset pass loads ahead of the network. Threads suffice: Pillow's decoders, numpy
# copies and torch.stack release the GIL, and the network's own thread pool keeps running.
PREFETCH_WORKERS = 2


def prefetch(load: Callable[[K], R], keys: Iterable[K], workers: int = PREFETCH_WORKERS) -> Iterator[R]:
    """load(k) for each k of `keys`, in order, with up to `workers` threads loading the next
    keys while the caller works on the current result (workers=0: plain, in the caller's thread).

    The results are the very objects `load` returns, in the order of `keys`, so a pass gives the
    same values with any number of workers. An exception raised by `load` is raised here, in the
    caller's thread, when its key's turn comes (the keys before it are yielded first), as it would
    be without workers. Closing the iterator early cancels what was not started and waits for the
    rest, so no thread outlives the pass.
    """
    if workers <= 0:
        for k in keys:
            yield load(k)
        return
    it = iter(keys)
    pending: deque[Future] = deque()
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prefetch")
    try:
        for k in it:  # fill the pipeline: one result ready per worker, plus the one being loaded
            pending.append(pool.submit(load, k))
            if len(pending) > workers:
                break
        while pending:
            result = pending.popleft().result()
            for k in it:  # keep the pipeline full while the caller uses `result`
                pending.append(pool.submit(load, k))
                break
            yield result
    finally:
        for f in pending:
            f.cancel()
        pool.shutdown(wait=True)


class ImageProblemError(DatasetError):
    """An image that cannot be used as it is. `detail` says what is wrong; `remedy` names the fix
    by this module's parameters ("skip": on_bad_image='skip', "fit": fit= with a resolution), so a
    command line can name its own options instead."""

    HINTS = {
        "skip": "fix or remove it, or skip unreadable images (on_bad_image='skip')",
        "fit": "resize or crop them (fit='resize' or fit='center-crop' with a resolution)",
    }

    def __init__(self, detail: str, remedy: Literal["skip", "fit"]):
        self.detail, self.remedy = detail, remedy
        super().__init__(f"{detail}; {self.HINTS[remedy]}")


def _size_problem(name: str, size: tuple[int, int], resolution: int | None) -> ImageProblemError | None:
    w, h = size
    if w != h or not _is_power_of_two(w):
        return ImageProblemError(f"{name} is {w}x{h}; images must be square with a power-of-two side (e.g. 256x256)", "fit")
    if resolution is not None and w != resolution:
        return ImageProblemError(f"{name} is {w}x{h} but the dataset resolution is {resolution}x{resolution}", "fit")
    return None


class ImageDataset(torch.utils.data.Dataset):
    """An opened dataset; build it with `open_dataset`. `ds[i]` -> torch.uint8 [C, R, R]."""

    def __init__(
        self,
        source: _Source,
        names: list[str],
        digests: list[bytes],
        resolution: int,
        fit: Fit,
        cache: np.ndarray | None,
        skipped_names: list[str],
        conversions: dict[str, int],
        attribute_names: list[str],
        attributes: torch.Tensor | None,
    ):
        self._source = source
        self.path = source.path
        self.names = tuple(names)  # relative paths (folder) or member names (zip), index order
        self._digests = digests
        self.resolution = resolution
        self.num_channels = 3
        self.fit = fit
        self._cache = cache  # uint8 [N, C, R, R] or None
        self.skipped_names = tuple(skipped_names)
        self.skipped = len(skipped_names)
        self.conversions = dict(conversions)  # original mode -> number of images converted to RGB
        self.attribute_names = list(attribute_names)
        self.attributes = attributes  # int8 [N, A] of 1/-1/0, or None

    def __len__(self) -> int:
        return len(self.names)

    def __getitem__(self, i: int) -> torch.Tensor:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a dataset of {len(self)} images")
        if self._cache is not None:
            return torch.from_numpy(self._cache[i].copy())
        name = self.names[i]
        try:
            img, _ = _decode(self._source.read(name))
        except _DECODE_ERRORS as e:
            raise DatasetError(f"cannot read image {self._source.display(name)}: {e}") from None
        return torch.from_numpy(np.asarray(_fit(img, self.resolution, self.fit)).transpose(2, 0, 1).copy())

    def load_all(self) -> torch.Tensor:
        """Every image in index order: torch.uint8 [N, C, R, R]."""
        if self._cache is not None:
            return torch.from_numpy(self._cache.copy())
        return torch.stack([self[i] for i in range(len(self))])

    def fingerprint(self) -> str:
        """sha256 hex of the file names, their bytes and how they are sized (not the folder's location)."""
        h = hashlib.sha256(json.dumps({"v": _FINGERPRINT_VERSION, "resolution": self.resolution, "fit": self.fit}).encode())
        for name, digest in zip(self.names, self._digests):
            h.update(name.encode() + b"\0" + digest)
        return h.hexdigest()

    def describe(self) -> str:
        """One line for logs: count, size, source, skipped, conversions, labels."""
        parts = [f"{len(self)} images {self.resolution}x{self.resolution} RGB from {self.path}"]
        if self.skipped:
            parts.append(f"{self.skipped} unreadable skipped")
        if self.conversions:
            conv = ", ".join(f"{n} {m}" for m, n in sorted(self.conversions.items()))
            parts.append(f"converted to RGB: {conv} (alpha dropped)" if any("A" in m for m in self.conversions) else f"converted to RGB: {conv}")
        if self.attributes is not None:
            parts.append(f"{len(self.attribute_names)} attributes")
        return "; ".join(parts)


def open_dataset(
    path: str | os.PathLike,  # folder of PNG/JPEG (searched recursively) or a .zip of them
    resolution: int | None = None,  # side in pixels; None: the images' own (fit="error" only)
    fit: Fit = "error",  # "error" | "resize" | "center-crop": what to do with other sizes
    attributes: str | os.PathLike | None = None,  # CelebA list_attr-style file or CSV; None: no labels
    on_bad_image: OnBadImage = "error",  # "error" | "skip" (skipped files are counted in ds.skipped)
    *,
    attribute_names: list[str] | None = None,  # keep only these attributes; None: all in the file
    cache_bytes: int = 4 << 30,  # keep decoded images in memory up to this many bytes
    progress: bool = False,  # show a tqdm bar while scanning
) -> ImageDataset:
    """Scan, verify and (if small enough) decode a dataset; see the module docstring."""
    if fit not in ("error", "resize", "center-crop"):
        raise ConfigError(f"fit must be 'error', 'resize' or 'center-crop', got {fit!r}")
    if on_bad_image not in ("error", "skip"):
        raise ConfigError(f"on_bad_image must be 'error' or 'skip', got {on_bad_image!r}")
    if resolution is not None and (not _is_power_of_two(resolution) or resolution < 4):
        raise ConfigError(f"resolution must be a power of two of at least 4, got {resolution}")
    if fit != "error" and resolution is None:
        raise ConfigError(f"fit={fit!r} needs an explicit resolution")
    source = _Source(Path(path))
    all_names = source.list()
    if not all_names:
        raise DatasetError(f"no PNG/JPEG images found in {source.path} (searched recursively; hidden files ignored)")
    table = read_attributes(attributes, attribute_names) if attributes is not None else None

    from tqdm import tqdm

    names, digests, arrays, skipped = [], [], [], []
    conversions: dict[str, int] = {}
    cache_ok = True
    for name in tqdm(all_names, desc="scanning images", unit="img", disable=not progress):
        try:
            data = source.read(name)
            img, mode = _decode(data)
        except (*_DECODE_ERRORS, KeyError) as e:
            if on_bad_image == "skip":
                skipped.append(name)
                continue
            raise ImageProblemError(f"cannot read image {source.display(name)}: {e}", "skip") from None
        if fit == "error":
            problem = _size_problem(source.display(name), img.size, resolution)
            if problem:
                raise problem
            resolution = img.size[0]  # the first image fixes the resolution for the rest
        if mode != "RGB":
            conversions[mode] = conversions.get(mode, 0) + 1
        names.append(name)
        digests.append(hashlib.sha256(data).digest())
        cache_ok = cache_ok and len(all_names) * 3 * resolution * resolution <= cache_bytes
        if cache_ok:
            arrays.append(np.asarray(_fit(img, resolution, fit)))
    if not names:
        raise DatasetError(f"none of the {len(all_names)} images in {source.path} could be read (all skipped)")
    # [N, R, R, C] -> [N, C, R, R]
    cache = np.ascontiguousarray(np.stack(arrays).transpose(0, 3, 1, 2)) if cache_ok else None
    attr_values = None
    if table is not None:
        attr_values = torch.from_numpy(_match_rows(table, source, names, set(skipped)))
    return ImageDataset(
        source, names, digests, resolution, fit, cache, skipped, conversions,
        list(table.names) if table is not None else [], attr_values,
    )


def _match_rows(table: AttributeTable, source: _Source, names: list[str], skipped: set[str]) -> np.ndarray:
    """Rows of `table` in dataset order: int8 [N, A]. A row is matched by the image's relative path
    or, where unambiguous, by its file name alone (CelebA files list bare names)."""
    by_name = {f: k for k, f in enumerate(table.filenames)}
    base_count: dict[str, int] = {}
    for n in (*names, *skipped):
        b = PurePosixPath(n).name
        base_count[b] = base_count.get(b, 0) + 1
    used: set[int] = set()

    def row_of(n: str) -> int | None:
        if n in by_name:
            return by_name[n]
        b = PurePosixPath(n).name
        return by_name.get(b) if base_count[b] == 1 else None

    rows, missing = [], []
    for n in names:
        k = row_of(n)
        if k is None:
            missing.append(n)
        else:
            rows.append(k)
            used.add(k)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise DatasetError(f"{table.path}: no row for image {source.display(missing[0])}{more}; every image needs a row")
    used |= {k for n in skipped if (k := row_of(n)) is not None}
    extra = [k for k in range(len(table.filenames)) if k not in used]
    if extra:
        k = extra[0]
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise DatasetError(
            f"{table.path}:{table.lines[k]}: row for {table.filenames[k]!r} but no such image in {source.path}{more}"
        )
    return table.values[rows]
