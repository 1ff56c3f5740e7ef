"""Output locations checked before any work starts, so a finished hour of sampling is never lost
to a read-only folder, a typo'd path or an existing file.

Every command that writes (result files, saved distances, images, classifiers, report and run
folders) calls one of the checks below on each output before it loads a model or draws a sample:

- `check_output_file`: the file's folder exists or can be created, is writable (probed by creating
  and removing a hidden empty file, which also catches read-only mounts, where root's permission
  bits say nothing), the path is not a folder, and an existing file is refused unless the user
  passed --overwrite (or the file is appended to, like a results file);
- `check_output_dir`: the same for a folder the command creates or fills.

Nothing is created here except the probe file, which is removed at once; folders are made later
by the writer itself.
"""

import errno
import json
import os
import tempfile
from pathlib import Path
from typing import Literal

from stylegan_core.errors import UserError

Existing = Literal["refuse", "overwrite", "append"]


class OutputError(UserError):
    """An output location that cannot be written as asked."""


def describe_os_error(e: OSError, path: str | os.PathLike | None = None) -> str:
    """One line naming the path, what went wrong and the fix, for any OSError."""
    where = e.filename if e.filename is not None else path
    name = f"{os.fsdecode(where)}: " if where is not None else ""
    return f"{name}{os_error_reason(e)}"


def os_error_reason(e: OSError) -> str:
    """What an OSError means for the user and the fix, without the path."""
    fixes = {
        errno.EROFS: "read-only file system; write to a folder on a writable disk",
        errno.ENOSPC: "no space left on the device; free some space or write to another disk",
        errno.EDQUOT: "disk quota exceeded; free some space or write to another disk",
        errno.EACCES: "permission denied; choose a location you may write to (or read)",
        errno.EPERM: "operation not permitted; choose a location you may write to (or read)",
        errno.EISDIR: "is a folder, not a file; give a file name",
        errno.ENOTDIR: "a part of this path is a file, not a folder; fix the path",
        errno.ENOENT: "no such file or folder; check the path",
        errno.EEXIST: "already exists; choose another name",
        errno.ENAMETOOLONG: "file name too long; choose a shorter path",
        errno.EMFILE: "too many open files; raise the limit (ulimit -n) or use fewer workers",
    }
    return fixes.get(e.errno) or e.strerror or str(e) or type(e).__name__


def _existing_ancestor(path: Path, option: str) -> Path:
    """The nearest folder above `path` that exists; a file on the way is an error."""
    for parent in path.absolute().parents:
        if parent.exists():
            if not parent.is_dir():
                raise OutputError(f"{option} {path}: {parent} is a file, not a folder; fix the path")
            return parent
    raise OutputError(f"{option} {path}: no existing folder above it")  # unreachable on POSIX: / exists


def _probe_writable(folder: Path, option: str, path: Path) -> None:
    """Create and remove an empty hidden file in `folder` (the only reliable test: os.access says
    yes to root on a read-only mount)."""
    try:
        fd, probe = tempfile.mkstemp(dir=folder, prefix=".stylegan-eval-probe-", suffix=".tmp")
    except OSError as e:
        raise OutputError(f"{option} {path}: cannot write in {folder}: {os_error_reason(e)}") from None
    os.close(fd)
    os.unlink(probe)


def check_output_file(path: str | os.PathLike, option: str, existing: Existing = "refuse") -> Path:
    """Check that `path` can be written as a file before any work starts; returns it as a Path.

    option: the command-line option that named it (used in the message), e.g. "--out".
    existing: what an existing file means: "refuse" (the user must pass --overwrite), "overwrite"
    (the user did) or "append" (a results file: it must already hold result records).
    """
    path = Path(path)
    if path.is_dir():
        raise OutputError(f"{option} {path}: is a folder; give a file name inside it, e.g. {path / 'out'}")
    if path.exists():
        if not path.is_file():
            raise OutputError(f"{option} {path}: exists and is not a regular file; choose another name")
        if existing == "refuse":
            raise OutputError(f"{option} {path}: exists; pass --overwrite to replace it, or choose another name")
        if existing == "append":
            _check_results_file(path, option)
        if not os.access(path, os.W_OK):  # the file itself read-only (root passes; the folder probe covers mounts)
            raise OutputError(f"{option} {path}: the file is read-only; make it writable or choose another name")
    _probe_writable(_existing_ancestor(path, option), option, path)
    return path


def check_output_dir(path: str | os.PathLike, option: str) -> Path:
    """Check that folder `path` can be created (or written into) before any work starts.
    Whether an existing folder may be replaced is the caller's rule (each has its marker file)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} {path}: is a file, not a folder; choose a folder name")
    folder = path if path.is_dir() else _existing_ancestor(path, option)
    _probe_writable(folder, option, path)
    # The writers build a folder as a hidden sibling and rename it into place: its parent must be writable too.
    if folder == path:
        _probe_writable(_existing_ancestor(path, option), option, path)
    return path


def _check_results_file(path: Path, option: str) -> None:
    """Records are appended only to a file that already holds records (or is empty): never to a
    stats file, a CSV or a binary file named by mistake."""
    with open(path, "rb") as f:
        first = f.readline(1 << 20)
    if not first.strip():
        return
    try:
        obj = json.loads(first)
    except ValueError:
        obj = None
    if not (isinstance(obj, dict) and "metric" in obj and "record_version" in obj):
        raise OutputError(f"{option} {path}: exists and is not a results file (JSON lines of result records); "
                          "choose another file")
