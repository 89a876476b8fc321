"""The classifier's Conv1D (128 → 64 channels, width 5) forward and forward + backward, float32
against bfloat16 inputs and kernel, at config S (30 × 100) and L (64 × 400).

    python bf16_conv.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from block_timing import seconds_per_call  # this folder's shared timing

from seqclf.ops.conv import conv1d

rng = np.random.default_rng(0)


def median_ms(f, *args, n):
    return 1e3 * seconds_per_call(f, *args, n=n)


forward = jax.jit(conv1d)
gradient = jax.jit(
    jax.grad(lambda x, k: jnp.sum(conv1d(x, k).astype(jnp.float32) ** 2), argnums=(0, 1))
)
for batch, steps in ((30, 100), (64, 400)):
    x = rng.normal(size=(batch, steps, 128)).astype(np.float32)
    kernel = (rng.normal(size=(5, 128, 64)) * 0.05).astype(np.float32)
    n = 100 if steps <= 100 else 10
    row = []
    for dtype in (jnp.float32, jnp.bfloat16):
        args = jnp.asarray(x, dtype), jnp.asarray(kernel, dtype)
        row.append((median_ms(forward, *args, n=n), median_ms(gradient, *args, n=n)))
    (f32, g32), (f16, g16) = row
    print(
        f"B {batch} T {steps}: forward f32 {f32:.2f} ms, bf16 {f16:.2f} ms ({f32 / f16:.2f}x); "
        f"fwd+bwd f32 {g32:.2f} ms, bf16 {g16:.2f} ms ({g32 / g16:.2f}x)"
    )
