"""``seqclf serve``: a trained model over HTTP (``seqclf.serve``; docs/serving.md)."""

from __future__ import annotations

import argparse
import warnings
from collections.abc import Sequence
from typing import Any

from seqclf.cli_options import DefaultsOnce


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
    return p


def run(args: argparse.Namespace, argv: Sequence[str]) -> int:
    """Serves the run over HTTP until SIGINT/SIGTERM (``seqclf.serve``; docs/serving.md)."""
    try:
        from seqclf.serve import ServeSettings, bind, serve
    except ImportError as err:
        raise RuntimeError(
            f"serving needs the 'serve' extra ({err}): pip install 'seqclf[serve]'"
        ) from None
    from seqclf.loading import load
    from seqclf.predict import EmptyTextWarning

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
