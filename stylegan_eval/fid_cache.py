"""On-disk state for FID: cached dataset statistics and resumable progress of long runs.

Both are small dictionaries of tensors (float64 sums of features, their count) written with
`torch.save` to a temporary file and renamed into place, so a reader never sees a half-written
file, and read back with `torch.load(weights_only=True)` (`stylegan_eval.weights.read_data`), so
a planted file never runs code. The cache is optional: an entry that cannot be written (read-only
folder, full disk) is a warning, and the value computed is still returned. Each entry is named after the SHA-256 of its key (a JSON-able dict: dataset fingerprint,
number of images, feature extractor identity including its weights hash, ...) and stores the key
itself, which is compared on load: a changed dataset, count or network gives a different name,
and an entry whose stored key differs (or that cannot be read) is never used.

Like NVlabs/stylegan2-ada-pytorch's `metrics/metric_utils.py` (statistics cached under a hash of
their arguments, written atomically); the layout and format are this project's own.
"""

import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any

import torch

from stylegan_core.atomic import atomic_open
from stylegan_eval.weights import WeightsFileError, read_data

CACHE_VERSION = 1  # bump when the meaning of a stored entry changes


def default_cache_dir() -> Path:
    """$STYLEGAN_EVAL_CACHE, else $XDG_CACHE_HOME/stylegan-eval, else ~/.cache/stylegan-eval."""
    if os.environ.get("STYLEGAN_EVAL_CACHE"):
        return Path(os.environ["STYLEGAN_EVAL_CACHE"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "stylegan-eval"


def key_digest(key: dict[str, Any]) -> str:
    """SHA-256 of the key's canonical JSON (sorted keys), as hex."""
    text = json.dumps({"cache_version": CACHE_VERSION, **key}, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


def tensors_sha256(state: dict[str, torch.Tensor]) -> str:
    """SHA-256 over a state dict's names and tensor bytes: the identity of in-memory weights."""
    h = hashlib.sha256()
    for name in sorted(state):
        h.update(name.encode())
        h.update(state[name].detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def entry_path(directory: str | os.PathLike, kind: str, key: dict[str, Any]) -> Path:
    """Where the entry for `key` lives: <directory>/<kind>-<digest[:24]>.pt."""
    return Path(directory) / f"{kind}-{key_digest(key)[:24]}.pt"


def atomic_save(obj: Any, path: Path) -> None:
    """torch.save to a temporary file in the same folder, then rename over `path`."""
    with atomic_open(path) as f:
        torch.save(obj, f)


def save_entry(directory: str | os.PathLike, kind: str, key: dict[str, Any], payload: dict[str, Any]) -> Path | None:
    """Store `payload` for `key`; the path written, or None with a RuntimeWarning when the folder
    cannot be written (a cache is an optimisation: losing an entry must not lose the result)."""
    path = entry_path(directory, kind, key)
    try:
        atomic_save({"cache_version": CACHE_VERSION, "key": key, "payload": payload}, path)
    except OSError as e:
        warnings.warn(f"cache entry not saved: {path.parent} is not writable ({e.strerror or type(e).__name__}); "
                      f"the result is unaffected, the next run recomputes it", RuntimeWarning, stacklevel=2)
        return None
    return path


def load_entry(directory: str | os.PathLike, kind: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The payload stored for exactly `key`, or None (absent, unreadable, or stored for another key)."""
    path = entry_path(directory, kind, key)
    if not path.is_file():
        return None
    try:
        entry = read_data(path)  # tensors and plain containers only: loading never runs code
    except WeightsFileError as e:  # a truncated, foreign or planted file is a cache miss, not a failure
        warnings.warn(f"ignoring unreadable cache file {path} ({e})", RuntimeWarning, stacklevel=2)
        return None
    except OSError as e:
        warnings.warn(f"ignoring unreadable cache file {path} ({e.strerror or type(e).__name__})", RuntimeWarning, stacklevel=2)
        return None
    if not isinstance(entry, dict) or entry.get("cache_version") != CACHE_VERSION or entry.get("key") != key:
        return None
    return entry["payload"]


def remove_entry(directory: str | os.PathLike, kind: str, key: dict[str, Any]) -> None:
    try:
        entry_path(directory, kind, key).unlink()
    except (FileNotFoundError, NotADirectoryError):
        pass  # no such entry
    except OSError as e:  # a read-only cache keeps a stale progress entry: harmless, its key is exact
        warnings.warn(f"cache entry not removed: {e.filename} ({e.strerror or type(e).__name__})", RuntimeWarning, stacklevel=2)
