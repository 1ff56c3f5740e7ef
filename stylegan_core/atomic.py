"""Atomic file writes, the one way every checkpoint, cache entry, grid and array is saved.

The data goes to a temporary file in the destination folder, is flushed and fsynced, then
`os.replace`d onto the final name: a crash or an interrupt at any point leaves the old file or no
file under that name, never a truncated one.

Permissions: a new file gets the mode `open()` would give it (0o666 minus the umask), not
mkstemp's private 0o600, so a shared cache or run folder stays readable to whoever the umask
allows; a file that is replaced keeps its own mode.

Temporary files are named `.<name>.pid<PID>.<random>.tmp`. A SIGKILL mid-write cannot remove its
own; the next write to the same target removes those whose process is gone and that have not
been modified for STALE_AFTER_S seconds (both, so a writer on another machine sharing the
folder, whose pid means nothing here, is left alone while it is still writing).
"""

import os
import re
import stat
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

STALE_AFTER_S = 600.0  # a temporary file untouched this long, whose writer is gone, is debris


def current_umask() -> int:
    """The process umask, read without changing it where /proc allows (threads may be writing)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    mask = os.umask(0o022)  # elsewhere the only portable read is set-and-restore
    os.umask(mask)
    return mask


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # PermissionError: it exists, under another user
        return True
    return True


def _temp_prefix(path: Path) -> str:
    return f".{path.name}.pid"


def remove_stale_temps(path: str | os.PathLike, older_than_s: float = STALE_AFTER_S) -> list[Path]:
    """Remove temporary files left next to `path` by writers that died (see the module
    docstring); returns what was removed."""
    path = Path(path)
    pattern = re.compile(re.escape(_temp_prefix(path)) + r"(\d+)\.[a-z0-9_]+\.tmp")
    removed = []
    try:
        candidates = list(path.parent.iterdir())
    except OSError:
        return removed
    now = time.time()
    for tmp in candidates:
        m = pattern.fullmatch(tmp.name)
        if not m or _pid_alive(int(m.group(1))):
            continue
        try:
            if now - tmp.stat().st_mtime >= older_than_s:
                tmp.unlink()
                removed.append(tmp)
        except OSError:  # gone already, or not ours to remove: leave it
            continue
    return removed


@contextmanager
def atomic_open(path: str | os.PathLike) -> Iterator[BinaryIO]:
    """A binary file to write; it appears under `path` only when the block exits normally."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temps(path)
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        mode = 0o666 & ~current_umask()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f"{_temp_prefix(path)}{os.getpid()}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), mode)
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:  # KeyboardInterrupt too: never leave the temporary file behind
        Path(tmp).unlink(missing_ok=True)
        raise
