"""The S epoch (train_epoch, the default step) against the same batches stepped directly, and
the loop's own host work with the step replaced by a no-op (issue 22, item 1).

    python epoch_host_work.py
    XLA_FLAGS=--xla_force_host_platform_device_count=2 python epoch_host_work.py  # 2 CPU devices

Wall-clock seconds of whole epochs over the 25,000 IMDB training reviews, encoded as
train_speed.py encodes them (the 20,000-word vocabulary, S's max length 100, 4 length buckets).
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import jax
import jax.numpy as jnp

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import train_speed  # noqa: E402

from seqclf.data.batching import batches, num_batches, pad_batch  # noqa: E402
from seqclf.data.preprocessing import TextConfig  # noqa: E402
from seqclf.training import TrainConfig, create_train_state, train_epoch  # noqa: E402
from seqclf.training import step as steps  # noqa: E402
from seqclf.training.evaluation import config_batches  # noqa: E402

S = train_speed.CONFIGS["S"]
with tempfile.TemporaryDirectory() as tmp:
    args = argparse.Namespace(limit=0, data_dir=str(train_speed.SHARED), configs=["S"])
    data = train_speed.load_data(train_speed.prepare_data(args, Path(tmp))["S"])
ids = [r[:n] for r, n in zip(data["train_tokens"], data["train_lengths"], strict=True)]
labels = data["train_labels"]
text = TextConfig(vocab_size=train_speed.VOCAB, max_len=S.max_len, num_buckets=4)
config = TrainConfig(epochs=3, batch_size=S.batch, seed=0)
example = next(batches(ids[:2], None, 2, max_len=text.max_len, buckets=text.buckets))
total = 3 * num_batches(len(ids), S.batch)
state = create_train_state(train_speed.seqclf_model(S), config, total, example)
print("devices:", jax.devices(), "buckets:", text.buckets)


def timed(label, run, *args):
    start = time.perf_counter()
    out = run(*args)
    jax.block_until_ready(out)
    print(f"{label}: {time.perf_counter() - start:.2f} s", flush=True)
    return out


def epoch_of(state, epoch):
    return train_epoch(state, ids, labels, config, text, epoch, progress=False)[0]


for epoch in range(2):
    state = timed(f"train_epoch {epoch}", epoch_of, state, epoch)
premade = []
for batch in config_batches(ids, labels, config, text, shuffle=True, seed=0, epoch=2):
    padded, _ = pad_batch(batch, config.batch_size)
    premade.append({k: padded[k] for k in steps.TRAIN_KEYS})
on_device = jax.block_until_ready([jax.device_put(b) for b in premade])


def step_through(batch_list):
    global state
    for b in batch_list:
        state, metrics = steps.train_step_in_place(state, b)
    return metrics


for _ in range(2):
    timed("the same steps over batches already on the device", lambda: step_through(on_device))
    timed("the same steps over premade host batches", lambda: step_through(premade))
state = timed("train_epoch 2", epoch_of, state, 2)
zero = jnp.zeros(2)
steps.train_step_in_place = lambda s, b: (s, zero)  # the loop's own work only
steps.caught_up_in_place = lambda s: s
for _ in range(3):
    timed("train_epoch with the step replaced by a no-op", epoch_of, state, 2)
