"""The default S train step against the recurrent layers' scan unroll (issue 22, item 1).

    python step_unroll.py 1,2,4,8,25

One fixed (30, 100) batch (step_parts.py's of 2026-12-04), ``train_step_in_place`` with the state
donated; every unroll's state is stepped in turn, 50 steps a block, median of 9 blocks, in ms.
After the pooling the LSTM runs 24 steps, so 25 unrolls it fully.
"""

import statistics
import sys
from pathlib import Path

import jax
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common  # noqa: E402
import train_speed  # noqa: E402  (puts the checkout on sys.path too)

import seqclf  # noqa: E402
from seqclf.training import TrainConfig, create_train_state  # noqa: E402
from seqclf.training.step import TRAIN_KEYS, train_step_in_place  # noqa: E402

S = train_speed.CONFIGS["S"]
B, T = S.batch, S.max_len
rng = np.random.default_rng(0)
batch = {
    "tokens": np.minimum(rng.zipf(1.2, (B, T)), train_speed.VOCAB - 1).astype(np.int32),
    "lengths": np.full(B, T, np.int32),
    "labels": rng.integers(0, 2, B).astype(np.int32),
    "weights": np.ones(B, np.float32),
}
example = {k: batch[k][:2] for k in ("tokens", "lengths")}
device_batch = {k: jax.device_put(batch[k]) for k in TRAIN_KEYS}


def model(unroll):
    return seqclf.build_classifier(
        seqclf.presets.CLASSIC,
        vocab_size=train_speed.VOCAB,
        embed_dim=train_speed.EMBED,
        embed_dropout=train_speed.EMBED_DROPOUT,
        conv_filters=(train_speed.FILTERS,),
        conv_kernel_size=train_speed.KERNEL,
        pool_size=train_speed.POOL,
        hidden_size=S.hidden,
        unroll=unroll,
    )


states = {}
for u in map(int, sys.argv[1].split(",")):
    config = TrainConfig(epochs=2, batch_size=B, seed=0)
    states[u] = create_train_state(model(u), config, 10000, example)
    states[u], metrics = train_step_in_place(states[u], device_batch)
    jax.block_until_ready(metrics)


def stepper(u):
    def step():
        states[u], metrics = train_step_in_place(states[u], device_batch)
        return metrics

    return step


times = common.block_ms({u: stepper(u) for u in states}, 50, 9, jax.block_until_ready)
for u, t in times.items():
    print(f"unroll {u:3d}: {statistics.median(t):6.2f} ms a step (min {min(t):.2f})")
