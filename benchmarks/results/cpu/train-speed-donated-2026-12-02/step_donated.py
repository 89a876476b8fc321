"""Dense S step: train_step against train_step_in_place (state donated), alternating blocks."""

import json
import sys
import time

import jax
import numpy as np

import seqclf
from seqclf.training import TrainConfig, create_train_state
from seqclf.training.step import TRAIN_KEYS, train_step, train_step_in_place

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
config = TrainConfig(epochs=2, batch_size=30, seed=0, lazy_embedding=False)
rng = np.random.default_rng(0)
B, T = 30, 100
batch = {
    "tokens": rng.integers(2, 20000, (B, T)).astype(np.int32),
    "lengths": rng.integers(20, T + 1, B).astype(np.int32),
    "labels": rng.integers(0, 2, B).astype(np.int32),
    "weights": np.ones(B, np.float32),
}
b = {k: jax.device_put(batch[k]) for k in TRAIN_KEYS}
out = {}
states = {}
for name, fn in (("plain", train_step), ("donated", train_step_in_place)):
    s = create_train_state(model, config, 10000, {k: batch[k][:2] for k in ("tokens", "lengths")})
    for _ in range(20):
        s, v = fn(s, b)
    jax.block_until_ready(v)
    states[name] = s
    out[name] = []
for _ in range(int(sys.argv[1])):
    for name, fn in (("plain", train_step), ("donated", train_step_in_place)):
        s = states[name]
        t = time.perf_counter()
        for _ in range(100):
            s, v = fn(s, b)
        jax.block_until_ready((s.params, v))
        out[name].append(round((time.perf_counter() - t) / 100 * 1000, 3))
        states[name] = s
print(json.dumps(out))
print({k: sorted(v)[len(v) // 2] for k, v in out.items()})
