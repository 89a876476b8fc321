"""The timing these probes share: seconds per call, the median of 7 blocks of ``n`` calls each
(blocks rather than single calls, so that calls of tens of microseconds are not dominated by
the clock and the dispatch)."""

import statistics
import time

import jax


def seconds_per_call(f, *args, n: int) -> float:
    jax.block_until_ready(f(*args))  # compile and warm up
    blocks = []
    for _ in range(7):
        start = time.perf_counter()
        for _ in range(n):
            out = f(*args)
        jax.block_until_ready(out)
        blocks.append((time.perf_counter() - start) / n)
    return statistics.median(blocks)
