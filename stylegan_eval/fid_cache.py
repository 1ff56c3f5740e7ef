"""On-disk state for FID: cached dataset statistics and resumable progress of long runs.

Both are small dictionaries of tensors (float64 sums of features, their count) written with
`torch.save` to a temporary file and renamed into place, so a reader never sees a half-written
file. Each entry is named after the SHA-256 of its key (a JSON-able dict: dataset fingerprint,
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


def save_entry(directory: str | os.PathLike, kind: str, key: dict[str, Any], payload: dict[str, Any]) -> Path:
    path = entry_path(directory, kind, key)
    atomic_save({"cache_version": CACHE_VERSION, "key": key, "payload": payload}, path)
    return path


def load_entry(directory: str | os.PathLike, kind: str, key: dict[str, Any]) -> dict[str, Any] | None:
    """The payload stored for exactly `key`, or None (absent, unreadable, or stored for another key)."""
    path = entry_path(directory, kind, key)
    if not path.is_file():
        return None
    try:
        # Tensors and plain containers only: loading never runs code.
        entry = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # a truncated or foreign file is a cache miss, not a failure
        warnings.warn(f"ignoring unreadable cache file {path} ({type(e).__name__})", RuntimeWarning, stacklevel=2)
        return None
    if not isinstance(entry, dict) or entry.get("cache_version") != CACHE_VERSION or entry.get("key") != key:
        return None
    return entry["payload"]


def remove_entry(directory: str | os.PathLike, kind: str, key: dict[str, Any]) -> None:
    entry_path(directory, kind, key).unlink(missing_ok=True)
