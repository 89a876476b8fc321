"""S's Conv1D (and the matmul it amounts to) in float32 and bfloat16 on XLA:CPU, median ms."""

import statistics
import time

import jax
import jax.numpy as jnp

import seqclf

key = jax.random.PRNGKey(0)


def conv_sum(w, x):
    return seqclf.ops.conv1d(x, w, None, padding="SAME").astype(jnp.float32).sum()


for dtype in (jnp.float32, jnp.bfloat16):
    x = jax.random.normal(key, (30, 100, 128)).astype(dtype)
    w = (jax.random.normal(key, (5, 128, 64)) * 0.05).astype(dtype)
    a = jax.random.normal(key, (3000, 640)).astype(dtype)
    b = jax.random.normal(key, (640, 64)).astype(dtype)
    pieces = (
        ("conv forward", jax.jit(conv_sum), (w, x)),
        ("conv gradient", jax.jit(jax.grad(conv_sum, argnums=(0, 1))), (w, x)),
        ("matmul 3000 x 640 x 64", jax.jit(lambda a, b: a @ b), (a, b)),
    )
    for name, fn, args in pieces:
        jax.block_until_ready(fn(*args))
        times = []
        for _ in range(7):
            start = time.perf_counter()
            for _ in range(100):
                out = fn(*args)
            jax.block_until_ready(out)
            times.append((time.perf_counter() - start) * 10)
        print(f"{dtype.__name__:9s} {name:24s} {statistics.median(times):.3f} ms", flush=True)
