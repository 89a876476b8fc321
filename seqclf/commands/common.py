"""What several commands share: reading labelled data with the data options, the exit status of
an interrupted command, and the line that resumes a training run."""

from __future__ import annotations

import argparse
import shlex
import sys
import warnings
from collections.abc import Sequence

EXIT_INTERRUPTED = 130


def resume_command(program: str, argv: Sequence[str]) -> str:
    """The command line that resumes this run: the same one with --resume."""
    args = list(argv)
    if "--resume" not in args:
        args.append("--resume")
    return shlex.join([program, *args])


def interrupted_message(command: str, argv: Sequence[str]) -> str:
    """What ``seqclf <command>`` prints when a Ctrl-C (or a second one) stops it at once."""
    hint = ""
    if command == "train":
        hint = (
            "; the checkpoints already saved are intact (a save cut short is never listed). "
            f"Resume with: {resume_command('seqclf', argv)}"
        )
    return f"\nseqclf {command}: interrupted{hint}"


def read_labelled(source: str, args: argparse.Namespace, split: str, classes=None):
    """``read_dataset`` with the data options; a ``LabelWarning`` becomes a one-line note."""
    from seqclf.data.sources import LabelWarning, read_dataset

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", LabelWarning)
        data = read_dataset(
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
