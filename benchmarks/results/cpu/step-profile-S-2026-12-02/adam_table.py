"""The dense Adam update over the S model's (20000, 128) embedding table: what memory traffic
alone costs here."""

import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax


def timeit(name, fn, *args, reps=100, blocks=5):
    out = fn(*args)
    jax.block_until_ready(out)
    ts = []
    for _ in range(blocks):
        t = time.perf_counter()
        for _ in range(reps):
            out = fn(*args)
        jax.block_until_ready(out)
        ts.append((time.perf_counter() - t) / reps * 1000)
    print(f"{name:44s} {statistics.median(ts):7.2f} ms", flush=True)
    return statistics.median(ts)


V, E = 20000, 128
p = jnp.ones((V, E))
g = jnp.full((V, E), 1e-3)
big = np.ones(64 * 2**20 // 4, np.float32)
t = time.perf_counter()
for _ in range(20):
    big2 = big.copy()
dt = (time.perf_counter() - t) / 20
print(f"numpy copy of 64 MiB: {dt * 1000:.1f} ms -> {2 * 64 / 1024 / dt:.1f} GiB/s (read+write)")
copy = jax.jit(lambda x: x * 1.0001)
ms = timeit("jax: x * c over the table (read+write 20 MB)", copy, p)
print(f"  -> {2 * V * E * 4 / 2**30 / (ms / 1000):.1f} GiB/s")
adam = optax.adam(1e-3)
st = adam.init(p)


def upd(p, st, g):
    u, st = adam.update(g, st, p)
    return optax.apply_updates(p, u), st


timeit("optax.adam on the table alone", jax.jit(upd), p, st, g)
clip = optax.chain(optax.clip_by_global_norm(1.0), optax.adamw(1e-3, weight_decay=1e-4))
st2 = clip.init(p)


def upd2(p, st, g):
    u, st = clip.update(g, st, p)
    return optax.apply_updates(p, u), st


timeit("clip_by_global_norm + adamw on the table", jax.jit(upd2), p, st2, g)
tok = jnp.asarray(np.random.default_rng(0).integers(0, V, 3000))


def emb_grad(d):
    return jnp.zeros((V, E)).at[tok].add(d)


timeit("embedding gradient: zeros + scatter-add 3000 rows", jax.jit(emb_grad), jnp.ones((3000, E)))
