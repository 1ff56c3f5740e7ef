"""stylegan_eval.cli.allocator: after keep_freed_memory a freed large tensor stays in glibc's heap
(free bytes in the arena), where by default it is unmapped again. Each case runs in a fresh
interpreter, so the setting of one does not leak into the other."""

import subprocess
import sys

import pytest

PROBE = """
import ctypes, sys
import torch
from stylegan_eval.cli.allocator import keep_freed_memory

class MallInfo2(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks", "fordblks", "keepcost")]

libc = ctypes.CDLL(None)
libc.mallinfo2.restype = MallInfo2
applied = keep_freed_memory() if sys.argv[1] == "keep" else None
t = torch.empty(16 * 2**20).fill_(1.0)  # 64 MiB
del t
print(applied, libc.mallinfo2().fordblks)
"""


def _free_heap_bytes(mode: str) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", PROBE, mode], capture_output=True, text=True, check=True).stdout
    applied, free = out.split()
    return applied, int(free)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's allocator setting")
def test_freed_large_tensor_stays_in_the_heap():
    try:
        import ctypes

        ctypes.CDLL(None).gnu_get_libc_version
    except AttributeError:
        pytest.skip("not glibc")
    applied, kept = _free_heap_bytes("keep")
    _, default = _free_heap_bytes("default")
    assert applied == "True"
    assert kept >= 64 * 2**20 > default
