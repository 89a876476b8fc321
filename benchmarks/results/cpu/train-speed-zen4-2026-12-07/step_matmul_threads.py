"""How fast one recurrent step's matmul runs inside a scan, by its row count M (issue 22, items 1
and 3): ``c = tanh(c @ W + x_t)[:, :K]`` with W (192, 512), 20 steps, median of 7 blocks.

    python step_matmul_threads.py               # both cores
    taskset -c 0 python step_matmul_threads.py  # one core

Also two forms that might let XLA use the second core at M = 32 / 64: the transposed step
(``W^T @ c^T``, 512 rows) and the batch split over two independent scans in one jit.
"""

import statistics
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common  # noqa: E402

K, N, T = 192, 512, 20
w = jax.random.normal(jax.random.key(1), (K, N)) * 0.05


def rows_loop(c, w, xs):
    return lax.scan(lambda c, x_t: (jnp.tanh(c @ w + x_t)[:, :K], None), c, xs)[0]


def transposed_loop(c_t, w_t, xs_t):
    return lax.scan(lambda c, x_t: (jnp.tanh(w_t @ c + x_t)[:K], None), c_t, xs_t)[0]


def two_loops(c, w, xs):
    h = c.shape[0] // 2
    return jnp.concatenate([rows_loop(c[:h], w, xs[:, :h]), rows_loop(c[h:], w, xs[:, h:])])


def per_step_us(call, *args):
    ms = common.block_ms({"loop": lambda: call(*args)}, 5, 7, jax.block_until_ready)["loop"]
    return statistics.median(ms) / T * 1e3


for m in (32, 64, 128, 256, 1024, 3200):
    c = jax.random.normal(jax.random.key(0), (m, K))
    xs = jax.random.normal(jax.random.key(2), (T, m, N)) * 0.1
    us = per_step_us(jax.jit(rows_loop), c, w, xs)
    line = f"M {m:5d}: {us:7.1f} us a step, {2 * m * K * N / us / 1e3:6.1f} GFLOP/s"
    if m <= 64:
        xs_t = jnp.swapaxes(xs, 1, 2)
        line += f"; transposed {per_step_us(jax.jit(transposed_loop), c.T, w.T, xs_t):6.1f} us"
        line += f"; two scans {per_step_us(jax.jit(two_loops), c, w, xs):6.1f} us"
    print(line, flush=True)
