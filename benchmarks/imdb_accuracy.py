"""IMDB test accuracy and wall time of named classifier presets (issue target: >= 0.90 in 15 min).

Each preset trains from scratch on the train split (10 % held out for validation and early stopping;
no pretrained embeddings), then the best checkpoint by validation accuracy is evaluated once on the
test split. One CSV row per preset: ``preset,device,epochs_run,train_seconds,total_seconds,
val_accuracy,test_accuracy,date``.

    python benchmarks/imdb_accuracy.py --presets default            # the examples/imdb.py model
    python benchmarks/imdb_accuracy.py --presets keras-classic,default --out benchmarks/results
    # Without tensorflow-datasets (e.g. on a GPU machine): JSON Lines exported by --export
    python benchmarks/imdb_accuracy.py --export DIR                  # writes DIR/{train,test}.jsonl
    python benchmarks/imdb_accuracy.py --train-file DIR/train.jsonl --test-file DIR/test.jsonl
"""

from __future__ import annotations

import argparse
import csv
import datetime
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

SHARED = HERE.parent.parent / "shared" / "tensorflow_datasets"

# name -> (model options, training options). "default" must equal examples/imdb.py's defaults.
PRESETS: dict[str, tuple[dict, dict]] = {
    # The classic Keras example: max length 100, LSTM 70, batch 30, 2 epochs.
    "keras-classic": ({"hidden_size": 70}, {"epochs": 2, "batch_size": 30, "max_len": 100}),
    "default": ({}, {}),  # examples/imdb.py: the default recipe, nothing given
    "lstm128-last": (
        {"hidden_size": 128},
        {"epochs": 3, "batch_size": 64, "max_len": 400, "max_words": 20000},
    ),
    "max": (
        {"hidden_size": 128, "reduce": "max", "embed_dropout": 0.4, "dropout": 0.3},
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "bi-max": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "max-bf16": (
        {
            "hidden_size": 128,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
            "dtype": "bfloat16",
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "max-conv128k3": (
        {
            "hidden_size": 128,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
            "conv_filters": (128,),
            "conv_kernel_size": 3,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "max-lr1e-3": (
        {"hidden_size": 128, "reduce": "max", "embed_dropout": 0.4, "dropout": 0.3},
        {"epochs": 3, "batch_size": 32, "max_len": 500, "max_words": 30000, "learning_rate": 1e-3},
    ),
    "max-vocab50k-wd": (
        {"hidden_size": 128, "reduce": "max", "embed_dropout": 0.5, "dropout": 0.3},
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 50000, "weight_decay": 1e-4},
    ),
    "bi-max-e2": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
        },
        {"epochs": 2, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "bi-max-len800-d5": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.5,
            "dropout": 0.5,
            "embed_dim": 64,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 800, "max_words": 30000},
    ),
    "bi-mean": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "mean",
            "embed_dropout": 0.4,
            "dropout": 0.3,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "bi-max-pool2": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
            "pool_size": 2,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    # bi-max plus a fastText head (word + hashed-bigram embeddings) with its own loss.
    "bi-max-ngram18x32": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
            "ngram_buckets": 2**18,
            "ngram_dim": 32,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "bi-max-ngram20x32": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
            "ngram_buckets": 2**20,
            "ngram_dim": 32,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    "bi-max-worddrop": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.3,
            "embed_dropout_mode": "word",
            "dropout": 0.3,
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
    # Seconds, not a measurement: what tests/test_benchmarks_smoke.py runs on a few texts.
    "smoke": (
        {
            "embed_dim": 8,
            "conv_filters": (4,),
            "hidden_size": 4,
            "ngram_buckets": 64,
            "ngram_dim": 4,
        },
        {"epochs": 1, "batch_size": 8, "max_len": 32, "max_words": 200},
    ),
    "noconv-bi-max": (
        {
            "hidden_size": 64,
            "bidirectional": True,
            "reduce": "max",
            "embed_dropout": 0.4,
            "dropout": 0.3,
            "conv_filters": (),
        },
        {"epochs": 3, "batch_size": 64, "max_len": 500, "max_words": 30000},
    ),
}


def _default_preset() -> tuple[dict, dict]:
    """examples/imdb.py's settings: the default recipe, no option given (all from the data)."""
    return {}, {}


def load_data(args: argparse.Namespace):
    import seqclf

    if args.train_file:
        return seqclf.read_table(args.train_file), seqclf.read_table(args.test_file)
    data_dir = args.data_dir or (str(SHARED) if SHARED.is_dir() else None)
    return (
        seqclf.read_tfds(split="train", data_dir=data_dir),
        seqclf.read_tfds(split="test", data_dir=data_dir),
    )


def export(directory: Path, args: argparse.Namespace) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, ds in zip(("train", "test"), load_data(args), strict=True):
        with open(directory / f"{name}.jsonl", "w") as f:
            for text, label in zip(ds.texts, ds.labels, strict=True):
                f.write(json.dumps({"text": text, "label": ds.classes[label]}) + "\n")
    print(f"wrote {directory}/train.jsonl and test.jsonl")


def head_accuracies(predictor, test) -> dict[str, float]:
    """Test accuracy of each head alone, for a model with several (``ngram_buckets``); else {}."""
    import jax
    import jax.numpy as jnp

    from seqclf.model import HEAD_LOGITS, build_classifier

    model = build_classifier(predictor.config)
    one = (jnp.ones((1, 4), jnp.int32), jnp.full((1,), 4, jnp.int32))
    _, sown = model.apply({"params": predictor._params}, *one, mutable=[HEAD_LOGITS])
    names = sorted(sown.get(HEAD_LOGITS, {}))
    if not names:
        return {}

    @jax.jit
    def per_head(params, tokens, lengths):  # (B, heads, C) probabilities
        _, sown = model.apply({"params": params}, tokens, lengths, mutable=[HEAD_LOGITS])
        return jnp.stack([jax.nn.softmax(sown[HEAD_LOGITS][k][0]) for k in names], 1)

    forward, predictor._forward = predictor._forward, per_head
    try:
        probs = predictor.predict_proba(test.texts)  # (N, heads, C)
    finally:
        predictor._forward = forward
    hits = probs.argmax(-1) == test.labels[:, None]
    return {name: round(float(hits[:, i].mean()), 4) for i, name in enumerate(names)}


def apply_overrides(
    model: dict, training: dict, overrides: Sequence[str]
) -> tuple[dict, dict, str]:
    """``["ngram_learning_rate=0.01", ...]`` -> updated copies and a suffix for the preset name.

    A key goes to the model options if ``ClassifierConfig`` has it, else to the training
    settings (``TrainConfig`` or ``TextConfig`` fields, see ``split_settings``); the value is
    read as a Python literal (``4``, ``0.01``, ``'word'``, ``(64, 64)``).
    """
    import ast
    import dataclasses

    import seqclf

    model, training = dict(model), dict(training)
    model_keys = {f.name for f in dataclasses.fields(seqclf.ClassifierConfig)}
    train_keys = {f.name for f in dataclasses.fields(seqclf.TrainConfig)}
    train_keys |= {f.name for f in dataclasses.fields(seqclf.TextConfig)} | {"max_words"}
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or key not in model_keys | train_keys:
            raise SystemExit(f"--set {item!r}: expected FIELD=VALUE with a config field as FIELD")
        try:
            value = ast.literal_eval(text)
        except (ValueError, SyntaxError):
            value = text
        (model if key in model_keys else training)[key] = value
    return model, training, "".join(f"+{item}" for item in overrides)


def split_settings(training: dict) -> tuple:
    """A preset's training settings as ``(TextConfig, TrainConfig)``: the presets name the text
    settings as ``TrainConfig`` held them before ``TextConfig`` (``max_words`` for
    ``vocab_size``); ``vocab_size`` itself is accepted too."""
    import seqclf
    from seqclf.data.preprocessing import TRAIN_FIELDS

    training = dict(training)
    text = {k: training.pop(old) for k, old in TRAIN_FIELDS.items() if old in training}
    text.update({k: training.pop(k) for k in ("tokenizer", "vocab_size") if k in training})
    return seqclf.TextConfig(**text), seqclf.TrainConfig(**training)


def run_preset(
    name: str, train, test, overrides: Sequence[str] = (), keep: Path | None = None
) -> dict:
    import jax

    import seqclf

    model, training = _default_preset() if name == "default" else PRESETS[name]
    model, training, suffix = apply_overrides(model, training, overrides)
    started = time.perf_counter()
    kept = nullcontext(str(keep / (name + suffix))) if keep else None
    text_config, train_config = split_settings(training)
    with kept or tempfile.TemporaryDirectory() as out:
        run = seqclf.train_text_classifier(
            train,
            out,
            model_options=model,
            text_config=text_config,
            train_config=train_config,
            progress=False,
        )
        train_seconds = time.perf_counter() - started
        predictor = seqclf.load(out)
        metrics = predictor.evaluate(test)
        heads = head_accuracies(predictor, test)
    best = max(run.fit.history, key=lambda h: h["val_accuracy"])
    return {
        "preset": name + suffix,
        "device": jax.devices()[0].device_kind,
        "epochs_run": len(run.fit.history),
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "val_accuracy": best["val_accuracy"],
        "test_accuracy": round(metrics["accuracy"], 4),
        "head_test_accuracy": json.dumps(heads, sort_keys=True),
        "date": datetime.date.today().isoformat(),
        "model": json.dumps(model, sort_keys=True),
        "training": json.dumps(training, sort_keys=True),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--presets", default="default", help=f"comma-separated, from {sorted(PRESETS)}"
    )
    parser.add_argument(
        "--keep", type=Path, help="keep each preset's checkpoint directory under this folder"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a model or training option of every preset (repeatable)",
    )
    parser.add_argument("--data-dir", help="TFDS data_dir (default: ../shared/tensorflow_datasets)")
    parser.add_argument("--train-file", help="JSON Lines/CSV with text,label (instead of TFDS)")
    parser.add_argument("--test-file")
    parser.add_argument("--export", type=Path, help="write train/test JSON Lines here and stop")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument(
        "--budget", type=float, default=1e9, help="seconds: start no new preset after this"
    )
    args = parser.parse_args(argv)
    from seqclf.cli import quiet_libraries

    quiet_libraries()
    if args.export:
        export(args.export, args)
        return 0
    started = time.perf_counter()
    train, test = load_data(args)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / "imdb_accuracy.csv"
    rows = []
    for name in args.presets.split(","):
        left = args.budget - (time.perf_counter() - started)
        if left <= 0:
            print(f"budget spent; skipping {name}")
            continue
        row = run_preset(name, train, test, args.set, args.keep)
        rows.append(row)
        print(json.dumps(row), flush=True)
        new = not path.exists()
        with open(path, "a", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=list(row))
            if new:
                writer.writeheader()
            writer.writerow(row)
    print(
        "\n| preset | device | epochs | train s | val acc | test acc |\n|---|---|---|---|---|---|"
    )
    for r in rows:
        print(
            f"| {r['preset']} | {r['device']} | {r['epochs_run']} | {r['train_seconds']} | "
            f"{r['val_accuracy']:.4f} | {r['test_accuracy']:.4f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
