"""seqclf.cpu_allocator: with glibc told to keep freed memory, a large buffer that is allocated,
written and freed again and again stops costing fresh page faults (what XLA:CPU does each call).

Counted in page faults, not timed: each case runs in its own process, because the setting is
process-wide and only holds for arenas created after it.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from seqclf.cpu_allocator import has_glibc

pytestmark = pytest.mark.skipif(
    not has_glibc(), reason="keep_freed_memory acts on glibc's malloc only"
)

# Allocates, fills and frees a 64 MiB block 20 times; prints the minor page faults of the last 19.
_CHURN = """
import ctypes, ctypes.util, resource, sys
from seqclf.cpu_allocator import keep_freed_memory
if sys.argv[1] == "keep":
    assert keep_freed_memory() is True  # applied
libc = ctypes.CDLL(ctypes.util.find_library("c"))
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
size = 64 << 20
def churn():
    block = libc.malloc(size)
    ctypes.memset(block, 1, size)
    libc.free(block)
churn()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(19):
    churn()
print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
"""


def _faults(mode: str) -> int:
    proc = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return int(proc.stdout.split()[-1])


def test_keep_freed_memory_reuses_pages_instead_of_faulting_them_in_again():
    default, kept = _faults("default"), _faults("keep")
    # By default each 64 MiB block is a fresh mmap: ~16,000 faults of 4 KiB per round (fewer
    # with transparent huge pages, but still some per round); kept, the pages stay mapped.
    assert default >= 19, default
    assert kept * 10 <= default, (kept, default)
