"""Atomic file writes, the one way every checkpoint, cache entry, grid and array is saved.

The data goes to a temporary file in the destination folder, is flushed and fsynced, then
`os.replace`d onto the final name: a crash or an interrupt at any point leaves the old file or no
file under that name, never a truncated one.
"""

import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write; it appears under `path` only when the block exits normally."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise
