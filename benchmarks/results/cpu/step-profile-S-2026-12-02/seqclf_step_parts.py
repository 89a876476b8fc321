"""Where the S config's dense train step goes: forward, backward, optimizer update, each jitted
alone on a fixed (30, 100) batch; ms per call (median of blocks)."""

import statistics
import time

import jax
import numpy as np

import seqclf
from seqclf.training import TrainConfig, create_train_state
from seqclf.training.step import TRAIN_KEYS, _weighted_cross_entropy, train_step

model = seqclf.build_classifier(
    seqclf.presets.CLASSIC,
    vocab_size=20000,
    embed_dim=128,
    embed_dropout=0.25,
    conv_filters=(64,),
    conv_kernel_size=5,
    pool_size=4,
    hidden_size=70,
)
config = TrainConfig(epochs=2, batch_size=30, seed=0)
rng = np.random.default_rng(0)
B, T = 30, 100
batch = {
    "tokens": rng.integers(2, 20000, (B, T)).astype(np.int32),
    "lengths": rng.integers(20, T + 1, B).astype(np.int32),
    "labels": rng.integers(0, 2, B).astype(np.int32),
    "weights": np.ones(B, np.float32),
}
state = create_train_state(model, config, 10000, {k: batch[k][:2] for k in ("tokens", "lengths")})
b = {k: jax.device_put(batch[k]) for k in TRAIN_KEYS}
key = jax.random.PRNGKey(0)


def loss(params, b, train=True):
    logits = state.apply_fn(
        {"params": params}, b["tokens"], b["lengths"], train=train, rngs={"dropout": key}
    )
    return _weighted_cross_entropy(logits, b)


fwd = jax.jit(loss)
fwd_eval = jax.jit(lambda p, b: loss(p, b, False))
vg = jax.jit(jax.value_and_grad(loss))
grads = vg(state.params, b)[1]
upd = jax.jit(lambda s, g: s.apply_gradients(grads=g))
step = train_step
print("param shapes:", jax.tree_util.tree_map(lambda x: x.shape, state.params))


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
    print(f"{name:28s} {statistics.median(ts):7.2f} ms  (min {min(ts):.2f})", flush=True)


timeit("forward, eval", fwd_eval, state.params, b)
timeit("forward, train (dropout)", fwd, state.params, b)
timeit("value_and_grad", vg, state.params, b)
timeit("optimizer update", upd, state, grads)


def run_steps(s, b):
    return step(s, b)


s = state
timeit("whole train_step", lambda b: step(state, b), b)
