"""``seqclf explain``: which words drove each prediction (integrated gradients)."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
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
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Each text's label and probabilities, then its words with their attributions."""
    from seqclf.explain import explanation_html
    from seqclf.loading import load
    from seqclf.predict import EmptyTextWarning

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
