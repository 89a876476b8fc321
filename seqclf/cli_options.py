"""Command-line options generated from the configuration dataclasses, so they cannot drift.

Each field of ``ClassifierConfig`` (but ``vocab_size`` and ``num_classes``, which the data
decides), of ``TextConfig``, of ``TrainConfig`` and of ``ServeSettings`` (``seqclf serve``) is
one flag: ``--hidden-size`` for ``hidden_size`` (or the name ``FLAGS`` gives it), its type from
the annotation (``int | None`` is an int; ``tuple[int, ...]`` is comma-separated integers), its
help from the class docstring's ``Attributes:`` entry, its choices from the field's
``metadata["choices"]`` (the same tuple ``__post_init__`` validates against), and
``--flag/--no-flag`` for a bool. The default is shown once, at the end of the
help; a field whose default comes from the training data (None, or fitted by ``seqclf.recipe``)
says so, and another None default is shown as its entry's "None: ...".

The other option groups of ``seqclf train`` (data, several machines) are here too; the
commands themselves are in ``seqclf.commands``.
"""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import math
import re
import types
import typing
from pathlib import Path
from typing import Any

from seqclf.data.preprocessing import TextConfig
from seqclf.model import ClassifierConfig
from seqclf.serve_settings import ServeSettings
from seqclf.training import TrainConfig

# Fields the data sets (the vocabulary's size, the classes): never a flag.
NOT_OPTIONS = {"vocab_size", "num_classes"}
# ClassifierConfig fields that seqclf.recipe fits to the data when they are not given.
FROM_DATA = {"pool_size", "nb_buckets"}
# Command options that live in an options group without being a config field.
RUN_OPTIONS = {"resume", "no_progress"}
# Older names of flags, still accepted.
ALIASES = {(TextConfig, "vocab_size"): ["--max-words"]}
# Flags not named after their field: the seconds of ServeSettings, like --graceful-timeout.
FLAGS = {
    (ServeSettings, "read_timeout_s"): "--read-timeout",
    (ServeSettings, "retry_after_s"): "--retry-after",
}
GROUPS = ("model", "text", "training")
SERVE_GROUP = "limits and batching"


class DefaultsOnce(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default at the end of its help, unless the help already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        return text if "(default:" in text else super()._get_help_string(action)


def field_docs(cls: type) -> dict[str, str]:
    """The ``Attributes:`` entries of ``cls``'s docstring, one line each, by field name."""
    doc = inspect.getdoc(cls) or ""
    docs: dict[str, str] = {}
    inside, name = False, None
    for line in doc.splitlines():
        if line.strip() == "Attributes:":
            inside = True
            continue
        if not inside:
            continue
        if line and not line.startswith(" "):  # the next section
            break
        entry = re.match(r"^  (\w+): ?(.*)$", line)
        if entry:
            name = entry.group(1)
            docs[name] = entry.group(2).strip()
        elif name and line.strip():
            docs[name] += " " + line.strip()
    return docs


def _help_text(doc: str) -> tuple[str, str]:
    """(a docstring entry as help, how a None default is shown): no reST markup, no "None: ..."
    (said once, at the end, as the default), and ``%`` escaped for argparse."""
    text = doc.replace("``", "")
    none_shown = "from the data"
    text = re.sub(r"[;,]?\s*None: from the data(?: \([^)]*\))?\.?", "", text).strip()
    other = re.search(r"[;,]\s*None: (.+?)\.?$", text)  # e.g. "; None: the predictor's ..."
    if other:
        none_shown, text = other.group(1), text[: other.start()]
    text = text[:-1] if text.endswith(".") else text  # "(default: ...)" follows
    return text.replace("%", "%%"), none_shown.replace("%", "%%")


def _option_type(hint: Any) -> tuple[Any, bool]:
    """(the argparse ``type``, whether it is a bool) of a field's type hint."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        hint = next(a for a in typing.get_args(hint) if a is not type(None))
    if hint is bool:
        return None, True
    if typing.get_origin(hint) is tuple:
        return int_list, False
    return hint, False


def option_name(field_name: str, cls: type | None = None) -> str:
    """``--hidden-size`` for ``hidden_size`` (or the flag ``FLAGS`` gives the field of ``cls``)."""
    return FLAGS.get((cls, field_name), "--" + field_name.replace("_", "-"))


def add_config_options(
    parser: argparse.ArgumentParser,
    cls: type,
    title: str,
    defaults: Any,
    *,
    exclude: set[str] = frozenset(),
) -> argparse._ArgumentGroup:
    """One flag per field of dataclass ``cls`` (but ``exclude``), in a group named ``title``.

    ``defaults``: an instance whose values are the flags' defaults (a None default is shown as
    its docstring entry's "None: ...", else as "from the data": ``fit`` resolves it from the
    training split).
    """
    group = parser.add_argument_group(title)
    docs = field_docs(cls)
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in exclude:
            continue
        names = [option_name(f.name, cls), *ALIASES.get((cls, f.name), [])]
        kind, is_bool = _option_type(hints[f.name])
        default = getattr(defaults, f.name)
        help_text, none_shown = _help_text(docs.get(f.name, ""))
        if is_bool:
            action = group.add_argument(
                *names, action=argparse.BooleanOptionalAction, dest=f.name, default=default
            )
            # Set after creation: some Python versions append their own "(default: ...)".
            shown = none_shown if default is None else "%(default)s"
            action.help = f"{help_text} (default: {shown})"
            continue
        shown = none_shown if default is None else "%(default)s"
        if isinstance(default, tuple):
            shown = ",".join(map(str, default))
        choices = f.metadata.get("choices")
        group.add_argument(
            *names,
            dest=f.name,
            # A renamed flag's metavar: its name, not the field's (others: argparse's own).
            metavar=names[0][2:].replace("-", "_").upper() if (cls, f.name) in FLAGS else None,
            type=kind,
            default=default,
            choices=list(choices) if choices else None,
            help=f"{help_text} (default: {shown})",
        )
    return group


def add_model_options(parser: argparse.ArgumentParser, defaults: ClassifierConfig) -> None:
    """--rnn, --hidden-size, ...: every ``ClassifierConfig`` field but vocab_size/num_classes."""
    add_config_options(parser, ClassifierConfig, "model", defaults, exclude=NOT_OPTIONS)


def add_text_options(parser: argparse.ArgumentParser, defaults: TextConfig) -> None:
    """--vocab-size (or its older name --max-words), --max-len, ...: every ``TextConfig`` field."""
    add_config_options(parser, TextConfig, "text", defaults)


def add_training_options(parser: argparse.ArgumentParser, defaults: TrainConfig) -> None:
    """--epochs, --batch-size, ...: every ``TrainConfig`` field but its text settings (those are
    ``add_text_options``'); and --resume, --no-progress."""
    group = add_config_options(parser, TrainConfig, "training", defaults)
    group.add_argument(
        "--resume",
        action="store_true",
        help="continue the run in --output-dir from its last checkpoint",
    )
    group.add_argument("--no-progress", action="store_true", help="no progress bars")


def add_serve_options(
    parser: argparse.ArgumentParser, defaults: ServeSettings | None = None
) -> argparse._ArgumentGroup:
    """--batching, --max-wait-ms, ..., --read-timeout, --retry-after: every ``ServeSettings``
    field (the limits and batching of ``seqclf serve``)."""
    return add_config_options(parser, ServeSettings, SERVE_GROUP, defaults or ServeSettings())


def config_from(args: argparse.Namespace, cls: type, *, exclude: set[str] = frozenset()) -> Any:
    """A ``cls`` of the options given for its fields (the rest at their defaults).

    Raises:
      ValueError: ``cls`` rejects a value; the message names the flags instead of the fields.
    """
    names = [f.name for f in dataclasses.fields(cls) if f.name not in exclude]
    try:
        return cls(**{n: getattr(args, n) for n in names if hasattr(args, n)})
    except ValueError as err:
        fields = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
        raise ValueError(fields.sub(lambda m: option_name(m.group(1), cls), str(err))) from None


def config_actions(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    """The flags made from config fields (those of the model and training groups)."""
    return [
        action
        for group in parser._action_groups
        if group.title in GROUPS
        for action in group._group_actions
        if action.dest not in RUN_OPTIONS
    ]


def defaults_from_recipe(parser: argparse.ArgumentParser) -> None:
    """Leave every model, text and training option out of the parsed namespace unless it is given.

    So only what the user chose reaches ``seqclf.recipe``, which resolves the rest from the
    training split (the help says which defaults come from the data).
    """
    for action in config_actions(parser):
        if action.help and action.dest in FROM_DATA:
            action.help = action.help.replace("%(default)s", "from the data")
        if action.help and "%(default)s" in action.help:  # shown as it was, not as SUPPRESS
            action.help = action.help.replace("%(default)s", str(action.default))
        action.default = argparse.SUPPRESS


def int_list(text: str) -> tuple[int, ...]:
    """``"64,32"`` → ``(64, 32)``; ``""`` → ``()``."""
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated integers, got {text!r}"
        ) from None


def model_options_from(args: argparse.Namespace) -> dict[str, Any]:
    """The ``ClassifierConfig`` fields given on the command line."""
    names = {f.name for f in dataclasses.fields(ClassifierConfig)} - NOT_OPTIONS
    return {n: getattr(args, n) for n in names if hasattr(args, n)}


def text_config_from(args: argparse.Namespace) -> TextConfig:
    """A ``TextConfig`` of the text options given (the rest at their defaults)."""
    names = {f.name for f in dataclasses.fields(TextConfig)}
    return TextConfig(**{n: getattr(args, n) for n in names if hasattr(args, n)})


def train_config_from(args: argparse.Namespace) -> TrainConfig:
    """A ``TrainConfig`` of the training options given (the rest at their defaults)."""
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
