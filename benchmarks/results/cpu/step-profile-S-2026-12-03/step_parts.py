"""Where the S config's dense train step goes after the donated step (issue 22, item 1): each
piece jitted alone on a fixed (30, 100) batch, ms per call, median of blocks of 100 calls.

    python step_parts.py

The pieces: the forward (eval and with dropout), the loss's value and gradient, the optimizer
update alone (clip + AdamW over every parameter, state donated), and the whole step as
``train_epoch`` runs it (``train_step_in_place``: the state donated to each call).
"""

import statistics
import sys
import time
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import train_speed  # noqa: E402  (puts the checkout on sys.path too)

import seqclf  # noqa: E402
from seqclf.training import TrainConfig, create_train_state  # noqa: E402
from seqclf.training.step import (  # noqa: E402
    TRAIN_KEYS,
    _weighted_cross_entropy,
    train_step_in_place,
)

S = train_speed.CONFIGS["S"]
model = train_speed.seqclf_model(S)
config = TrainConfig(epochs=2, batch_size=S.batch, seed=0)
rng = np.random.default_rng(0)
B, T = S.batch, S.max_len
batch = {
    "tokens": rng.integers(2, train_speed.VOCAB, (B, T)).astype(np.int32),
    "lengths": rng.integers(20, T + 1, B).astype(np.int32),
    "labels": rng.integers(0, 2, B).astype(np.int32),
    "weights": np.ones(B, np.float32),
}
example = {k: batch[k][:2] for k in ("tokens", "lengths")}
b = {k: jax.device_put(batch[k]) for k in TRAIN_KEYS}
key = jax.random.PRNGKey(0)
state = create_train_state(model, config, 10000, example)


def loss(params, b, train=True):
    logits = state.apply_fn(
        {"params": params}, b["tokens"], b["lengths"], train=train, rngs={"dropout": key}
    )
    return _weighted_cross_entropy(logits, b)


fwd_eval = jax.jit(lambda p, b: loss(p, b, False))
fwd = jax.jit(loss)
value_and_grad = jax.jit(jax.value_and_grad(loss))
grads = value_and_grad(state.params, b)[1]
update = jax.jit(lambda s, g: s.apply_gradients(grads=g), donate_argnums=0)


def median_ms(name, call, reps=100, blocks=7):
    """``call()`` once to compile, then blocks of ``reps`` calls; prints and returns the median."""
    jax.block_until_ready(call())
    times = []
    for _ in range(blocks):
        start = time.perf_counter()
        for _ in range(reps):
            out = call()
        jax.block_until_ready(out)
        times.append((time.perf_counter() - start) / reps * 1000)
    print(f"{name:44s} {statistics.median(times):7.2f} ms  (min {min(times):.2f})", flush=True)


median_ms("forward, eval", lambda: fwd_eval(state.params, b))
median_ms("forward, train (dropout)", lambda: fwd(state.params, b))
median_ms("loss value and gradient", lambda: value_and_grad(state.params, b))

threaded = {"state": create_train_state(model, config, 10000, example)}


def donated_update():
    threaded["state"] = update(threaded["state"], grads)
    return threaded["state"].params


def donated_step():
    threaded["state"], metrics = train_step_in_place(threaded["state"], b)
    return threaded["state"].params, metrics


median_ms("optimizer update alone (clip + AdamW, donated)", donated_update)
threaded["state"] = create_train_state(model, config, 10000, example)
median_ms("whole step (train_step_in_place, donated)", donated_step)


def loss_table_frozen(params, b):
    """The loss with the embedding table held constant: no (V, E) gradient is formed."""
    frozen = {**params, "embedding": jax.lax.stop_gradient(params["embedding"])}
    return loss(frozen, b)


frozen_grad = jax.jit(jax.value_and_grad(loss_table_frozen))
median_ms("loss value and gradient, table held constant", lambda: frozen_grad(state.params, b))

# The convolution alone, as the model runs it: (30, 100, 128) -> 64 filters of width 5, 'same'.
conv_x = jax.random.normal(key, (B, T, train_speed.EMBED))
conv_w = state.params["conv0"]


def conv_loss(w, x):
    return seqclf.ops.conv1d(x, w["kernel"], w["bias"], padding="SAME").sum()


conv_fwd = jax.jit(conv_loss)
conv_grad = jax.jit(jax.grad(conv_loss, argnums=(0, 1)))
median_ms("Conv1D alone, forward", lambda: conv_fwd(conv_w, conv_x))
median_ms("Conv1D alone, gradient (weights and input)", lambda: conv_grad(conv_w, conv_x))
