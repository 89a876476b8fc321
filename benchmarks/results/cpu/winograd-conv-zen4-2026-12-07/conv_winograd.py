"""ops.conv1d's Winograd path (seqclf/ops/winograd.py) against XLA's convolution, at the S
(30 x 100 x 128 -> 64, kernel 5) and L (64 x 400) convolutions: forward, and forward + backward
(the output and both gradients), float32 and bfloat16 (bfloat16's Winograd runs in float32;
the tap matmuls are what bfloat16 used before). Then the chunk size of long batches
(``_WINOGRAD_CHUNK_POSITIONS``) at four shapes, forward + backward. Median of 7 blocks, ms.

    python conv_winograd.py
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common
import jax
import jax.numpy as jnp
import numpy as np

from seqclf import ops
from seqclf.ops import conv as c

C, F, K = 128, 64, 5
bf = jnp.bfloat16


def inputs(B, T):
    x = jax.random.normal(jax.random.key(0), (B, T, C))
    w = jax.random.normal(jax.random.key(1), (K, C, F)) * 0.1
    dy = jax.random.normal(jax.random.key(2), (B, T - K + 1, F))
    return x, w, dy


def both(f, *args):
    """Output and both gradients in one compiled call (so the forward is not dropped)."""
    g = jax.jit(lambda x, w, dy: (lambda y, vjp: (y, vjp(dy)))(*jax.vjp(f, x, w)))
    return g.lower(*args).compile()


for B, T in ((30, 100), (64, 400)):
    x, w, dy = inputs(B, T)
    with jax.enable_x64(True):
        ref = np.asarray(c._xla_conv(np.asarray(x, np.float64), np.asarray(w, np.float64)))
    err = np.abs(np.asarray(ops.conv1d(x, w), np.float64) - ref).max() / np.abs(ref).max()
    print(f"B{B} T{T}: Winograd float32 output, largest error relative to float64: {err:.1e}")
    forms = {
        "float32 XLA conv": (lambda x, w: c._xla_conv(x, w), jnp.float32),
        "float32 ops.conv1d (Winograd)": (lambda x, w: ops.conv1d(x, w), jnp.float32),
        "bfloat16 tap matmuls (before)": (lambda x, w: c._conv_as_tap_matmuls(x, w, 1), bf),
        "bfloat16 ops.conv1d (Winograd)": (lambda x, w: ops.conv1d(x, w), bf),
    }
    calls = {}
    for name, (f, dt) in forms.items():
        args = (x.astype(dt), w.astype(dt), dy.astype(dt))
        fwd = jax.jit(f).lower(*args[:2]).compile()
        fb = both(f, *args)
        calls[name + " fwd"] = lambda fwd=fwd, args=args: fwd(*args[:2])
        calls[name + " fwd+bwd"] = lambda fb=fb, args=args: fb(*args)
    times = common.block_ms(calls, 30 if B == 30 else 4, 7, jax.block_until_ready)
    for kind in (" fwd", " fwd+bwd"):
        base = statistics.median(times["float32 XLA conv" + kind])
        for name in forms:
            ms = statistics.median(times[name + kind])
            print(f"B{B} T{T} {name + kind:40s} {ms:7.3f} ms  {base / ms:.2f}x XLA float32")

print("\nChunk size (positions per chunk) of long batches, float32 forward + backward:")
for B, T in ((64, 400), (128, 100), (16, 1000), (64, 200)):
    x, w, dy = inputs(B, T)
    xla = both(lambda x, w: c._xla_conv(x, w), x, w, dy)
    calls = {"XLA": lambda xla=xla, a=(x, w, dy): xla(*a)}
    for positions in (2048, 3200, 4096, 6400, 10**9):
        c._WINOGRAD_CHUNK_POSITIONS = positions  # read when traced
        f = both(lambda x, w: ops.conv1d(x, w), x, w, dy)
        calls[f"{positions if positions < 10**9 else 'whole'}"] = lambda f=f, a=(x, w, dy): f(*a)
    times = common.block_ms(calls, max(1, 120000 // (B * T)), 7, jax.block_until_ready)
    base = statistics.median(times["XLA"])
    cells = "  ".join(
        f"{k} {base / statistics.median(t):.2f}x" for k, t in times.items() if k != "XLA"
    )
    print(f"B{B} T{T}: XLA {base:6.2f} ms; Winograd, by chunk: {cells}", flush=True)
