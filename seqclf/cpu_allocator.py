"""Opt-in: let glibc keep freed memory, so that XLA:CPU stops page-faulting its buffers afresh.

Why: XLA:CPU allocates the temporary buffers of every call anew — tens to hundreds of MB for a
train step or an LSTM layer's forward + backward — and frees them at the end of the call.
glibc's malloc hands allocations of that size out as fresh ``mmap`` pages (and per-thread arenas
as ``mmap``-ed heaps) and gives them back to the kernel when they are freed, so each call touches
brand-new pages again: one page fault per 4 KiB, a large share of a CPU step's time
(benchmarks/README.md: ~60,000 faults per call for one LSTM layer at B 64, T 256, H 256).

What ``keep_freed_memory`` does is what the environment variables ``MALLOC_ARENA_MAX=1
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=… MALLOC_TOP_PAD_=…`` do, through ``mallopt``: one
arena, no ``mmap`` for large blocks, and freed memory kept in the heap instead of being returned
to the kernel, so the next call reuses pages that are already mapped.

The cost: the process keeps its largest heap (resident memory does not shrink after a big step),
and the setting is process-wide, so it speeds up every JAX program in the process alike (Flax,
Keras' JAX backend). Call it before JAX runs anything — the arena limit only applies to threads
that have not allocated yet. Linux with glibc only; elsewhere it does nothing and says so.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import platform

# mallopt parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_TOP_PAD = -2
_M_MMAP_MAX = -4
_M_ARENA_MAX = -8
# Keep up to this much free memory at the top of the heap (the C int maximum: effectively all),
# and grow the heap by at least this much at a time, so that growth does not fault page by page.
_KEEP_BYTES = 2**31 - 1
_TOP_PAD_BYTES = 256 << 20


def has_glibc() -> bool:
    """Whether this process runs on Linux with glibc, the allocator ``keep_freed_memory`` tunes."""
    return platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"


def keep_freed_memory() -> bool:
    """Tell glibc to reuse freed memory instead of returning it to the kernel (see module doc).

    Returns:
      True when all four settings were applied; False where there is no glibc (macOS, Windows,
      musl) or ``mallopt`` refused one of them.
    """
    if not has_glibc():
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
    except OSError:
        return False
    settings = (
        (_M_ARENA_MAX, 1),
        (_M_MMAP_MAX, 0),
        (_M_TRIM_THRESHOLD, _KEEP_BYTES),
        (_M_TOP_PAD, _TOP_PAD_BYTES),
    )
    # mallopt returns 1 on success, 0 on error.
    return all(libc.mallopt(param, value) == 1 for param, value in settings)
