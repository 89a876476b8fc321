"""ops.conv1d forward and forward + backward (vjp) at the S (30 x 100 x 128 -> 64, kernel 5) and
L (64 x 400) convolutions: float32 (XLA), bfloat16 through XLA's convolution (the path before
46312ce) and bfloat16 through ops.conv1d (tap matmuls on the CPU). Median of 7 blocks, ms.

    python conv1d_bf16.py
"""

import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common
import jax
import jax.numpy as jnp

from seqclf import ops
from seqclf.ops import conv as c

bf = jnp.bfloat16
for B, T in ((30, 100), (64, 400)):
    C, F, K = 128, 64, 5
    x = jax.random.normal(jax.random.key(0), (B, T, C))
    w = jax.random.normal(jax.random.key(1), (K, C, F)) * 0.1
    dy = jax.random.normal(jax.random.key(2), (B, T - K + 1, F))
    forms = {
        "float32 (XLA)": (lambda x, w: ops.conv1d(x, w), jnp.float32),
        "bfloat16, XLA's conv (before)": (lambda x, w: c._xla_conv(x, w.astype(x.dtype)), bf),
        "bfloat16, ops.conv1d (tap matmuls)": (lambda x, w: ops.conv1d(x, w), bf),
    }
    calls = {}
    for n, (f, dt) in forms.items():
        xd, gd = x.astype(dt), dy.astype(dt)
        fwd = jax.jit(f)
        both = jax.jit(lambda x, w, g, f=f: jax.vjp(f, x, w)[1](g))
        calls[n + " fwd"] = lambda fwd=fwd, xd=xd, w=w: fwd(xd, w)
        calls[n + " fwd+bwd"] = lambda both=both, xd=xd, gd=gd, w=w: both(xd, w, gd)
    reps = 30 if B == 30 else 4
    times = common.block_ms(calls, reps, 7, jax.block_until_ready)
    for kind in (" fwd", " fwd+bwd"):
        base = statistics.median(times["float32 (XLA)" + kind])
        for n in forms:
            t = times[n + kind]
            ms = statistics.median(t)
            print(f"B{B} T{T} {n + kind:44s} {ms:7.3f} ms  {base / ms:.2f}x float32")
