"""stylegan_core.atomic: all-or-nothing writes, files readable as the umask allows (not mkstemp's
0600), and temporary files of writers killed mid-write cleaned on the next write."""

import os
import signal
import subprocess
import sys
import time

import pytest

from stylegan_core import atomic
from stylegan_core.atomic import atomic_open, remove_stale_temps


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it."""
    old = os.umask(0o022)
    os.umask(old)
    yield lambda mask: os.umask(mask)
    os.umask(old)


@pytest.mark.parametrize("mask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_file_mode_honours_the_umask(tmp_path, umask, mask, mode):
    umask(mask)
    assert atomic.current_umask() == mask
    with atomic_open(tmp_path / "f.bin") as f:
        f.write(b"x")
    assert (tmp_path / "f.bin").stat().st_mode & 0o777 == mode


def test_replaced_file_keeps_its_mode(tmp_path, umask):
    umask(0o022)
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    target.chmod(0o640)
    with atomic_open(target) as f:
        f.write(b"new")
    assert target.read_bytes() == b"new" and target.stat().st_mode & 0o777 == 0o640


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "f.bin"
    target.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="boom"):
        with atomic_open(target) as f:
            f.write(b"partial")
            raise RuntimeError("boom")
    assert target.read_bytes() == b"old" and sorted(os.listdir(tmp_path)) == ["f.bin"]


KILLED_WRITER = """
import os, signal, sys
from stylegan_core.atomic import atomic_open
with atomic_open(sys.argv[1]) as f:
    f.write(b"half of it")
    f.flush()
    os.kill(os.getpid(), signal.SIGKILL)
"""


def _age(path, seconds):
    t = time.time() - seconds
    os.utime(path, (t, t))


def test_temporary_of_a_killed_writer_is_removed_by_the_next_write(tmp_path):
    target = tmp_path / "ckpt.pt"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(target)], env=env)
    assert proc.wait() == -signal.SIGKILL
    (left,) = tmp_path.iterdir()
    assert left.name.startswith(f".ckpt.pt.pid{proc.pid}.") and left.name.endswith(".tmp")
    assert not target.exists()
    # Fresh debris may still belong to a slow writer elsewhere: kept.
    with atomic_open(target) as f:
        f.write(b"a")
    assert left.exists()
    _age(left, atomic.STALE_AFTER_S + 1)
    with atomic_open(target) as f:
        f.write(b"b")
    assert not left.exists() and sorted(os.listdir(tmp_path)) == ["ckpt.pt"] and target.read_bytes() == b"b"


def test_only_old_temporaries_of_dead_writers_of_this_target_are_removed(tmp_path):
    target = tmp_path / "a.pt"
    dead_pid = subprocess.Popen([sys.executable, "-c", "pass"])  # a pid that has exited
    dead_pid.wait()
    files = {
        "dead": tmp_path / f".a.pt.pid{dead_pid.pid}.abc123_x.tmp",
        "alive": tmp_path / f".a.pt.pid{os.getpid()}.abc123_x.tmp",  # this process: still writing
        "other_target": tmp_path / f".b.pt.pid{dead_pid.pid}.abc123_x.tmp",
        "user_file": tmp_path / f".a.pt.pid{dead_pid.pid}.notes.txt",
    }
    for p in files.values():
        p.write_bytes(b"x")
        _age(p, atomic.STALE_AFTER_S + 1)
    assert remove_stale_temps(target) == [files["dead"]]
    assert all(p.exists() for k, p in files.items() if k != "dead")
