"""Epoch time of the whole IMDB classifier: seqclf against the same model in Keras 3, Flax, PyTorch.

The model is the classic Keras CNN-LSTM: Embedding 128 → Dropout 0.25 → Conv1D 64×5 relu ('valid')
→ MaxPooling1D 4 → LSTM H (last state) → Dense 2, trained with Adam on softmax cross-entropy.

    config  max length  LSTM H  batch   (vocabulary 20,000 for both)
    S          100        70      30    the Keras example
    L          400       128      64

Implementations, each run in its own subprocess (its own thread pools and settings):

    seqclf        seqclf.build_classifier + seqclf.train (create_train_state, train_epoch, whose
                  train_step is the library's), TrainConfig defaults otherwise: length bucketing
                  (num_buckets=4), Adam(W) with warm-up + cosine decay and clip-norm 1.0
    seqclf-fixed  the same with num_buckets=1: every batch padded to the max length
    seqclf-dense  the same as seqclf with lazy_embedding=False: dense Adam over the whole
                  embedding table at every step (seqclf's default until 2026-12-04)
    seqclf-lazy   the same as seqclf with lazy_embedding=True: Adam updates only the embedding
                  rows of each batch's words, the others catching up later (seqclf.lazy_embedding;
                  since 2026-12-04 the default, so the same as seqclf)
    seqclf-bf16   the same as seqclf with dtype="bfloat16" (bfloat16 matmuls, float32 state and
                  master weights); only when asked for with --impls
    keras         Keras 3 Sequential on the JAX backend, model.fit / model.evaluate
    flax          flax.linen: Embed, Dropout, Conv 'VALID', max_pool, RNN(OptimizedLSTMCell) with
                  seq_lengths, Dense; optax.adam; a jitted train step
    torch         torch.nn: Embedding, Dropout, Conv1d, MaxPool1d, LSTM(batch_first), Linear; Adam

Every implementation gets the same token ids: the train texts' 20,000-word ``seqclf.Vocabulary``,
truncated at the start ('pre', like Keras ``pad_sequences``) to the config's max length, written
once to an .npz. seqclf and Flax read them padded at the end with lengths; Keras and PyTorch,
which take the last LSTM step, padded at the start as ``pad_sequences`` does. Each implementation
trains ``--epochs`` epochs over the training reviews (the first includes compilation; the last is
the one reported) and is then evaluated once on the test reviews.

    python benchmarks/train_speed.py                          # the full measurement: S and L
    python benchmarks/train_speed.py --limit 2000 --epochs 1  # a quick check of every impl
    python benchmarks/train_speed.py --configs L --impls seqclf,torch

Writes ``train_speed.csv`` (impl,config,device,epoch,seconds,test_acc; one row per epoch, test_acc
on the last), ``train_speed.md`` and ``train_speed.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import csv
import datetime
import importlib.metadata
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (also puts the repo root on sys.path)

VOCAB = 20000
EMBED = 128
EMBED_DROPOUT = 0.25
FILTERS = 64
KERNEL = 5
POOL = 4
LEARNING_RATE = 1e-3  # Adam's (and Keras') default, for the peers
SEED = 0


@dataclass(frozen=True)
class Config:
    max_len: int
    hidden: int
    batch: int


CONFIGS = {
    "S": Config(max_len=100, hidden=70, batch=30),  # the Keras IMDB CNN-LSTM example
    "L": Config(max_len=400, hidden=128, batch=64),
}
OURS = ("seqclf", "seqclf-fixed", "seqclf-dense", "seqclf-lazy", "seqclf-bf16")
IMPLS = (*OURS, "keras", "flax", "torch")
PACKAGES = {
    "seqclf": ["seqclf"],
    "seqclf-fixed": ["seqclf"],
    "seqclf-dense": ["seqclf"],
    "seqclf-lazy": ["seqclf"],
    "seqclf-bf16": ["seqclf"],
    "keras": ["keras"],
    "flax": ["flax", "optax"],
    "torch": ["torch"],
}
COLUMNS = ["impl", "config", "device", "epoch", "seconds", "test_acc"]
# The targets: (config, peer, the largest seqclf/peer epoch-time ratio that meets it).
TARGETS = [("L", "keras", 0.5), ("L", "torch", 0.8), ("S", "keras", 0.6)]
SHARED = common.REPO.parent / "shared" / "tensorflow_datasets"


# ---------------------------------------------------------------------------------------------
# Data: encoded once with seqclf, written to an .npz per config that every worker loads.
# ---------------------------------------------------------------------------------------------


def pad_post(ids: list[np.ndarray], max_len: int) -> tuple[np.ndarray, np.ndarray]:
    """Token ids truncated 'pre' (the end kept) to ``max_len``, padded with 0 at the end.

    Returns:
      ``(tokens int32 (N, max_len), lengths int32 (N,))``.
    """
    tokens = np.zeros((len(ids), max_len), np.int32)
    lengths = np.zeros(len(ids), np.int32)
    for i, row in enumerate(ids):
        row = row[-max_len:]
        tokens[i, : len(row)] = row
        lengths[i] = len(row)
    return tokens, lengths


def pad_pre(tokens: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """End-padded rows moved right so the padding comes first (Keras ``pad_sequences``' default)."""
    n, t = tokens.shape
    src = np.arange(t)[None, :] - (t - lengths)[:, None]  # column of tokens each position takes
    out = np.take_along_axis(tokens, np.clip(src, 0, t - 1), axis=1)
    return np.where(src >= 0, out, 0).astype(np.int32)


def prepare_data(args: argparse.Namespace, directory: Path) -> dict[str, Path]:
    """Loads IMDB, builds the vocabulary, writes ``data_<config>.npz``; returns config -> path."""
    import seqclf

    cut = f"[:{args.limit}]" if args.limit else ""
    started = time.perf_counter()
    train = seqclf.read_tfds(split="train" + cut, data_dir=args.data_dir)
    test = seqclf.read_tfds(split="test" + cut, data_dir=args.data_dir)
    # Words only, as the classic Keras IMDB example (and every timing recorded before the
    # punctuation tokenizer became seqclf's default) reads the reviews.
    vocab = seqclf.Vocabulary.build(train.texts, vocab_size=VOCAB, tokenizer="words")
    train_ids, test_ids = vocab.encode_batch(train.texts), vocab.encode_batch(test.texts)
    paths = {}
    for name in args.configs:
        cfg = CONFIGS[name]
        arrays = {}
        for split, ids, labels in (
            ("train", train_ids, train.labels),
            ("test", test_ids, test.labels),
        ):
            arrays[f"{split}_tokens"], arrays[f"{split}_lengths"] = pad_post(ids, cfg.max_len)
            arrays[f"{split}_labels"] = np.asarray(labels, np.int32)
        paths[name] = directory / f"data_{name}.npz"
        np.savez(paths[name], **arrays)
    print(
        f"data: {len(train)} train / {len(test)} test reviews, vocabulary {len(vocab)}, "
        f"encoded in {time.perf_counter() - started:.1f} s",
        flush=True,
    )
    return paths


def load_data(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


# ---------------------------------------------------------------------------------------------
# Workers: each trains one implementation on one config and returns
# {"device", "seconds": [per epoch], "test_acc", "note"}.
# ---------------------------------------------------------------------------------------------


def seqclf_model(cfg: Config, dtype: str = "float32"):
    """seqclf's classifier at a config: the Keras IMDB CNN-LSTM, layer for layer."""
    import seqclf

    return seqclf.build_classifier(
        seqclf.presets.CLASSIC,
        vocab_size=VOCAB,
        embed_dim=EMBED,
        embed_dropout=EMBED_DROPOUT,
        conv_filters=(FILTERS,),
        conv_kernel_size=KERNEL,
        pool_size=POOL,
        hidden_size=cfg.hidden,
        dtype=dtype,
    )


def run_seqclf(
    data: dict,
    cfg: Config,
    epochs: int,
    fixed: bool,
    lazy: bool | None = None,
    dtype: str = "float32",
) -> dict:
    import jax

    from seqclf.data.batching import batches, num_batches
    from seqclf.data.preprocessing import TextConfig
    from seqclf.training import TrainConfig, create_train_state, evaluate, train_epoch

    model = seqclf_model(cfg, dtype)
    # 4 buckets: seqclf's default before it was data-driven.
    text = TextConfig(vocab_size=VOCAB, max_len=cfg.max_len, num_buckets=1 if fixed else 4)
    config = TrainConfig(epochs=epochs, batch_size=cfg.batch, seed=SEED, lazy_embedding=lazy)

    def ids(split: str) -> list[np.ndarray]:
        return [
            r[:n] for r, n in zip(data[f"{split}_tokens"], data[f"{split}_lengths"], strict=True)
        ]

    train_ids, test_ids = ids("train"), ids("test")
    labels = data["train_labels"]
    example = next(batches(train_ids[:2], None, 2, max_len=text.max_len, buckets=text.buckets))
    steps = epochs * num_batches(len(train_ids), config.batch_size)
    state = create_train_state(model, config, steps, example)
    seconds = []
    for epoch in range(epochs):
        start = time.perf_counter()
        state, _, _ = train_epoch(state, train_ids, labels, config, text, epoch, progress=False)
        jax.block_until_ready(state.params)
        seconds.append(time.perf_counter() - start)
    metrics = evaluate(state, test_ids, data["test_labels"], config, text, progress=False)
    return {
        "device": jax.devices()[0].device_kind,
        "seconds": seconds,
        "test_acc": metrics["accuracy"],
        "note": f"num_buckets={text.num_buckets}, padded lengths {text.buckets}",
    }


def run_keras(data: dict, cfg: Config, epochs: int) -> dict:
    os.environ["KERAS_BACKEND"] = "jax"  # before keras is imported
    import jax
    import keras
    from keras import layers

    keras.utils.set_random_seed(SEED)
    model = keras.Sequential(
        [
            keras.Input((cfg.max_len,), dtype="int32"),
            layers.Embedding(VOCAB, EMBED),
            layers.Dropout(EMBED_DROPOUT),
            layers.Conv1D(FILTERS, KERNEL, padding="valid", activation="relu", strides=1),
            layers.MaxPooling1D(pool_size=POOL),
            layers.LSTM(cfg.hidden),
            layers.Dense(2),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(LEARNING_RATE),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )

    class EpochTimer(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.seconds: list[float] = []

        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):  # logs are fetched: the device is done
            self.seconds.append(time.perf_counter() - self.start)

    timer = EpochTimer()
    x_train = pad_pre(data["train_tokens"], data["train_lengths"])
    x_test = pad_pre(data["test_tokens"], data["test_lengths"])
    model.fit(
        x_train,
        data["train_labels"],
        batch_size=cfg.batch,
        epochs=epochs,
        shuffle=True,
        verbose=0,
        callbacks=[timer],
    )
    _, acc = model.evaluate(x_test, data["test_labels"], batch_size=cfg.batch, verbose=0)
    return {
        "device": jax.devices()[0].device_kind,
        "seconds": timer.seconds,
        "test_acc": float(acc),
        "note": f"keras {keras.__version__} on {keras.backend.backend()}, padded at the start",
    }


def run_flax(data: dict, cfg: Config, epochs: int) -> dict:
    import flax.linen as nn
    import jax
    import jax.numpy as jnp
    import optax
    from flax.training import train_state

    class Classifier(nn.Module):
        hidden: int

        @nn.compact
        def __call__(self, tokens, lengths, train: bool = False):
            x = nn.Embed(VOCAB, EMBED)(tokens)
            x = nn.Dropout(EMBED_DROPOUT, deterministic=not train)(x)
            x = nn.relu(nn.Conv(FILTERS, (KERNEL,), padding="VALID")(x))
            x = nn.max_pool(x, (POOL,), strides=(POOL,))
            lengths = jnp.maximum(lengths - KERNEL + 1, 0) // POOL  # valid steps left
            (_, h), _ = nn.RNN(nn.OptimizedLSTMCell(self.hidden), return_carry=True)(
                x, seq_lengths=lengths
            )
            return nn.Dense(2)(h)

    model = Classifier(cfg.hidden)
    tokens, lengths, labels = (data[f"train_{k}"] for k in ("tokens", "lengths", "labels"))
    init_key, dropout_key = jax.random.split(jax.random.PRNGKey(SEED))
    params = model.init(init_key, jnp.asarray(tokens[:2]), jnp.asarray(lengths[:2]))["params"]
    state = train_state.TrainState.create(
        apply_fn=model.apply, params=params, tx=optax.adam(LEARNING_RATE)
    )
    state = state.replace(step=jnp.zeros((), jnp.int32))  # as train_step returns it: one compile

    @jax.jit
    def train_step(state, tokens, lengths, labels):
        key = jax.random.fold_in(dropout_key, state.step)

        def loss_fn(params):
            logits = state.apply_fn(
                {"params": params}, tokens, lengths, train=True, rngs={"dropout": key}
            )
            return optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()

        loss, grads = jax.value_and_grad(loss_fn)(state.params)
        return state.apply_gradients(grads=grads), loss

    @jax.jit
    def predict(params, tokens, lengths):
        return jnp.argmax(model.apply({"params": params}, tokens, lengths), -1)

    rng = np.random.default_rng(SEED)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        order = rng.permutation(len(tokens))
        for lo in range(0, len(order), cfg.batch):
            rows = order[lo : lo + cfg.batch]
            state, loss = train_step(state, tokens[rows], lengths[rows], labels[rows])
        jax.block_until_ready(state.params)
        seconds.append(time.perf_counter() - start)
    hits = 0
    test = [data[f"test_{k}"] for k in ("tokens", "lengths", "labels")]
    for lo in range(0, len(test[0]), cfg.batch):
        pred = predict(state.params, test[0][lo : lo + cfg.batch], test[1][lo : lo + cfg.batch])
        hits += int(np.sum(np.asarray(pred) == test[2][lo : lo + cfg.batch]))
    return {
        "device": jax.devices()[0].device_kind,
        "seconds": seconds,
        "test_acc": hits / len(test[0]),
        "note": f"flax {importlib.metadata.version('flax')}, padded at the end, seq_lengths",
    }


def run_torch(data: dict, cfg: Config, epochs: int) -> dict:
    import copy

    import torch
    from torch import nn

    torch.manual_seed(SEED)
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")

    class Classifier(nn.Module):
        def __init__(self, hidden: int):
            super().__init__()
            self.embedding = nn.Embedding(VOCAB, EMBED)
            self.dropout = nn.Dropout(EMBED_DROPOUT)
            self.conv = nn.Conv1d(EMBED, FILTERS, KERNEL)
            self.pool = nn.MaxPool1d(POOL)
            self.lstm = nn.LSTM(FILTERS, hidden, batch_first=True)
            self.out = nn.Linear(hidden, 2)

        def forward(self, tokens):  # (B, T) padded at the start
            x = self.dropout(self.embedding(tokens)).transpose(1, 2)  # (B, E, T)
            x = self.pool(torch.relu(self.conv(x))).transpose(1, 2)  # (B, T', F)
            ys, _ = self.lstm(x)
            return self.out(ys[:, -1])

    model = Classifier(cfg.hidden).to(device)
    optimizer = torch.optim.Adam(model.parameters(), lr=LEARNING_RATE)
    loss_fn = nn.CrossEntropyLoss()
    x_train = torch.from_numpy(pad_pre(data["train_tokens"], data["train_lengths"])).long()
    y_train = torch.from_numpy(data["train_labels"]).long()

    def step(model, optimizer, rows):
        x, y = x_train[rows].to(device), y_train[rows].to(device)
        optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(model(x), y)
        loss.backward()
        optimizer.step()
        return loss

    def sync():
        if device.type == "cuda":
            torch.cuda.synchronize()

    threads = torch.get_num_threads()
    if device.type == "cpu":
        # On a shared machine OpenMP's spinning threads can make torch many times slower; take the
        # faster of one thread and all cores over a few steps of a throwaway copy (as rnn_speed).
        timed = []
        rows = torch.arange(min(cfg.batch, len(x_train)))
        for n in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(n)
            m = copy.deepcopy(model)
            opt = torch.optim.Adam(m.parameters(), lr=LEARNING_RATE)
            step(m, opt, rows)
            start = time.perf_counter()
            for _ in range(3):
                step(m, opt, rows)
            timed.append((time.perf_counter() - start, n))
        threads = min(timed)[1]
        torch.set_num_threads(threads)
    generator = torch.Generator().manual_seed(SEED)
    seconds = []
    for _ in range(epochs):
        model.train()
        start = time.perf_counter()
        order = torch.randperm(len(x_train), generator=generator)
        for lo in range(0, len(order), cfg.batch):
            step(model, optimizer, order[lo : lo + cfg.batch])
        sync()
        seconds.append(time.perf_counter() - start)
    model.eval()
    x_test = torch.from_numpy(pad_pre(data["test_tokens"], data["test_lengths"])).long()
    y_test = torch.from_numpy(data["test_labels"]).long()
    hits = 0
    with torch.no_grad():
        for lo in range(0, len(x_test), cfg.batch):
            pred = model(x_test[lo : lo + cfg.batch].to(device)).argmax(-1).cpu()
            hits += int((pred == y_test[lo : lo + cfg.batch]).sum())
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    return {
        "device": name,
        "seconds": seconds,
        "test_acc": hits / len(x_test),
        "note": f"torch {torch.__version__}, {threads} thread(s), padded at the start",
    }


def worker(args: argparse.Namespace) -> None:
    """Runs one implementation on one config (in a subprocess of ``main``), writes JSON."""
    data = load_data(args.data)
    cfg = CONFIGS[args.config]
    run = {
        "seqclf": lambda: run_seqclf(data, cfg, args.epochs, fixed=False),
        "seqclf-fixed": lambda: run_seqclf(data, cfg, args.epochs, fixed=True),
        "seqclf-dense": lambda: run_seqclf(data, cfg, args.epochs, fixed=False, lazy=False),
        "seqclf-lazy": lambda: run_seqclf(data, cfg, args.epochs, fixed=False, lazy=True),
        "seqclf-bf16": lambda: run_seqclf(data, cfg, args.epochs, fixed=False, dtype="bfloat16"),
        "keras": lambda: run_keras(data, cfg, args.epochs),
        "flax": lambda: run_flax(data, cfg, args.epochs),
        "torch": lambda: run_torch(data, cfg, args.epochs),
    }[args.worker]
    args.result.write_text(json.dumps(run()))


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def versions() -> dict[str, str]:
    out = common.versions()
    for name in ("optax", "keras"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def timed_epoch(results: dict) -> dict[tuple[str, str], float]:
    """(impl, config) -> seconds of the last epoch run."""
    return {key: r["seconds"][-1] for key, r in results.items()}


def summary_lines(results: dict, epochs: int) -> list[str]:
    """Markdown: epoch time and test accuracy per impl and config, ratios, targets met."""
    times = timed_epoch(results)
    configs = list(dict.fromkeys(c for _, c in results))
    impls = [i for i in IMPLS if any((i, c) in results for c in configs)]
    which = f"epoch {epochs}" + (" (includes compilation)" if epochs == 1 else "")
    lines = [
        f"## Seconds per epoch ({which}) and test accuracy",
        "",
        "| impl | " + " | ".join(f"{c} s | {c} test acc" for c in configs) + " |",
        "| --- |" + " ---: | ---: |" * len(configs),
    ]
    for impl in impls:
        cells = []
        for c in configs:
            r = results.get((impl, c))
            cells += [f"{r['seconds'][-1]:.1f}", f"{r['test_acc']:.4f}"] if r else ["", ""]
        lines.append(f"| {impl} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "## seqclf / peer epoch time",
        "",
        "| config | peer | peer s | " + " | ".join(f"{o} / peer" for o in OURS) + " |",
        "| --- | --- | ---: |" + " ---: |" * len(OURS),
    ]
    for c in configs:
        for peer in ("keras", "flax", "torch"):
            if (peer, c) not in times:
                continue
            ratios = [
                f"{times[(ours, c)] / times[(peer, c)]:.2f}x" if (ours, c) in times else ""
                for ours in OURS
            ]
            lines.append(f"| {c} | {peer} | {times[(peer, c)]:.1f} | " + " | ".join(ratios) + " |")
    if any(("seqclf-bf16", c) in times and ("seqclf", c) in times for c in configs):
        lines += ["", "## bfloat16: seqclf-bf16 / seqclf epoch time (goal: below 1.00x)", ""]
        for c in configs:
            if ("seqclf-bf16", c) in times and ("seqclf", c) in times:
                ratio = times[("seqclf-bf16", c)] / times[("seqclf", c)]
                lines.append(f"- {c}: {ratio:.2f}x")
    lines += [
        "",
        "## The issue's targets",
        "",
        "| target | " + " | ".join(f"{o} | met" for o in OURS) + " |",
        "| --- |" + " ---: | --- |" * len(OURS),
    ]
    for c, peer, goal in TARGETS:
        cells = []
        for ours in OURS:
            if (ours, c) in times and (peer, c) in times:
                ratio = times[(ours, c)] / times[(peer, c)]
                cells += [f"{ratio:.2f}x", "met" if ratio <= goal else "missed"]
            else:
                cells += ["", "not run"]
        lines.append(f"| {c}: ≤ {goal}x {peer}'s epoch time | " + " | ".join(cells) + " |")
    return lines


def write_csv(results: dict, path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        for (impl, config), r in results.items():
            for epoch, seconds in enumerate(r["seconds"], start=1):
                last = epoch == len(r["seconds"])
                acc = f"{r['test_acc']:.4f}" if last else ""
                writer.writerow([impl, config, r["device"], epoch, f"{seconds:.3f}", acc])


def write_markdown(results: dict, path: Path, header: list[str], epochs: int, notes) -> None:
    lines = ["# Whole-classifier training speed on IMDB", "", *header, ""]
    lines += summary_lines(results, epochs)
    lines += ["", "## Notes", ""]
    lines += [f"- {impl} {config}: {r['note']}" for (impl, config), r in results.items()]
    lines += [f"- {n}" for n in notes]
    path.write_text("\n".join(lines) + "\n")


def write_plot(results: dict, path: Path, title: str, epochs: int) -> None:
    """Grouped bars: seconds of the reported epoch, one group per config, one bar per impl."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    configs = list(dict.fromkeys(c for _, c in results))
    impls = [i for i in IMPLS if any((i, c) in results for c in configs)]
    width = max(8.0, 5.0 * len(configs))
    fig, axes = plt.subplots(1, len(configs), figsize=(width, 4.6), squeeze=False)
    for ax, c in zip(axes[0], configs, strict=True):
        names = [i for i in impls if (i, c) in results]
        values = [results[(i, c)]["seconds"][-1] for i in names]
        bars = ax.bar(names, values, color=[f"C{impls.index(i)}" for i in names])
        ax.bar_label(bars, fmt="%.1f", fontsize=8)
        cfg = CONFIGS[c]
        ax.set_title(f"{c}: length {cfg.max_len}, LSTM {cfg.hidden}, batch {cfg.batch}", fontsize=9)
        ax.set_ylabel(f"seconds, epoch {epochs}")
        ax.tick_params(axis="x", labelsize=8, rotation=20)
        ax.grid(True, axis="y", alpha=0.3)
    lines = [part for line in title.split("\n") for part in textwrap.wrap(line, int(15 * width))]
    fig.suptitle("\n".join(lines), fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--configs", default="S,L", help="comma-separated, from S,L")
    parser.add_argument(
        "--impls",
        default=",".join(i for i in IMPLS if i != "seqclf-bf16"),
        help="comma-separated subset (default: all but seqclf-bf16)",
    )
    parser.add_argument("--epochs", type=int, default=2, help="the last one is reported")
    parser.add_argument("--limit", type=int, default=0, help="first N train/test reviews (0: all)")
    parser.add_argument("--data-dir", default=str(SHARED), help="TFDS data_dir with imdb_reviews")
    parser.add_argument("--out", type=Path, default=common.REPO / "benchmarks" / "results")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="glibc keeps freed memory for reuse (seqclf.cpu_allocator.keep_freed_memory), "
        "in every worker",
    )
    # Internal: run one implementation in this process (main starts these).
    parser.add_argument("--worker", choices=IMPLS, help=argparse.SUPPRESS)
    parser.add_argument("--config", choices=sorted(CONFIGS), help=argparse.SUPPRESS)
    parser.add_argument("--data", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.configs = [c for c in args.configs.split(",") if c]
    args.impls = [i for i in args.impls.split(",") if i]
    for c in args.configs:
        if c not in CONFIGS:
            parser.error(f"unknown config {c!r}; choose from {sorted(CONFIGS)}")
    for i in args.impls:
        if i not in IMPLS:
            parser.error(f"unknown impl {i!r}; choose from {list(IMPLS)}")
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    return args


def main(argv: list[str] | None = None) -> dict:
    args = parse_args(argv)
    if args.worker:
        if args.keep_freed_memory:  # first, before any framework is imported
            common.keep_freed_memory_or_exit()
        worker(args)
        return {}
    notes = [
        "Same architecture everywhere, with two logits and softmax cross-entropy (the Keras "
        "example has one sigmoid output). Keras, Flax and PyTorch train with Adam at "
        f"{LEARNING_RATE:g}; seqclf with its TrainConfig defaults (Adam(W) with a warm-up + "
        "cosine schedule peaking at 2e-3, gradients clipped to norm 1.0: one extra global norm "
        "per step).",
        "Times are one wall-clock epoch each (data batching included), not medians; compare "
        "rows from the same run on an otherwise idle machine.",
    ]
    impls = []
    for impl in args.impls:
        missing = [p for p in PACKAGES[impl] if importlib.util.find_spec(p) is None]
        if missing:
            notes.append(f"{impl} skipped: {', '.join(missing)} not installed")
            print(notes[-1], flush=True)
        else:
            impls.append(impl)
    results: dict[tuple[str, str], dict] = {}
    script = str(Path(__file__).resolve())
    with tempfile.TemporaryDirectory(prefix="train_speed_") as tmp:
        paths = prepare_data(args, Path(tmp))
        for config in args.configs:
            for impl in impls:
                result = Path(tmp) / f"{impl}_{config}.json"
                cmd = [sys.executable, script, "--worker", impl, "--config", config]
                cmd += ["--data", str(paths[config]), "--epochs", str(args.epochs)]
                cmd += ["--keep-freed-memory"] if args.keep_freed_memory else []
                env = {**os.environ, "PYTHONUNBUFFERED": "1", "KERAS_BACKEND": "jax"}
                start = time.perf_counter()
                proc = subprocess.run([*cmd, "--result", str(result)], env=env)
                if proc.returncode != 0 or not result.exists():
                    notes.append(f"{impl} {config} failed (exit status {proc.returncode})")
                    print(notes[-1], flush=True)
                    continue
                results[(impl, config)] = r = json.loads(result.read_text())
                epochs = ", ".join(f"{s:.1f}" for s in r["seconds"])
                print(
                    f"{impl:13s} {config}  epochs {epochs} s  test acc {r['test_acc']:.4f}  "
                    f"({time.perf_counter() - start:.0f} s with start-up)",
                    flush=True,
                )
    args.out.mkdir(parents=True, exist_ok=True)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    devices = ", ".join(sorted({f"{i}: {r['device']}" for (i, _), r in results.items()}))
    date = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    libs = ", ".join(f"{k} {v}" for k, v in versions().items())
    stamp = f"{common.cpu_name()} (load average {load:.1f} at the end); {libs}; {date}"
    command = "python benchmarks/train_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    reviews = f"the first {args.limit}" if args.limit else "all 25,000"
    header = [
        f"Machine and versions: {stamp}",
        "",
        f"Devices: {devices or 'none ran'}",
        "",
        f"Command: `{command}`",
        "",
        f"{args.epochs} epoch(s) over {reviews} training reviews, then {reviews} test reviews. "
        "One run per implementation and config, each in its own process, one after another.",
    ]
    if args.limit:
        header += ["", f"**--limit {args.limit}: a smoke run, not a measurement.**"]
    write_csv(results, args.out / "train_speed.csv")
    write_markdown(results, args.out / "train_speed.md", header, args.epochs, notes)
    write_plot(results, args.out / "train_speed.png", f"{stamp}\n{command}", args.epochs)
    print(f"wrote {args.out}/train_speed.csv, .md, .png", flush=True)
    print("\n".join(summary_lines(results, args.epochs)), flush=True)
    return results


if __name__ == "__main__":
    main()
