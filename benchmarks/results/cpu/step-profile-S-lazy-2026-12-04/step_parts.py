"""Where the S config's default train step goes now that the table gets lazy Adam (issue 22,
item 1): each piece jitted alone on a fixed (30, 100) batch, ms per call, median of blocks.

    python step_parts.py

The pieces: the loss's value and gradient with the table held constant (what any step needs),
the same with the looked-up vectors' gradient summed per row (``value_and_row_grad``), the lazy
optimizer update alone (clip + AdamW on the rest, lazy Adam on the rows, state donated), and the
whole step as ``train_epoch`` runs it (``train_step_in_place``), lazy and dense.
"""

import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import train_speed  # noqa: E402  (puts the checkout on sys.path too)

from seqclf.lazy_embedding import value_and_row_grad  # noqa: E402
from seqclf.training import TrainConfig, create_train_state  # noqa: E402
from seqclf.training.step import (  # noqa: E402
    TRAIN_KEYS,
    _weighted_cross_entropy,
    train_step_in_place,
)

S = train_speed.CONFIGS["S"]
model = train_speed.seqclf_model(S)
rng = np.random.default_rng(0)
B, T = S.batch, S.max_len
# Real IMDB-like ids would repeat more (fewer distinct rows); uniform ids are the worst case.
batch = {
    "tokens": np.minimum(rng.zipf(1.2, (B, T)), train_speed.VOCAB - 1).astype(np.int32),
    "lengths": np.full(B, T, np.int32),
    "labels": rng.integers(0, 2, B).astype(np.int32),
    "weights": np.ones(B, np.float32),
}
print("distinct ids in the batch:", len(np.unique(batch["tokens"])))
example = {k: batch[k][:2] for k in ("tokens", "lengths")}
b = {k: jax.device_put(batch[k]) for k in TRAIN_KEYS}
key = jax.random.PRNGKey(0)


def state_of(lazy):
    config = TrainConfig(epochs=2, batch_size=S.batch, seed=0, lazy_embedding=lazy)
    return create_train_state(model, config, 10000, example)


state = state_of(None)
assert state.lazy_embedding


def loss_fn(params, perturbations=None):
    variables = {"params": params}
    if perturbations is not None:
        variables["perturbations"] = perturbations
    logits = state.apply_fn(variables, b["tokens"], b["lengths"], train=True, rngs={"dropout": key})
    return _weighted_cross_entropy(logits, b), logits


def median_ms(name, call, reps=100, blocks=7):
    jax.block_until_ready(call())
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(reps):
            out = call()
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / reps * 1000)
    print(f"{name:52s} {statistics.median(times):7.2f} ms  (min {min(times):.2f})", flush=True)


def frozen(params):
    return loss_fn({**params, "embedding": jax.lax.stop_gradient(params["embedding"])})


frozen_grad = jax.jit(jax.value_and_grad(frozen, has_aux=True))
row_grad = jax.jit(
    lambda p: value_and_row_grad(loss_fn, p, b["tokens"], "embedding", state.heads.embedded)
)
median_ms("loss value and gradient, table held constant", lambda: frozen_grad(state.params))
median_ms("loss value and row gradient (value_and_row_grad)", lambda: row_grad(state.params))
_, grads, rows = row_grad(state.params)
update = jax.jit(lambda s, g, r: s.apply_gradients(grads=g, embedding_rows=r), donate_argnums=0)
threaded = {"state": state_of(None)}


def donated_update():
    threaded["state"] = update(threaded["state"], grads, rows)
    return threaded["state"].params


def donated_step():
    threaded["state"], metrics = train_step_in_place(threaded["state"], b)
    return threaded["state"].params, metrics


median_ms("lazy update alone (clip + AdamW + lazy Adam, donated)", donated_update)
threaded["state"] = state_of(None)
median_ms("whole step, lazy (the default)", donated_step)
threaded["state"] = state_of(False)
median_ms("whole step, dense", donated_step)
threaded["state"] = state_of(None)
median_ms("whole step, lazy, again", donated_step)
