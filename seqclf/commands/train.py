"""``seqclf train``: read the data, train (``seqclf.experiment``), save, and evaluate --test."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from seqclf.cli_options import (
    add_data_options,
    add_distributed_options,
    add_model_options,
    add_text_options,
    add_training_options,
    defaults_from_recipe,
    join_cluster,
    model_options_from,
    text_config_from,
    train_config_from,
)
from seqclf.commands.common import (
    EXIT_INTERRUPTED,
    interrupted_message,
    read_labelled,
    resume_command,
)
from seqclf.data.preprocessing import TextConfig
from seqclf.model import ClassifierConfig
from seqclf.presets import PRESETS
from seqclf.training import FINISHED, TrainConfig


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("train", help="train a classifier on your data")
    p.add_argument(
        "--train",
        required=True,
        help="CSV/TSV/JSONL file, class-per-folder directory, or a TFDS dataset name",
    )
    p.add_argument("--valid", help="validation data (default: 10%% of --train)")
    p.add_argument(
        "--valid-fraction",
        type=float,
        default=0.1,
        help="share of --train held out when --valid is not given",
    )
    p.add_argument("--test", help="test data, evaluated once at the end with the best checkpoint")
    p.add_argument("--output-dir", required=True, help="checkpoints, metrics and curves go here")
    p.add_argument(
        "--preset",
        choices=sorted(PRESETS),
        default="default",
        help="the model the options apply to: seqclf's default (CNN-LSTM + NBSVM head, fitted "
        "to the data) or the classic Keras CNN-LSTM of the course (default: %(default)s)",
    )
    add_data_options(p)
    add_model_options(p, ClassifierConfig())
    add_text_options(p, TextConfig())
    add_training_options(p, TrainConfig())
    defaults_from_recipe(p)
    add_distributed_options(p)
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    join_cluster(args)  # before anything touches JAX devices
    from seqclf.distributed import is_primary
    from seqclf.training.callbacks.signals import exit_at_once, watch_signals

    message = interrupted_message("train", argv)
    # Outside the training loop nothing is being written that a stop could spoil: a signal ends
    # the process at once (a KeyboardInterrupt raised inside JAX could crash it instead).
    with watch_signals(lambda name, k: exit_at_once(message)):
        out = Path(args.output_dir)
        if out.is_dir() and is_primary():  # refused before the data is read, not after
            from seqclf.run_lock import run_lock

            with run_lock(out):
                return _train(args, argv, message)
        return _train(args, argv, message)


def _train(args: argparse.Namespace, argv: Sequence[str], message: str) -> int:
    from seqclf.experiment import train_text_classifier
    from seqclf.loading import load

    train = read_labelled(args.train, args, "train")
    valid = (
        read_labelled(args.valid, args, "validation", classes=train.classes) if args.valid else None
    )
    # Read (and its labels checked) before training, not after it.
    test = read_labelled(args.test, args, "test", classes=train.classes) if args.test else None
    run = train_text_classifier(
        train,
        args.output_dir,
        valid=valid,
        model_options=model_options_from(args),
        text_config=text_config_from(args),
        train_config=train_config_from(args),
        base_model=PRESETS[args.preset],
        valid_fraction=args.valid_fraction,
        resume=args.resume,
        progress=not args.no_progress,
        resume_hint=resume_command("seqclf", argv),
        exit_message=message,
    )
    if run.fit.stopped_by not in FINISHED:
        return EXIT_INTERRUPTED
    summary = {
        "output_dir": str(run.output_dir),
        "best_step": run.fit.best_step,
        "history": run.fit.history,
    }
    if test is not None:
        from seqclf.report import evaluation_report

        try:
            report = evaluation_report(load(args.output_dir), test)
        except (ValueError, OSError, RuntimeError) as err:
            raise RuntimeError(
                f"the model was saved to {run.output_dir} (best checkpoint: step "
                f"{run.fit.best_step}), but evaluating --test failed: {err}"
            ) from err
        summary["test"] = report.metrics
        print("test: " + ", ".join(f"{k} {v:.4f}" for k, v in summary["test"].items()))
        print(report.table())
    if run.fit.stopped_by != "already_finished":  # fit said so
        print(f"Saved to {run.output_dir} (best checkpoint: step {run.fit.best_step}).")
    return 0
