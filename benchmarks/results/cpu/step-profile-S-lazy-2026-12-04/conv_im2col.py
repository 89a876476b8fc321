"""Is the classifier's Conv1D faster on XLA:CPU as one matmul over stacked windows (im2col) or
as a sum of K shifted matmuls than as ``lax.conv_general_dilated``? ms per call, median of 7
blocks of 50 calls, forward and gradient (input, kernel, bias) at the S and L shapes.

    python conv_im2col.py
"""

import statistics
import time

import jax
import jax.numpy as jnp

from seqclf.ops import conv1d


def lax_conv(x, w, b):
    return conv1d(x, w, b)


def im2col_conv(x, w, b):
    k, c, f = w.shape
    t_out = x.shape[1] - k + 1
    cols = jnp.concatenate([x[:, i : i + t_out] for i in range(k)], axis=-1)  # (B, T_out, K·C)
    return cols @ w.reshape(k * c, f) + b


def shifted_conv(x, w, b):
    t_out = x.shape[1] - w.shape[0] + 1
    return sum(x[:, i : i + t_out] @ w[i] for i in range(w.shape[0])) + b


def median_ms(f, *args, reps=50, blocks=7):
    jax.block_until_ready(f(*args))
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(reps):
            out = f(*args)
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / reps * 1e3)
    return statistics.median(times)


def gradient_of(fn):
    def loss(x, w, b):
        return jnp.sum(jax.nn.relu(fn(x, w, b)) ** 2)

    return jax.jit(jax.grad(loss, argnums=(0, 1, 2)))


for batch, length in [(30, 100), (64, 400)]:
    key = jax.random.PRNGKey(0)
    x = jax.random.normal(key, (batch, length, 128))
    w = jax.random.normal(key, (5, 128, 64)) * 0.05
    b = jnp.zeros(64)
    for name, fn in [("lax conv", lax_conv), ("im2col", im2col_conv), ("shifted", shifted_conv)]:
        forward = jax.jit(fn)
        err = float(jnp.max(jnp.abs(forward(x, w, b) - lax_conv(x, w, b))))
        print(
            f"B{batch} T{length} {name:9s} fwd {median_ms(forward, x, w, b):6.2f} ms  "
            f"grad {median_ms(gradient_of(fn), x, w, b):6.2f} ms  maxerr {err:.1e}",
            flush=True,
        )
