"""The ``seqclf`` command: ``seqclf train``, ``seqclf evaluate`` and ``seqclf predict``.

The option groups (model, training, data) are shared with ``examples/imdb.py``.
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import math
import shlex
import sys
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from seqclf.model import ClassifierConfig
from seqclf.presets import PRESETS
from seqclf.training import FINISHED, TrainConfig, TrainingDiverged

EXIT_INTERRUPTED = 130


def quiet_libraries() -> None:
    """orbax and absl log routine notices as warnings; a user of the command needs none of them."""
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def add_model_options(parser: argparse.ArgumentParser, defaults: ClassifierConfig) -> None:
    """--rnn, --hidden-size, ... (every ``ClassifierConfig`` field except vocab/classes)."""
    g = parser.add_argument_group("model")
    g.add_argument(
        "--rnn",
        choices=["rnn", "lstm", "gru"],
        default=defaults.rnn,
        help="recurrent layer kind (default: %(default)s)",
    )
    g.add_argument(
        "--hidden-size",
        type=int,
        default=defaults.hidden_size,
        help="recurrent units (default: %(default)s)",
    )
    g.add_argument(
        "--num-layers",
        type=int,
        default=defaults.num_layers,
        help="stacked recurrent layers (default: %(default)s)",
    )
    g.add_argument(
        "--bidirectional",
        action=argparse.BooleanOptionalAction,
        default=defaults.bidirectional,
        help="bidirectional recurrent layers",
    )
    g.add_argument(
        "--reduce",
        choices=["last", "max", "mean"],
        default=defaults.reduce,
        help="recurrent outputs → one vector (default: %(default)s)",
    )
    g.add_argument(
        "--embed-dim",
        type=int,
        default=defaults.embed_dim,
        help="embedding size (default: %(default)s)",
    )
    g.add_argument(
        "--embed-dropout",
        type=float,
        default=defaults.embed_dropout,
        help="dropout after the embedding (default: %(default)s)",
    )
    g.add_argument(
        "--embed-dropout-mode",
        choices=["element", "word", "channel"],
        default=defaults.embed_dropout_mode,
        help="what the embedding dropout drops: single numbers, whole words or whole channels "
        "(Keras' SpatialDropout1D) (default: %(default)s)",
    )
    g.add_argument(
        "--conv-filters",
        type=_int_list,
        default=defaults.conv_filters,
        help="filters per Conv1D block, comma-separated; '' for none (default: %(default)s)",
    )
    g.add_argument(
        "--conv-kernel-size",
        type=int,
        default=defaults.conv_kernel_size,
        help="Conv1D kernel size (default: %(default)s)",
    )
    g.add_argument(
        "--pool-size",
        type=int,
        default=defaults.pool_size,
        help="MaxPooling1D size after each conv block (default: %(default)s)",
    )
    g.add_argument(
        "--pool-ceil",
        action=argparse.BooleanOptionalAction,
        default=defaults.pool_ceil,
        help="keep the last, partial pooling window of each text (default: %(default)s)",
    )
    g.add_argument(
        "--conv-padding",
        choices=["same", "valid"],
        default=defaults.conv_padding,
        help="Conv1D padding (default: %(default)s)",
    )
    g.add_argument(
        "--conv-activation",
        default=defaults.conv_activation,
        help="Conv1D activation, a Keras name (default: %(default)s)",
    )
    g.add_argument(
        "--dropout",
        type=float,
        default=defaults.dropout,
        help="dropout before the output layer (default: %(default)s)",
    )
    g.add_argument(
        "--nb-buckets",
        type=int,
        default=defaults.nb_buckets,
        help="hash buckets of the NBSVM head (distinct 1..N-grams scaled by naive-Bayes "
        "log-count ratios), stacked with the others on validation; 0 for none "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--nb-ngrams",
        type=int,
        default=defaults.nb_ngrams,
        help="longest n-gram of the NBSVM head (default: %(default)s)",
    )
    g.add_argument(
        "--ngram-buckets",
        type=int,
        default=defaults.ngram_buckets,
        help="also train a fastText head (mean of word and hashed-bigram embeddings, this many "
        "bigram buckets), weighed in by a weight fitted on validation; 0 for none "
        "(default: %(default)s)",
    )
    g.add_argument(
        "--ngram-dim",
        type=int,
        default=defaults.ngram_dim,
        help="embedding size of that bag (default: %(default)s)",
    )
    g.add_argument(
        "--unroll",
        type=int,
        default=defaults.unroll,
        help="lax.scan unroll of the recurrent layers (default: %(default)s)",
    )
    g.add_argument(
        "--fused",
        action=argparse.BooleanOptionalAction,
        default=defaults.fused,
        help="recurrent layers with the hand-written cuDNN-style backward pass (float32)",
    )
    g.add_argument(
        "--dtype",
        choices=["float32", "bfloat16"],
        default=defaults.dtype,
        help="compute dtype; parameters stay float32 (default: %(default)s)",
    )


def add_training_options(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    """--epochs, --batch-size, ... (every ``TrainConfig`` field)."""
    g = parser.add_argument_group("training")
    g.add_argument(
        "--epochs",
        type=int,
        default=defaults.epochs,
        help="passes over the training data (default: %(default)s)",
    )
    g.add_argument(
        "--batch-size",
        type=int,
        default=defaults.batch_size,
        help="examples per step (default: %(default)s)",
    )
    g.add_argument(
        "--learning-rate",
        type=float,
        default=defaults.learning_rate,
        help="peak learning rate (default: %(default)s)",
    )
    g.add_argument(
        "--ngram-learning-rate",
        type=float,
        default=defaults.ngram_learning_rate,
        help="peak learning rate of the fastText head, 0: --learning-rate (default: %(default)s)",
    )
    g.add_argument(
        "--weight-decay",
        type=float,
        default=defaults.weight_decay,
        help="AdamW weight decay (default: %(default)s)",
    )
    g.add_argument(
        "--clip-norm",
        type=float,
        default=defaults.clip_norm,
        help="gradient global-norm clipping, 0 for none (default: %(default)s)",
    )
    g.add_argument(
        "--lazy-embedding",
        action=argparse.BooleanOptionalAction,
        default=defaults.lazy_embedding,
        help="Adam updates only the embedding rows of each batch's words (lazy Adam: faster "
        "with a large vocabulary) (default: %(default)s)",
    )
    g.add_argument(
        "--time-budget",
        type=float,
        default=defaults.time_budget,
        help="seconds of training, after which the run validates, saves and stops; 0 for no "
        "limit (default: %(default)s)",
    )
    g.add_argument(
        "--class-weighting",
        choices=["sqrt", "balanced", "none"],
        default=defaults.class_weighting,
        help="how much each class weighs in the loss: rarer classes more by the square root of "
        "their rarity, each class alike, or every example alike (default: %(default)s)",
    )
    g.add_argument(
        "--patience",
        type=int,
        default=defaults.patience,
        help="early stopping patience in epochs, 0 for none (default: %(default)s)",
    )
    g.add_argument(
        "--max-len",
        type=int,
        default=defaults.max_len,
        help="tokens kept per text (default: %(default)s)",
    )
    g.add_argument(
        "--truncating",
        choices=["pre", "post"],
        default=defaults.truncating,
        help="'pre' keeps the end of long texts, 'post' the start (default: %(default)s)",
    )
    g.add_argument(
        "--max-words",
        type=int,
        default=defaults.max_words,
        help="vocabulary size (default: %(default)s)",
    )
    g.add_argument(
        "--num-buckets",
        type=int,
        default=defaults.num_buckets,
        help="padded lengths per epoch (default: %(default)s)",
    )
    g.add_argument("--seed", type=int, default=defaults.seed, help="random seed")
    g.add_argument(
        "--save-every",
        type=int,
        default=defaults.save_every,
        help="also checkpoint every N steps within an epoch (default: per epoch)",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output-dir from its last checkpoint",
    )
    g.add_argument("--no-progress", action="store_true", help="no progress bars")


# ClassifierConfig fields the recipe fits to the data when they are not given.
_FROM_DATA = {"pool_size", "nb_buckets"}


def defaults_from_recipe(parser: argparse.ArgumentParser) -> None:
    """Leave every model and training option out of the parsed namespace unless it is given.

    So only what the user chose reaches ``seqclf.recipe``, which resolves the rest from the
    training split; the help says which defaults come from the data.
    """
    for group in parser._action_groups:
        if group.title not in ("model", "training"):
            continue
        for action in group._group_actions:
            if action.dest in ("resume", "no_progress"):
                continue
            from_data = action.default is None or action.dest in _FROM_DATA
            shown = "from the data" if from_data else str(action.default)
            if action.help:
                action.help = action.help.replace("%(default)s", shown)
            action.default = argparse.SUPPRESS


def _int_list(text: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def model_options_from(args: argparse.Namespace) -> dict[str, Any]:
    names = {f.name for f in dataclasses.fields(ClassifierConfig)} - {"vocab_size", "num_classes"}
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    return TrainConfig(**{n: getattr(args, n) for n in names if hasattr(args, n)})


def add_data_options(parser: argparse.ArgumentParser) -> None:
    g = parser.add_argument_group("data")
    g.add_argument("--text-column", default="text", help="text column of CSV/TSV/JSONL files")
    g.add_argument("--label-column", default="label", help="label column of CSV/TSV/JSONL files")
    g.add_argument(
        "--data-dir",
        default=None,
        help="TFDS data_dir for dataset names (default: $TFDS_DATA_DIR, else TFDS's)",
    )


def resume_command(program: str, argv: Sequence[str]) -> str:
    """The command line that resumes this run: the same one with --resume."""
    args = list(argv)
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join([program, *args])


def _load(source: str, args: argparse.Namespace, split: str, classes=None):
    """``load_any`` with the data options; a ``LabelWarning`` becomes a one-line note."""
    from seqclf.data.sources import LabelWarning, load_any

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LabelWarning)
        data = load_any(
            source,
            split=split,
            data_dir=args.data_dir,
            text_column=args.text_column,
            label_column=args.label_column,
            classes=classes,
        )
    for w in caught:
        if issubclass(w.category, LabelWarning):
            print(f"seqclf {args.command}: note: {w.message}", file=sys.stderr)
        else:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
    return data


def check_options(args: argparse.Namespace) -> None:
    """Reject, naming the flag, what argparse lets through: NaN or infinite numbers (NaN passes
    every range check), a --valid-fraction outside (0, 1), an --output-dir that is a file."""
    for name, value in sorted(vars(args).items()):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"--{name.replace('_', '-')} must be a finite number, got {value}")
    if args.command == "train" and args.valid is None and not 0.0 < args.valid_fraction < 1.0:
        raise ValueError(f"--valid-fraction must be in (0, 1), got {args.valid_fraction}")
    output_dir = getattr(args, "output_dir", None)
    if output_dir is not None:
        out = Path(output_dir)
        for folder in (out, *out.parents):
            if folder.exists():
                if not folder.is_dir():
                    what = "is" if folder == out else f"is inside {folder}, which is"
                    raise ValueError(
                        f"--output-dir {out} {what} a file, not a folder; choose another "
                        "--output-dir"
                    )
                break


def add_distributed_options(parser: argparse.ArgumentParser) -> None:
    """Multi-host flags; one host with several devices needs none of them."""
    g = parser.add_argument_group("several machines (jax.distributed)")
    g.add_argument(
        "--distributed",
        action="store_true",
        help="let JAX detect the cluster (Slurm, Open MPI, Cloud TPU, Kubernetes)",
    )
    g.add_argument(
        "--coordinator-address",
        default=None,
        help="HOST:PORT of process 0 (default: $JAX_COORDINATOR_ADDRESS)",
    )
    g.add_argument(
        "--num-processes",
        type=int,
        default=None,
        help="processes in the run (default: $JAX_NUM_PROCESSES)",
    )
    g.add_argument(
        "--process-id",
        type=int,
        default=None,
        help="this process's id, 0..N-1 (default: $JAX_PROCESS_ID)",
    )


def join_cluster(args: argparse.Namespace) -> None:
    """``jax.distributed.initialize`` when asked (flags or JAX_* variables); else nothing."""
    from seqclf.distributed import initialize

    initialize(args.coordinator_address, args.num_processes, args.process_id, auto=args.distributed)


def interrupted_message(command: str, argv: Sequence[str]) -> str:
    """What ``seqclf <command>`` prints when a Ctrl-C (or a second one) stops it at once."""
    hint = ""
    if command == "train":
        hint = (
            "; the checkpoints already saved are intact (a save cut short is never listed). "
            f"Resume with: {resume_command('seqclf', argv)}"
        )
    return f"\nseqclf {command}: interrupted{hint}"


def cmd_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
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
    from seqclf.predict import load

    train = _load(args.train, args, "train")
    valid = _load(args.valid, args, "validation", classes=train.classes) if args.valid else None
    # Read (and its labels checked) before training, not after it.
    test = _load(args.test, args, "test", classes=train.classes) if args.test else None
    run = train_text_classifier(
        train,
        args.output_dir,
        valid=valid,
        model_options=model_options_from(args),
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


def cmd_evaluate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from seqclf.predict import load

    predictor = load(args.checkpoint_dir, batch_size=args.batch_size)
    data = _load(args.data, args, args.split)
    if args.report:
        from seqclf.report import evaluation_report

        report = evaluation_report(predictor, data, args.report)
        print(json.dumps(report.metrics, indent=2))
        print(report.table(), file=sys.stderr)
        print(f"Report written to {args.report} ({', '.join(report.files)}).", file=sys.stderr)
        return 0
    print(json.dumps(predictor.evaluate(data), indent=2))
    return 0


def cmd_export(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from seqclf.predict import load

    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()] or None
    out = load(args.checkpoint_dir).export(args.out_dir, platforms)
    print(f"Exported to {out} (load it with seqclf.exported.load({str(out)!r})).")
    return 0


def cmd_explain(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Each text's label and probabilities, then its words with their attributions."""
    from seqclf.explain import explanation_html
    from seqclf.predict import EmptyTextWarning, load

    predictor = load(args.checkpoint_dir)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", EmptyTextWarning)
        explanations = predictor.explain(args.texts, args.steps, args.target)
    for w in caught:
        kind = "note" if issubclass(w.category, EmptyTextWarning) else "warning"
        print(f"seqclf explain: {kind}: {w.message}", file=sys.stderr)
    for e in explanations:
        probs = ", ".join(f"{c} {p:.4f}" for c, p in e.probabilities.items())
        print(f"{e.label} ({probs}): {e.text[:80]!r}")
        for token, a in zip(e.tokens, e.attributions.tolist(), strict=True):
            print(f"  {a:+.4f}  {token}")
        print(
            f"  attributions sum to {e.attributions.sum():+.4f}; completeness error "
            f"{e.completeness_error:.2g} ({args.steps} steps)"
        )
    if args.html:
        body = "\n".join(explanation_html(e) for e in explanations)
        Path(args.html).write_text(
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>seqclf explain</title>'
            f"</head><body>\n{body}\n</body></html>\n",
            encoding="utf-8",
        )
        print(f"Wrote {args.html}.")
    return 0


def cmd_predict(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Streams predictions as CSV; texts with no words are classified and noted on stderr."""
    from seqclf.predict import EmptyTextWarning, load

    if not (args.file or args.texts):
        raise ValueError("give texts to classify, or --file FILE")
    if args.file:  # checked (exists, is a file, has the column) before the model is loaded
        texts = _iter_texts(Path(args.file), args.text_column)
    else:
        texts = iter(args.texts)
    predictor = load(args.checkpoint_dir, batch_size=args.batch_size)
    out = open(args.output, "w", newline="") if args.output else sys.stdout
    try:
        writer = csv.writer(out)
        writer.writerow(["label", *[f"p_{c}" for c in predictor.classes], "text"])
        shown = _Tee(texts)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", EmptyTextWarning)
            for probs in predictor.iter_predict_proba(shown):
                for p in probs:
                    text = shown.seen.popleft()
                    label = predictor.classes[int(p.argmax())]
                    writer.writerow([label, *[f"{x:.4f}" for x in p], text[:80]])
    finally:
        if out is not sys.stdout:
            out.close()
    for w in caught:
        kind = "note" if issubclass(w.category, EmptyTextWarning) else "warning"
        where = ""
        if args.file and getattr(w.message, "positions", None):  # positions count from 0
            places = _places(Path(args.file), args.text_column, w.message.positions)
            where = f"; in {args.file} these are {', '.join(places)}"
        print(f"seqclf predict: {kind}: {w.message}{where}", file=sys.stderr)
    return 0


def cmd_serve(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Serves the run over HTTP until SIGINT/SIGTERM (``seqclf.serve``; docs/serving.md)."""
    try:
        from seqclf.serve import ServeSettings, bind, serve
    except ImportError as err:
        raise RuntimeError(
            f"serving needs the 'serve' extra ({err}): pip install 'seqclf[serve]'"
        ) from None
    from seqclf.predict import EmptyTextWarning, load

    settings = ServeSettings(
        batching=args.batching,
        max_wait_ms=args.max_wait_ms,
        max_batch_texts=args.max_batch_texts,
        max_queue=args.max_queue,
        threads=args.threads,
        max_texts=args.max_texts,
        max_chars=args.max_chars,
        max_explain_texts=args.max_explain_texts,
        max_body_bytes=args.max_body_bytes,
        read_timeout_s=args.read_timeout,
        explain_steps=args.explain_steps,
        warm_up_explain=args.warm_up_explain,
    )
    sock = bind(args.host, args.port)  # before the model loads: a port in use is said at once
    try:
        predictor = load(args.checkpoint_dir, batch_size=args.batch_size)
        # A server classifies empty texts as asked; a warning per request would only fill the log.
        warnings.simplefilter("ignore", EmptyTextWarning)
        serve(
            predictor,
            settings,
            sock=sock,
            run_dir=args.checkpoint_dir,
            access_log=args.access_log,
            graceful_timeout_s=args.graceful_timeout,
        )
    finally:
        sock.close()
    return 0


class _Tee:
    """Pass texts through while remembering the ones not yet printed (for the text column)."""

    def __init__(self, texts):
        self._texts = iter(texts)
        self.seen: deque[str] = deque()

    def __iter__(self):
        return self

    def __next__(self):
        text = next(self._texts)
        self.seen.append(text)
        return text


def _iter_texts(path: Path, text_column: str) -> Iterator[str]:
    """Texts of a CSV/TSV/JSONL file (by column) or of a plain text file (one per line), read
    lazily; a line that is not UTF-8 raises ValueError naming the file and line."""
    return (text for _, text in _numbered_texts(path, text_column))


def _numbered_texts(path: Path, text_column: str) -> Iterator[tuple[str, str]]:
    """``_iter_texts`` with the place of each text (``"line 7"``)."""
    from seqclf.data.sources import TABLE_FORMATS, check_file, read_numbered_texts, utf8_lines

    check_file(path)
    if path.suffix.lower() in TABLE_FORMATS:
        return read_numbered_texts(path, text_column)
    return ((f"line {n}", line.rstrip("\r\n")) for n, line in utf8_lines(path))


def _places(path: Path, text_column: str, positions: Sequence[int]) -> list[str]:
    """The places in ``path`` (``"line 7"``) of the texts at ``positions`` (from 0), found by
    reading it again up to the last of them, so that streaming keeps nothing for them."""
    wanted, last, places = set(positions), max(positions), {}
    for i, (where, _) in enumerate(_numbered_texts(path, text_column)):
        if i in wanted:
            places[i] = where
        if i >= last:
            break
    return [places[i] for i in positions if i in places]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqclf", description="Train, evaluate and use text classifiers (JAX/Flax)."
    )
    sub = parser.add_subparsers(dest="command", required=True)

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
    add_training_options(p, TrainConfig())
    defaults_from_recipe(p)
    add_distributed_options(p)
    p.set_defaults(func=cmd_train)

    p = sub.add_parser("evaluate", help="accuracy of a trained model on labelled data")
    p.add_argument("checkpoint_dir", help="the --output-dir of a training run")
    p.add_argument("--data", required=True, help="labelled data (file, folder or TFDS name)")
    p.add_argument("--split", default="test", help="TFDS split (default: %(default)s)")
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument(
        "--report",
        metavar="DIR",
        help="also write an evaluation report there: per-class table and confusion matrix "
        "(report.md, PNG), calibration curve with ECE (PNG), most confident mistakes (CSV)",
    )
    add_data_options(p)
    p.set_defaults(func=cmd_evaluate)

    p = sub.add_parser("predict", help="classify texts with a trained model")
    p.add_argument("checkpoint_dir", help="the --output-dir of a training run")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a text file (one text per line) or a CSV/TSV/JSONL file")
    p.add_argument("--text-column", default="text", help="text column of a table --file")
    p.add_argument("--output", help="write CSV here instead of standard output")
    p.add_argument("--batch-size", type=int, default=64)
    p.set_defaults(func=cmd_predict)

    p = sub.add_parser(
        "serve",
        help="serve a trained model over HTTP (JSON API and a page to try it)",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    p.add_argument("checkpoint_dir", help="the --output-dir of a training run")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per compiled device call")
    p.add_argument(
        "--batching",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="micro-batching: concurrent requests share device calls (--no-batching: each "
        "request is scored alone, by --threads workers)",
    )
    p.add_argument("--max-wait-ms", type=float, default=5.0, help="wait for a batch to fill")
    p.add_argument(
        "--max-batch-texts", type=int, default=None, help="texts per batch (default: --batch-size)"
    )
    p.add_argument("--max-queue", type=int, default=256, help="waiting requests; more get 503")
    p.add_argument("--threads", type=int, default=4, help="workers with --no-batching")
    p.add_argument("--max-texts", type=int, default=256, help="texts per request (413 above)")
    p.add_argument("--max-chars", type=int, default=100_000, help="characters per text")
    p.add_argument(
        "--max-explain-texts", type=int, default=16, help="texts per request with explain"
    )
    p.add_argument("--max-body-bytes", type=int, default=8 * 2**20, help="request body size")
    p.add_argument("--read-timeout", type=float, default=10.0, help="seconds to send a body")
    p.add_argument("--explain-steps", type=int, default=32, help="integrated-gradients steps")
    p.add_argument(
        "--warm-up-explain",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="compile the explanations' shapes at start-up too",
    )
    p.add_argument(
        "--graceful-timeout", type=float, default=30.0, help="seconds to finish on SIGTERM"
    )
    p.add_argument(
        "--access-log", action=argparse.BooleanOptionalAction, default=True, help="log requests"
    )
    p.set_defaults(func=cmd_serve)

    p = sub.add_parser(
        "export",
        help="write the model as serialized StableHLO (jax.export) plus its vocabulary, to run "
        "with jax and numpy alone (seqclf.exported.load)",
    )
    p.add_argument("checkpoint_dir", help="the --output-dir of a training run")
    p.add_argument("out_dir", help="the directory to write")
    p.add_argument(
        "--platforms",
        default="",
        help="comma-separated platforms to lower for (cpu, cuda, rocm, tpu); "
        "default: JAX's default backend here",
    )
    p.set_defaults(func=cmd_export)

    p = sub.add_parser(
        "explain",
        help="which words drove a prediction (integrated gradients through every head)",
    )
    p.add_argument("checkpoint_dir", help="the --output-dir of a training run")
    p.add_argument("texts", nargs="+", help="texts to explain")
    p.add_argument("--html", metavar="FILE", help="also write the words coloured by attribution")
    p.add_argument(
        "--steps", type=int, default=32, help="integration points (default: %(default)s)"
    )
    p.add_argument("--target", help="the class to explain (default: the predicted one)")
    p.set_defaults(func=cmd_explain)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``seqclf`` console script; returns the exit status."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    quiet_libraries()
    _ignore_aborted_reads()
    try:
        check_options(args)
        return args.func(args, argv)
    except (ValueError, OSError, RuntimeError, TrainingDiverged) as err:
        # Bad data, options or checkpoints (ValueError, CheckpointError), missing or unreadable
        # files (OSError), a diverged run: one line, no traceback.
        print(f"seqclf {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:  # a Ctrl-C outside training (train exits at once instead)
        print(interrupted_message(args.command, argv), file=sys.stderr)
        return EXIT_INTERRUPTED


def _ignore_aborted_reads() -> None:
    """When one array of a damaged checkpoint cannot be read, orbax stops its event loop while
    TensorStore still finishes the other reads; their callbacks then fail with "Event loop is
    closed", which Python would print as tracebacks around the one-line error. Drop those only."""
    previous = sys.unraisablehook
    if getattr(previous, "seqclf_quiet", False):
        return  # already installed

    def hook(unraisable: Any) -> None:
        if isinstance(unraisable.exc_value, RuntimeError) and "Event loop is closed" in str(
            unraisable.exc_value
        ):
            return
        previous(unraisable)

    hook.seqclf_quiet = True  # type: ignore[attr-defined]
    sys.unraisablehook = hook


if __name__ == "__main__":
    sys.exit(main())
