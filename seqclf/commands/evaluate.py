"""``seqclf evaluate``: loss and accuracy of a trained model on labelled data (and a report)."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any

from seqclf.cli_options import add_data_options
from seqclf.commands.common import read_labelled


def add_parser(sub: Any) -> argparse.ArgumentParser:
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
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from seqclf.loading import load

    predictor = load(args.checkpoint_dir, batch_size=args.batch_size)
    data = read_labelled(args.data, args, args.split)
    if args.report:
        from seqclf.report import evaluation_report

        report = evaluation_report(predictor, data, args.report)
        print(json.dumps(report.metrics, indent=2))
        print(report.table(), file=sys.stderr)
        print(f"Report written to {args.report} ({', '.join(report.files)}).", file=sys.stderr)
        return 0
    print(json.dumps(predictor.evaluate(data), indent=2))
    return 0
