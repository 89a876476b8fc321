"""Benchmark helpers: a device/version stamp, interleaved timing, the float32 matmul peak."""

from __future__ import annotations

import datetime
import importlib.metadata
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/x.py` from a checkout, without pip install
    sys.path.insert(0, str(REPO))


def keep_freed_memory_or_exit() -> None:
    """``--keep-freed-memory``: apply ``seqclf.cpu_allocator.keep_freed_memory`` (before JAX or
    torch start their threads: the arena limit needs that), or stop where there is no glibc."""
    from seqclf.cpu_allocator import keep_freed_memory

    if not keep_freed_memory():
        raise SystemExit("--keep-freed-memory needs Linux with glibc")


def versions() -> dict[str, str]:
    """Installed versions of the libraries a benchmark row depends on (absent ones left out)."""
    out = {"python": platform.python_version()}
    for name in ("jax", "jaxlib", "flax", "numpy", "torch"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def cpu_name() -> str:
    """The CPU model from /proc/cpuinfo (or platform), and the number of cores."""
    import os

    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name}, {os.cpu_count()} cores"


def device_name(device: str) -> str:
    """A human-readable name of the JAX device used for ``device`` ("cpu" or "gpu")."""
    import jax

    if device == "cpu":
        import os

        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
        return f"CPU ({cpu_name()}; load average {load:.1f} when stamped)"
    return jax.devices("gpu")[0].device_kind


def stamp(device: str) -> str:
    """One line: device, library versions and UTC date, to put under every result."""
    libs = ", ".join(f"{k} {v}" for k, v in versions().items())
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"{device_name(device)}; {libs}; {date}"


def interleaved_times(
    fns: dict[str, Callable[[], object]],
    repeats: int,
    sync: Callable[[object], object],
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Seconds per call of each function, the repeats taken round-robin.

    Round-robin (A, B, C, A, B, C, ...) rather than A, A, A, B, B, B so that a noisy neighbour on a
    shared machine slows every implementation alike instead of whichever ran at that moment.

    Args:
      fns: name -> a zero-argument callable that launches the work and returns its result.
      repeats: timed calls per function.
      sync: waits for a result to be ready (``jax.block_until_ready`` or a CUDA synchronise).
      warmup: untimed calls per function first (compilation, caches).

    Returns:
      name -> list of ``repeats`` wall-clock times in seconds.
    """
    for fn in fns.values():
        for _ in range(warmup):
            sync(fn())
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            sync(fn())
            times[name].append(time.perf_counter() - start)
    return times


def median_ms(seconds: list[float]) -> float:
    return 1e3 * statistics.median(seconds)


def block_ms(
    fns: dict[str, Callable[[], object]],
    calls_per_block: int,
    blocks: int,
    sync: Callable[[object], object],
) -> dict[str, list[float]]:
    """Milliseconds per call of each function, timed in blocks of calls taken round-robin.

    For calls of tens of microseconds to a few milliseconds: one block runs a function
    ``calls_per_block`` times and waits once, so the clock and the wait do not dominate, and the
    blocks of all functions alternate (``interleaved_times``) so that a noisy neighbour slows
    them alike.

    Returns:
      name -> ``blocks`` times, each a block's wall-clock milliseconds over ``calls_per_block``.
    """

    def block(fn: Callable[[], object]) -> Callable[[], object]:
        def run() -> object:
            for _ in range(calls_per_block - 1):
                fn()
            return fn()  # calls on one device complete in order: waiting for the last is enough

        return run

    times = interleaved_times({name: block(fn) for name, fn in fns.items()}, blocks, sync)
    return {name: [1e3 * t / calls_per_block for t in ts] for name, ts in times.items()}


def matmul_peak_gflops(device: str = "cpu", n: int | None = None, repeats: int = 5) -> float:
    """Measured float32 matmul throughput in GFLOP/s: the best of ``repeats`` n x n x n products.

    Precision is pinned to full float32 (no TF32 on GPU). n defaults to 2048 on CPU, 8192 on GPU.
    """
    import jax
    import jax.numpy as jnp

    n = n or (2048 if device == "cpu" else 8192)
    dev = jax.devices(device)[0]
    with jax.default_matmul_precision("float32"):
        a = jax.device_put(jnp.ones((n, n), jnp.float32) / n, dev)
        f = jax.jit(lambda a: a @ a)
        times = interleaved_times({"mm": lambda: f(a)}, repeats, jax.block_until_ready)["mm"]
    return 2 * n**3 / min(times) / 1e9
