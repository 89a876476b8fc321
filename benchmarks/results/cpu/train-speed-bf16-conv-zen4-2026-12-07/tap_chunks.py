"""The bfloat16 tap-matmul forward (one matmul per kernel tap) taken a few batch rows at a time,
by positions (rows x steps) per chunk, against XLA's float32 convolution: how
``_TAP_CHUNK_POSITIONS`` was chosen. B and T from the environment.

    B=64 T=400 python tap_chunks.py
"""

import os
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common
import jax
import jax.numpy as jnp
from jax import lax

B, T = int(os.environ.get("B", 30)), int(os.environ.get("T", 100))
C, F, K = 128, 64, 5
To = T - K + 1
bf = jnp.bfloat16
x = jax.random.normal(jax.random.key(0), (B, T, C))
w = jax.random.normal(jax.random.key(1), (K, C, F)) * 0.1


def dot(a, b, ca, cb):
    return lax.dot_general(a, b, ((ca, cb), ((), ())), preferred_element_type=jnp.float32)


def xla_conv(x, w):
    return lax.conv_general_dilated(
        x, w.astype(x.dtype), (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC")
    )


def taps(x, w):
    return sum(dot(x[:, k : k + To], w[k], (2,), (0,)) for k in range(K))


def chunked(rows):
    def f(x, w):
        xd, wd = x.astype(bf), w.astype(bf)
        n = -(-B // rows)
        xd = jnp.pad(xd, ((0, n * rows - B), (0, 0), (0, 0)))
        if n == 1:
            return taps(xd, wd).astype(bf)[:B]
        ys = lax.map(lambda xc: taps(xc, wd).astype(bf), xd.reshape(n, rows, T, C))
        return ys.reshape(n * rows, To, F)[:B]

    return f


fs = {"f32 XLA": xla_conv}
for m in (2048, 4096, 8192):
    r = max(1, m // T)
    fs[f"taps, {r} rows ({r * T} positions) a chunk"] = chunked(r)
ref = xla_conv(x, w)
calls = {}
for n, f in fs.items():
    j = jax.jit(f)
    err = float(jnp.max(jnp.abs(j(x, w).astype(jnp.float32) - ref)) / jnp.max(jnp.abs(ref)))
    calls[n] = lambda j=j: j(x, w)
times = common.block_ms(calls, max(2, 3000 // (B * T) * 10), 7, jax.block_until_ready)
base = statistics.median(times["f32 XLA"])
for n, t in times.items():
    ms = statistics.median(t)
    print(f"B{B} T{T} {n:44s} {ms:7.3f} ms (min {min(t):.3f}) {base / ms:.2f}x")
