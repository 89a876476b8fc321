"""What the catch-up would cost in a config-S step, against dense Adam's update of the table.

Config S: a 20,000 x 128 embedding table; a batch of 30 reviews of 100 tokens has about 1,000
distinct words. Times (median of 50 jitted calls, float32, this CPU): optax.adam's update of the
whole table, and the catch-up of 1,024 gathered rows (a 160-term window of precomputed per-step
weights per row, the moments' decay, the parameter move) plus their scatter back.
Run: python cost.py
"""

import functools
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

V, E, R, J, STEPS = 20_000, 128, 1024, 160, 8340
B1, B2 = 0.9, 0.999
schedule = optax.warmup_cosine_decay_schedule(0.0, 2e-3, int(0.05 * STEPS), STEPS)
key = jax.random.PRNGKey(0)
table = jax.random.normal(key, (V, E))
grad = jnp.zeros((V, E)).at[:R].set(1e-2)
opt = optax.adam(schedule)
state = opt.init(table)


@functools.partial(jax.jit, donate_argnums=(0, 1))  # in place, as seqclf's donated step
def dense(table, state, grad):
    updates, state = opt.update(grad, state, table)
    return optax.apply_updates(table, updates), state


# lr(t) * c(t) for every step t (index t; index 0 unused), and r^j for j = 1..J: computed once,
# so that a step's catch-up is a gather and a multiply-add per (row, j), no pow or cos.
_t = np.arange(STEPS + J + 1, dtype=np.float64)
_t[0] = 1.0
STEP_WEIGHTS = jnp.asarray(
    np.asarray(schedule(_t - 1)) * np.sqrt(1 - B2**_t) / (1 - B1**_t), jnp.float32
)
DECAY = jnp.asarray((B1 / np.sqrt(B2)) ** np.arange(1, J + 1), jnp.float32)


@functools.partial(jax.jit, donate_argnums=(0, 1, 2, 3))
def catch_up(table, mu, nu, last, rows, now):
    k = now - 1 - last[rows]
    j = jnp.arange(1, J + 1)
    t = last[rows][:, None] + j[None, :]
    terms = STEP_WEIGHTS[t] * DECAY  # lr(t) c(t) r^j, from two small precomputed tables
    factor = jnp.where(j[None, :] <= k[:, None], terms, 0.0).sum(1)
    m, v = mu[rows], nu[rows]
    ratio = jnp.where(v > 0, m / jnp.sqrt(jnp.where(v > 0, v, 1.0)), 0.0)
    table = table.at[rows].add(-factor[:, None] * ratio)
    mu = mu.at[rows].set(m * (B1**k)[:, None])
    nu = nu.at[rows].set(v * (B2**k)[:, None])
    return table, mu, nu, last.at[rows].set(now - 1)


def median_ms(fn, donated: int, *args) -> float:
    """``fn`` called 50 times, its first ``donated`` outputs fed back as the donated inputs."""
    args = list(args)
    times = []
    for i in range(51):
        start = time.perf_counter()
        out = jax.block_until_ready(fn(*args))
        if i:  # the first call compiles
            times.append(time.perf_counter() - start)
        args[:donated] = out[:donated]
    return 1e3 * float(np.median(times))


rows = jnp.asarray(np.random.default_rng(0).choice(V, R, replace=False), jnp.int32)
last = jnp.asarray(np.random.default_rng(1).integers(0, 4000, V), jnp.int32)
mu, nu = jnp.full((V, E), 1e-3), jnp.full((V, E), 1e-6)
fresh = table + 0  # the catch-up's own copy: dense donates (deletes) the one it is given
print(f"dense Adam update of the {V} x {E} table: {median_ms(dense, 2, table, state, grad):.2f} ms")
print(
    f"catch-up of {R} rows (window {J}): "
    f"{median_ms(catch_up, 4, fresh, mu, nu, last, rows, jnp.int32(4000)):.2f} ms"
)
