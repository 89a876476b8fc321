"""Train, test and predict: the CNN-LSTM sentiment classifier on IMDB, end to end.

    python examples/imdb.py                       # train, report validation/test accuracy, predict
    python examples/imdb.py --epochs 1 --output-dir runs/quick
    python examples/imdb.py --output-dir runs/imdb --resume   # continue an interrupted run

The data comes from tensorflow-datasets (``imdb_reviews``): ``--data-dir``, else
``$TFDS_DATA_DIR``, else a prepared copy in ``../shared/tensorflow_datasets`` beside this
repository, else TFDS's default directory, where TFDS prepares it (that needs internet and
``pip install 'seqclf[prepare]'``).

Validation is 10 % of the training split; the test split is only read for the final report.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from seqclf.cli import (
    EXIT_INTERRUPTED,
    add_distributed_options,
    add_model_options,
    add_text_options,
    add_training_options,
    defaults_from_recipe,
    join_cluster,
    model_options_from,
    quiet_libraries,
    resume_command,
    text_config_from,
    train_config_from,
)
from seqclf.data.preprocessing import TextConfig
from seqclf.model import ClassifierConfig
from seqclf.training import FINISHED, TrainConfig

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA_DIR = REPO.parent / "shared" / "tensorflow_datasets"

# This example uses seqclf's default recipe, exactly what `seqclf train --train imdb_reviews`
# gives: the CNN-LSTM (Embedding 128, Conv1D 64x5, MaxPooling1D, bidirectional LSTM 64 max-pooled
# over time) with an NBSVM head beside it, stacked on validation, every data-dependent setting
# (max_len, vocabulary, batch size, epochs, pool size, n-gram buckets) resolved from the
# training split by seqclf.recipe. Any model or training option can still be given on the
# command line (--help).

SAMPLES = [
    (
        "positive",
        "One of the best films I have seen in years. The acting is superb, the story is "
        "moving and beautifully told, and I would happily watch it again.",
    ),
    (
        "negative",
        "A complete waste of time. The plot makes no sense, the dialogue is awful and "
        "the acting is so bad that I walked out before the end.",
    ),
    (
        "mixed",
        "The photography is gorgeous and the lead actress does her best, but the script is "
        "thin and the second half drags on far too long.",
    ),
]


def default_data_dir() -> str | None:
    import os

    if os.environ.get("TFDS_DATA_DIR"):
        return os.environ["TFDS_DATA_DIR"]
    if (SHARED_DATA_DIR / "imdb_reviews").is_dir():
        return str(SHARED_DATA_DIR)
    return None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--data-dir", default=default_data_dir(), help="TFDS data_dir holding imdb_reviews"
    )
    parser.add_argument("--dataset", default="imdb_reviews", help="TFDS dataset name")
    parser.add_argument(
        "--output-dir",
        default="runs/imdb",
        help="checkpoints, metrics.jsonl, training_curves.png, results.json",
    )
    parser.add_argument("--train-split", default="train", help="TFDS split to train on")
    parser.add_argument("--test-split", default="test", help="TFDS split for the final report")
    add_model_options(parser, ClassifierConfig())
    add_text_options(parser, TextConfig())
    add_training_options(parser, TrainConfig())
    defaults_from_recipe(parser)
    add_distributed_options(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    quiet_libraries()
    join_cluster(args)  # several machines: before anything touches JAX devices
    from seqclf.data.sources import read_tfds
    from seqclf.experiment import train_text_classifier
    from seqclf.loading import load

    started = time.perf_counter()
    print(f"Reading {args.dataset} ({args.train_split}) from {args.data_dir or 'TFDS default'}")
    train = read_tfds(args.dataset, split=args.train_split, data_dir=args.data_dir)
    run = train_text_classifier(
        train,
        args.output_dir,
        model_options=model_options_from(args),
        text_config=text_config_from(args),
        train_config=train_config_from(args),
        resume=args.resume,
        progress=not args.no_progress,
        resume_hint=resume_command("python examples/imdb.py", argv),
    )
    if run.fit.stopped_by not in FINISHED:
        return EXIT_INTERRUPTED
    train_seconds = time.perf_counter() - started

    predictor = load(args.output_dir)  # the best checkpoint, as a fresh process would see it
    test = read_tfds(args.dataset, split=args.test_split, data_dir=args.data_dir)
    test_metrics = predictor.evaluate(test)
    # The last of tied epochs: the one the checkpoint store keeps, and load() uses.
    history = list(reversed(run.fit.history))
    best = max(history, key=lambda h: h["val_accuracy"]) if history else {}

    print("\n| split | examples | accuracy | loss |\n|---|---|---|---|")
    print(
        f"| validation (best epoch {best.get('epoch')}) | {run.num_valid} | "
        f"{best.get('val_accuracy', float('nan')):.4f} | {best.get('val_loss', float('nan')):.4f} |"
    )
    print(f"| test | {len(test)} | {test_metrics['accuracy']:.4f} | {test_metrics['loss']:.4f} |")

    probabilities = predictor.predict_proba([text for _, text in SAMPLES])
    print("\n| review | prediction | " + " | ".join(f"p({c})" for c in predictor.classes) + " |")
    print("|---|---|" + "---|" * len(predictor.classes))
    for (kind, text), p in zip(SAMPLES, probabilities, strict=True):
        label = predictor.classes[int(p.argmax())]
        cells = " | ".join(f"{x:.3f}" for x in p)
        print(f"| {kind}: {text[:50]}... | {label} | {cells} |")

    results = {
        "validation": {k: best.get(f"val_{k}") for k in ("accuracy", "loss")},
        "test": test_metrics,
        "epochs_run": len(run.fit.history),
        "stopped_by": run.fit.stopped_by,
        "train_seconds": round(train_seconds, 1),
        "total_seconds": round(time.perf_counter() - started, 1),
        "model_config": run.model_config.to_dict(),
        "history": run.fit.history,
        "samples": {
            kind: dict(zip(predictor.classes, map(float, p), strict=True))
            for (kind, _), p in zip(SAMPLES, probabilities, strict=True)
        },
    }
    (Path(args.output_dir) / "results.json").write_text(json.dumps(results, indent=2))
    print(
        f"\nCheckpoint, metrics and curves in {args.output_dir} "
        f"({results['total_seconds']:.0f} s in all). Load it with "
        f"seqclf.load({str(args.output_dir)!r})."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
