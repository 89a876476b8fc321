"""The ``seqclf`` command: ``seqclf train``, ``evaluate``, ``predict``, ``serve``, ``export`` and
``explain`` (one module each in ``seqclf.commands``), with one-line errors and exit status 2.

The option groups (model, training, data) are generated from the configurations
(``seqclf.cli_options``) and shared with ``examples/imdb.py``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import Any

from seqclf.cli_options import (  # noqa: F401 (the names examples/imdb.py imports from here)
    add_data_options,
    add_distributed_options,
    add_model_options,
    add_text_options,
    add_training_options,
    check_options,
    defaults_from_recipe,
    join_cluster,
    model_options_from,
    text_config_from,
    train_config_from,
)
from seqclf.commands import evaluate, explain, export, predict, serve, train
from seqclf.commands.common import (  # noqa: F401
    EXIT_INTERRUPTED,
    interrupted_message,
    resume_command,
)
from seqclf.training import TrainingDiverged

COMMANDS = (train, evaluate, predict, serve, export, explain)
cmd_train = train.run
cmd_evaluate = evaluate.run
cmd_predict = predict.run
cmd_serve = serve.run
cmd_export = export.run
cmd_explain = explain.run


def quiet_libraries() -> None:
    """orbax and absl log routine notices as warnings; a user of the command needs none of them."""
    import logging

    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        from absl import logging as absl_logging

        absl_logging.set_verbosity(absl_logging.ERROR)
    except ImportError:
        pass


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="seqclf", description="Train, evaluate and use text classifiers (JAX/Flax)."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    for module in COMMANDS:
        name = module.__name__.rsplit(".", 1)[1]
        # looked up here, not bound at import, so that a test can replace cmd_train
        module.add_parser(sub).set_defaults(func=globals()[f"cmd_{name}"])
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
