"""``seqclf serve``: a trained model over HTTP (``seqclf.serve``; docs/serving.md).

The limits and batching flags are ``ServeSettings``' fields (``seqclf.cli_options``); the
others (where to listen, the predictor's batch size, uvicorn's shutdown and log) are here.
"""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from typing import Any

from seqclf.cli_options import DefaultsOnce, add_serve_options, config_from
from seqclf.serve_settings import ServeSettings


def add_parser(sub: Any) -> argparse.ArgumentParser:
    p = sub.add_parser(
        "serve",
        help="serve a trained model over HTTP (JSON API and a page to try it)",
        formatter_class=DefaultsOnce,
    )
    p.add_argument("checkpoint_dir", help="the --output-dir of a training run")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on")
    p.add_argument("--port", type=int, default=8000, help="port (0: any free port)")
    p.add_argument("--batch-size", type=int, default=64, help="texts per compiled device call")
    p.add_argument(
        "--graceful-timeout", type=float, default=30.0, help="seconds to finish on SIGTERM"
    )
    p.add_argument(
        "--access-log", action=argparse.BooleanOptionalAction, default=True, help="log requests"
    )
    add_serve_options(p)
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Serves the run over HTTP until SIGINT/SIGTERM (``seqclf.serve``; docs/serving.md)."""
    # Checked first: a bad value is said at once, before the port is taken or the model loads.
    settings = config_from(args, ServeSettings)
    try:
        from seqclf.serve import bind, serve
    except ImportError as err:
        raise RuntimeError(
            f"serving needs the 'serve' extra ({err}): pip install 'seqclf[serve]'"
        ) from None
    from seqclf.loading import load
    from seqclf.predict import EmptyTextWarning

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
