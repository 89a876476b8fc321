"""``seqclf predict``: stream a file's (or the arguments') texts through a model, as CSV."""

from __future__ import annotations

import argparse
import csv
import sys
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser("predict", help="classify texts with a trained model")
    p.add_argument("checkpoint_dir", help="the --output-dir of a training run")
    p.add_argument("texts", nargs="*", help="texts to classify")
    p.add_argument("--file", help="a text file (one text per line) or a CSV/TSV/JSONL file")
    p.add_argument("--text-column", default="text", help="text column of a table --file")
    p.add_argument("--output", help="write CSV here instead of standard output")
    p.add_argument("--batch-size", type=int, default=64)
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Streams predictions as CSV; texts with no tokens are classified and noted on stderr."""
    from seqclf.loading import load
    from seqclf.predict import EmptyTextWarning

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
