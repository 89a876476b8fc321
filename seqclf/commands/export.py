"""``seqclf export``: the model as serialized StableHLO plus its vocabulary (``seqclf.export``)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any


def add_parser(sub: Any) -> argparse.ArgumentParser:
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
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from seqclf.loading import load

    platforms = [p.strip() for p in args.platforms.split(",") if p.strip()] or None
    out = load(args.checkpoint_dir).export(args.out_dir, platforms)
    print(f"Exported to {out} (load it with seqclf.exported.load({str(out)!r})).")
    return 0
