"""Per-step time of the S config's compiled train step (fixed batch), old or new seqclf."""

import json
import sys
import time

import jax
import numpy as np

import seqclf

try:
    from seqclf.training import TrainConfig, create_train_state
    from seqclf.training.step import TRAIN_KEYS, train_step

    new = True
except ImportError:
    from seqclf.train import TRAIN_KEYS, TrainConfig, create_train_state, train_step

    new = False
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
kw = dict(epochs=2, batch_size=30, seed=0)
if not new:
    kw.update(max_len=100, max_words=20000)
config = TrainConfig(**kw)
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
for _ in range(20):
    state, v = train_step(state, b)
jax.block_until_ready(v)
blocks = []
for _ in range(int(sys.argv[2])):
    t = time.perf_counter()
    for _ in range(200):
        state, v = train_step(state, b)
    jax.block_until_ready((state.params, v))
    blocks.append((time.perf_counter() - t) / 200 * 1000)
print(json.dumps({"version": sys.argv[1], "ms_per_step": [round(x, 3) for x in blocks]}))
