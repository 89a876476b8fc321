"""Probe (issue 22, item 1): can a lazy embedding update reproduce dense Adam exactly?

Dense Adam moves every row of the table at every step, also rows whose gradient is zero: their
moments decay (m *= b1, v *= b2) and their momentum keeps moving them. Lazy Adam (seqclf's
--lazy-embedding) skips those rows, which is why it is faster and why it differs. But the
skipped steps have a closed form: after k steps without gradient from (m0, v0) at step s0,

    m = b1^k m0,  v = b2^k v0,
    p -= sum_{j=1..k} lr(s0+j) * c(s0+j) * r^j * m0 / sqrt(v0)   (eps neglected)

with r = b1 / sqrt(b2) and c(t) = sqrt(1 - b2^t) / (1 - b1^t) (Adam's bias corrections). As
r^j < 1e-7 for j > 150, a window of J = 160 terms is enough. So a row can be caught up when it is
next used (before the forward reads it) and every row once before evaluation or a checkpoint.

This script checks the arithmetic against optax.adam on a (V, E) table with row-sparse random
gradients and seqclf's warm-up + cosine schedule: dense Adam, catch-up lazy Adam, and plain lazy
Adam (the current --lazy-embedding) from the same start. float64 numpy for the lazy variants
and jax float64 for optax. Run: python probe.py [EPS]   (Adam's eps, default 1e-8)
"""

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import optax  # noqa: E402

V, E, STEPS, TOUCH, J = 400, 8, 600, 0.05, 160
B1, B2, PEAK = 0.9, 0.999, 2e-3
EPS = float(__import__("sys").argv[1]) if len(__import__("sys").argv) > 1 else 1e-8
schedule = optax.warmup_cosine_decay_schedule(0.0, PEAK, int(0.05 * STEPS), STEPS)
rng = np.random.default_rng(0)
p0 = rng.normal(size=(V, E))
# Row-sparse gradients: each step touches ~5 % of the rows, with a few frequent rows.
weights = 1.0 / np.arange(1, V + 1) ** 0.8
weights /= weights.sum()
grads = []
for _ in range(STEPS):
    rows = np.unique(rng.choice(V, size=int(TOUCH * V), p=weights))
    grads.append((rows, 1e-2 * rng.normal(size=(len(rows), E))))

# Dense Adam (optax), the reference.
opt = optax.adam(schedule, b1=B1, b2=B2, eps=EPS)
p = jnp.asarray(p0)
state = opt.init(p)
for rows, g in grads:
    dense_g = jnp.zeros((V, E)).at[rows].set(g)
    updates, state = opt.update(dense_g, state, p)
    p = optax.apply_updates(p, updates)
dense = np.asarray(p)


def lr(t):  # t: 1-based step, as optax counts (its schedule sees t - 1)
    return np.asarray(schedule(np.asarray(t) - 1), dtype=np.float64)


def correction(t):
    return np.sqrt(1 - B2**t) / (1 - B1**t)


def catch_up(p, m, v, last, rows, now):
    """Apply the steps last+1 .. now-1 (no gradient) to ``rows``."""
    k = now - 1 - last[rows]  # skipped steps per row
    j = np.arange(1, J + 1)
    t = last[rows][:, None] + j[None, :]  # (R, J) step numbers
    live = j[None, :] <= k[:, None]
    factor = np.where(live, lr(t) * correction(t) * (B1 / np.sqrt(B2)) ** j, 0.0).sum(1)
    seen = v[rows] > 0  # rows never updated have no momentum yet
    ratio = np.where(seen, m[rows] / np.sqrt(np.where(seen, v[rows], 1.0)), 0.0)
    p[rows] -= factor[:, None] * ratio
    m[rows] *= B1 ** k[:, None]
    v[rows] *= B2 ** k[:, None]
    last[rows] = now - 1


def lazy(catch: bool) -> np.ndarray:
    p, m, v = p0.copy(), np.zeros((V, E)), np.zeros((V, E))
    last = np.zeros(V, dtype=np.int64)
    for s, (rows, g) in enumerate(grads, start=1):
        if catch:
            catch_up(p, m, v, last, rows, s)
        m[rows] = B1 * m[rows] + (1 - B1) * g
        v[rows] = B2 * v[rows] + (1 - B2) * g * g
        m_hat, v_hat = m[rows] / (1 - B1**s), v[rows] / (1 - B2**s)
        p[rows] -= lr(s) * m_hat / (np.sqrt(v_hat) + EPS)
        last[rows] = s
    if catch:  # before evaluation: every row up to the last step
        catch_up(p, m, v, last, np.arange(V), STEPS + 1)
    return p


print(f"eps {EPS:g}:")
moved = np.abs(dense - p0).max()
for name, table in (("catch-up lazy", lazy(True)), ("plain lazy", lazy(False))):
    diff = np.abs(table - dense)
    print(
        f"{name:14s} max |p - dense| {diff.max():.3e}  mean {diff.mean():.3e}  "
        f"(largest move of any row by dense Adam: {moved:.3e})"
    )
