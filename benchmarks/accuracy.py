"""Accuracy suite: seqclf with its defaults against TF-IDF + LR, NBSVM and fastText, same splits.

seqclf runs exactly as a user runs it: ``seqclf train --train FILE --output-dir DIR`` with no
other option (in a subprocess, this checkout's seqclf), then ``seqclf.load(DIR).predict(texts)``
on the held-out fold or test split. The baselines (``benchmarks/baselines.py``) see the same
training rows and never a held-out one. See benchmarks/ACCURACY.md.

    python benchmarks/accuracy.py                                   # all five sets, all methods
    python benchmarks/accuracy.py --sets mr,cr --folds 10 --max-folds 2
    python benchmarks/accuracy.py --sets my.csv,ag_news --methods seqclf,nbsvm
    python benchmarks/accuracy.py --methods tfidf_lr,nbsvm,fasttext --out benchmarks/results/x
"""

from __future__ import annotations

import argparse
import csv
import os
import shlex
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))  # baselines, accuracy_report, common
sys.path.insert(0, str(REPO))  # this checkout's seqclf, also without pip install

import accuracy_report  # noqa: E402
from baselines import BASELINES  # noqa: E402

SHARED = REPO.parent / "shared"
DEFAULT_DATA_DIR = SHARED / "tensorflow_datasets"
# Built-in sets: name -> the shared CSV (K-fold CV) or, for imdb, the TFDS name (train -> test).
CSV_SETS = {n: SHARED / "text_classification" / f"{n}.csv" for n in ("mr", "subj", "cr", "mpqa")}
TFDS_SETS = {"imdb": "imdb_reviews"}
DEFAULT_SETS = ("imdb", "mr", "subj", "cr", "mpqa")
METHODS = ("seqclf", *BASELINES)
CSV_FIELDS = (
    "set",
    "method",
    "fold",
    "folds",
    "n_train",
    "n_test",
    "correct",
    "accuracy",
    "train_seconds",
    "predict_seconds",
    "error",
)


@dataclass
class LabelledTexts:
    """N texts and their label names."""

    texts: list[str]
    labels: list[str]

    def take(self, indices: np.ndarray) -> LabelledTexts:
        return LabelledTexts([self.texts[i] for i in indices], [self.labels[i] for i in indices])


@dataclass
class Split:
    """One train -> held-out split of a set.

    Attributes:
      fold: the fold index (0 for a train/test set).
      train, test: the rows.
      tfds: (name, data_dir) when seqclf can read the whole train split from TFDS itself.
    """

    fold: int
    train: LabelledTexts
    test: LabelledTexts
    tfds: tuple[str, str | None] | None = None


@dataclass
class DataSet:
    """A set of the suite: its name and its splits (K folds, or one train/test split)."""

    name: str
    folds: str  # "10" (K-fold CV) or "test" (a train/test split)
    splits: list[Split] = field(default_factory=list)


# ---------------------------------------------------------------------------------------------
# Sets and splits
# ---------------------------------------------------------------------------------------------


def _from_dataset(ds) -> LabelledTexts:
    """A seqclf ``TextDataset`` -> texts and label names."""
    return LabelledTexts(list(ds.texts), [ds.classes[i] for i in ds.labels.tolist()])


def cv_folds(
    n: int, k: int, seed: int = 0, limit: int | None = None
) -> list[tuple[np.ndarray, np.ndarray]]:
    """K-fold cross-validation indices: shuffle with ``seed``, keep the first ``limit`` rows,
    cut into ``k`` folds of near-equal size; fold i is held out once.

    Returns:
      k pairs (train indices, held-out indices), int64, in the shuffled order (many files are
      sorted by class, and fastText learns in file order: it must not see one class, then the
      other).
    """
    order = np.random.default_rng(seed).permutation(n)
    if limit is not None:
        order = order[:limit]
    if not 2 <= k <= order.size:
        raise ValueError(f"--folds {k}: need 2 <= folds <= the {order.size} rows used")
    parts = np.array_split(order, k)
    return [(np.concatenate(parts[:i] + parts[i + 1 :]), parts[i]) for i in range(k)]


def _shuffled(rows: LabelledTexts, seed: int, limit: int | None) -> LabelledTexts:
    order = np.random.default_rng(seed).permutation(len(rows.texts))
    return rows.take(order if limit is None else order[:limit])


def _tfds_has_split(name: str, split: str, data_dir: str | None) -> bool:
    import tensorflow_datasets as tfds

    return split in tfds.builder(name, data_dir=data_dir).info.splits


def _display_name(spec: str) -> str:
    if spec in CSV_SETS or spec in TFDS_SETS:
        return spec
    path = Path(spec)
    return path.stem if path.suffix else spec


def load_set(
    spec: str,
    folds: int,
    max_folds: int | None,
    data_dir: str | None,
    seed: int = 0,
    limit: int | None = None,
) -> DataSet:
    """A built-in set name, a CSV/TSV/JSONL path or a TFDS name -> its splits.

    Files (and TFDS sets without a test split) get K-fold CV; TFDS sets use train -> test.
    """
    import seqclf

    name = _display_name(spec)
    path = CSV_SETS.get(spec, Path(spec))
    if spec in CSV_SETS or path.is_file():
        if not path.is_file():
            raise SystemExit(f"--sets {spec}: no file {path}")
        rows = _from_dataset(seqclf.read_table(path))
        return _cv_set(name, rows, folds, max_folds, seed, limit)
    if path.suffix.lower() in (".csv", ".tsv", ".jsonl", ".ndjson", ".json"):
        raise SystemExit(f"--sets {spec}: no such file")
    tfds_name = TFDS_SETS.get(spec, spec)
    train = _from_dataset(seqclf.read_tfds(tfds_name, split="train", data_dir=data_dir))
    if not _tfds_has_split(tfds_name, "test", data_dir):
        return _cv_set(name, train, folds, max_folds, seed, limit)
    test = _from_dataset(seqclf.read_tfds(tfds_name, split="test", data_dir=data_dir))
    whole = limit is None  # seqclf then reads the TFDS train split itself, as a user would
    split = Split(
        0,
        _shuffled(train, seed, limit),
        _shuffled(test, seed, limit),
        (tfds_name, data_dir) if whole else None,
    )
    return DataSet(name, "test", [split])


def _cv_set(
    name: str,
    rows: LabelledTexts,
    folds: int,
    max_folds: int | None,
    seed: int,
    limit: int | None,
) -> DataSet:
    pairs = cv_folds(len(rows.texts), folds, seed, limit)[:max_folds]
    splits = [Split(i, rows.take(tr), rows.take(te)) for i, (tr, te) in enumerate(pairs)]
    return DataSet(name, str(folds), splits)


def write_table(rows: LabelledTexts, path: Path) -> None:
    """The rows as a ``text,label`` CSV, the format ``seqclf train --train`` reads."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(rows.texts, rows.labels, strict=True))


# ---------------------------------------------------------------------------------------------
# seqclf, as a user runs it
# ---------------------------------------------------------------------------------------------


def seqclf_executable() -> list[str]:
    """This interpreter running this checkout's CLI (``python -m seqclf.cli``)."""
    return [sys.executable, "-m", "seqclf.cli"]


def seqclf_train_command(
    train: str, output_dir: str, data_dir: str | None = None, extra: Sequence[str] = ()
) -> list[str]:
    """``seqclf train --train TRAIN --output-dir DIR`` (+ ``--data-dir`` for a TFDS name), and
    nothing else unless ``extra`` (``--seqclf-args``, for experiments) adds it."""
    cmd = [*seqclf_executable(), "train", "--train", train, "--output-dir", output_dir]
    if data_dir is not None:
        cmd += ["--data-dir", data_dir]
    return cmd + list(extra)


def train_seqclf(split: Split, workdir: Path, extra: Sequence[str], log: Path) -> float:
    """Trains seqclf on ``split.train`` into ``workdir/model``; returns the wall seconds of the
    ``seqclf train`` process. Its output goes to ``log``; a failure raises RuntimeError."""
    if split.tfds is not None:
        train, data_dir = split.tfds[0], split.tfds[1]
    else:
        train, data_dir = str(workdir / "train.csv"), None
        write_table(split.train, Path(train))
    cmd = seqclf_train_command(train, str(workdir / "model"), data_dir, extra)
    paths = [str(REPO), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    with log.open("w") as out:
        out.write(shlex.join(cmd) + "\n")
        out.flush()
        start = time.perf_counter()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
        seconds = time.perf_counter() - start
    if proc.returncode != 0:
        tail = log.read_text(errors="replace").strip().splitlines()[-1:] or ["(no output)"]
        raise RuntimeError(f"seqclf train exited with {proc.returncode}: {tail[0]} (see {log})")
    return seconds


def head_probabilities(predictor, texts: list[str]) -> dict[str, np.ndarray]:
    """(N, C) probabilities of each head alone (``predictor.predict_proba(texts, head=NAME)``
    for each name in ``predictor.heads``), for a checkpoint with several heads; else {}."""
    names = list(getattr(predictor, "heads", ()))
    if len(names) < 2:
        return {}
    try:
        return {name: predictor.predict_proba(texts, head=name) for name in names}
    except Exception as err:  # an optional extra: never lose the run over it
        print(f"  (per-head accuracy skipped: {type(err).__name__}: {err})", flush=True)
        return {}


def run_seqclf(
    split: Split, extra: Sequence[str], log: Path
) -> Iterator[tuple[str, list[str], float, float]]:
    """seqclf on one split: yields ("seqclf", predictions, train s, predict s), then one
    ("seqclf/HEAD", predictions, nan, nan) per head when the checkpoint has several."""
    import seqclf

    with tempfile.TemporaryDirectory(prefix="seqclf-accuracy-") as tmp:
        train_s = train_seqclf(split, Path(tmp), extra, log)
        start = time.perf_counter()
        predictor = seqclf.load(Path(tmp) / "model")
        predictions = predictor.predict(split.test.texts)
        predict_s = time.perf_counter() - start
        yield "seqclf", predictions, train_s, predict_s
        for head, probs in head_probabilities(predictor, split.test.texts).items():
            picked = [predictor.classes[i] for i in np.asarray(probs).argmax(axis=1)]
            yield f"seqclf/{head}", picked, float("nan"), float("nan")


# ---------------------------------------------------------------------------------------------
# The run
# ---------------------------------------------------------------------------------------------


def _row(ds: DataSet, split: Split, method: str, predictions, train_s, predict_s, error=""):
    n_test = len(split.test.labels)
    correct = (
        "" if error else sum(p == t for p, t in zip(predictions, split.test.labels, strict=True))
    )
    return {
        "set": ds.name,
        "method": method,
        "fold": split.fold,
        "folds": ds.folds,
        "n_train": len(split.train.labels),
        "n_test": n_test,
        "correct": correct,
        "accuracy": "" if error else round(correct / n_test, 6),
        "train_seconds": "" if error or np.isnan(train_s) else round(train_s, 2),
        "predict_seconds": "" if error or np.isnan(predict_s) else round(predict_s, 3),
        "error": error,
    }


def run_split(
    ds: DataSet, split: Split, methods: Sequence[str], extra: Sequence[str], logs: Path
) -> Iterator[dict]:
    """One CSV row per method (and per seqclf head) on one split."""
    for method in methods:
        try:
            if method == "seqclf":
                results = run_seqclf(split, extra, logs / f"{ds.name}-fold{split.fold}.log")
            else:
                fit_predict = BASELINES[method]
                results = [
                    (method, *fit_predict(split.train.texts, split.train.labels, split.test.texts))
                ]
            for name, predictions, train_s, predict_s in results:
                yield _row(ds, split, name, predictions, train_s, predict_s)
        except Exception as err:  # recorded and reported; the other methods still run
            message = f"{type(err).__name__}: {err}".replace("\n", " ")
            yield _row(ds, split, method, None, float("nan"), float("nan"), message)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__.split("\n")[0], formatter_class=argparse.ArgumentDefaultsHelpFormatter
    )
    p.add_argument(
        "--sets",
        default=",".join(DEFAULT_SETS),
        help="comma-separated: built-in names (imdb, mr, subj, cr, mpqa), CSV/TSV/JSONL paths "
        "(text,label; K-fold CV) or TFDS names (train -> test split)",
    )
    p.add_argument("--methods", default=",".join(METHODS), help=f"comma-separated, of {METHODS}")
    p.add_argument(
        "--folds", type=int, default=10, help="K of K-fold CV (sets without a test split)"
    )
    p.add_argument("--max-folds", type=int, help="run only the first M of the K folds")
    p.add_argument(
        "--limit", type=int, help="use only the first N rows of each set after shuffling"
    )
    p.add_argument("--seed", type=int, default=0, help="the shuffle before the folds")
    p.add_argument("--out", type=Path, default=HERE / "results" / "accuracy")
    p.add_argument(
        "--seqclf-args",
        default="",
        help="extra options for `seqclf train` (experiments only; recorded in the output)",
    )
    p.add_argument(
        "--data-dir",
        default=str(DEFAULT_DATA_DIR) if DEFAULT_DATA_DIR.is_dir() else None,
        help="TFDS data_dir",
    )
    p.add_argument("--note", default="", help="a line for the markdown (e.g. the machine's load)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    methods = [m for m in args.methods.split(",") if m]
    unknown = sorted(set(methods) - set(METHODS))
    if unknown or not methods:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {list(METHODS)}")
    if args.max_folds is not None and args.max_folds < 1:
        raise SystemExit("--max-folds must be at least 1")
    if args.limit is not None and args.limit < 2:
        raise SystemExit("--limit must be at least 2")
    extra = shlex.split(args.seqclf_args)
    data_dir = None if args.data_dir is None else os.path.abspath(args.data_dir)
    from seqclf.cli import quiet_libraries

    quiet_libraries()
    args.out.mkdir(parents=True, exist_ok=True)
    logs = args.out / "logs"  # seqclf train's output, one file per set and fold
    if "seqclf" in methods:
        logs.mkdir(exist_ok=True)
    started = accuracy_report.run_stamp(argv, extra, args.note)
    accuracy_report.save_stamp(started, args.out / "run.json")
    rows: list[dict] = []
    with (args.out / "accuracy.csv").open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=CSV_FIELDS)
        writer.writeheader()
        for spec in (s for s in args.sets.split(",") if s):
            ds = load_set(spec, args.folds, args.max_folds, data_dir, args.seed, args.limit)
            for split in ds.splits:
                for row in run_split(ds, split, methods, extra, logs):
                    rows.append(row)
                    writer.writerow(row)
                    f.flush()
                    print(accuracy_report.progress_line(row, len(ds.splits)), flush=True)
    table = accuracy_report.write_outputs(rows, args.out, started)
    print(table)
    return 1 if any(r["error"] for r in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
