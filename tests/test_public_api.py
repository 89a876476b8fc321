"""The public API by intention: what ``seqclf.__all__`` lists, short reprs, a quiet load, help
text that says each default once."""

from __future__ import annotations

import argparse
import ast
import subprocess
import sys
import textwrap
from pathlib import Path

import jax
import pytest

import seqclf
from seqclf.cli import build_parser

REPO = Path(__file__).resolve().parents[1]


def test_all_lists_what_users_need_and_no_internals():
    for name in seqclf.__all__:
        value = getattr(seqclf, name)
        assert not isinstance(value, (dict, list, tuple, set, jax.Array)), name  # no tables
        assert not hasattr(value, "lower"), name  # no jit-compiled functions
    internals = {"train_step", "eval_step", "create_train_state", "evaluate", "TrainState",
                 "LossWatch", "keep_freed_memory", "MicroBatcher", "CheckpointStore", "batches",
                 "load_table", "load_tfds", "load_folder", "load_any"}  # fmt: skip
    assert not internals & set(seqclf.__all__)
    needed = {"read_table", "read_folder", "read_tfds", "read_dataset", "TextConfig", "fit",
              "Classifier", "build_classifier", "load", "Predictor", "TrainConfig"}  # fmt: skip
    assert needed <= set(seqclf.__all__)
    # The training loop's pieces are still there, where they live.
    assert callable(seqclf.train.train_step) and callable(seqclf.cpu_allocator.keep_freed_memory)


def test_the_type_checking_imports_are_the_names_of_all():
    """mkdocstrings reads the TYPE_CHECKING imports: they must be exactly ``__all__``."""
    tree = ast.parse((REPO / "seqclf" / "__init__.py").read_text())
    block = next(
        n for n in tree.body if isinstance(n, ast.If) and "TYPE_CHECKING" in ast.unparse(n.test)
    )
    imported = {a.asname or a.name for n in block.body for a in n.names}
    assert imported == set(seqclf.__all__)


def test_a_predictor_and_a_run_print_in_one_line(tmp_path):
    from test_text_config import write_checkpoint

    predictor = seqclf.load(write_checkpoint(tmp_path / "run", old=False))
    text = repr(predictor)
    assert len(text) < 300 and "\n" not in text and "Array" not in text
    assert "classes=['neg', 'pos']" in text and "max_len=2" in text


def test_a_normal_load_prints_no_library_warnings(tmp_path):
    """In a fresh process (logging as a user's script has it): nothing on stderr, no warning."""
    from test_text_config import write_checkpoint

    run = write_checkpoint(tmp_path / "run", old=False)
    script = textwrap.dedent(f"""
        import warnings
        import seqclf
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            predictor = seqclf.load({str(run)!r})
            predictor.predict(["a good film"])
        print(len(caught), [str(w.message) for w in caught])
    """)
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, check=True
    )
    assert out.stdout.startswith("0 []"), out.stdout
    assert out.stderr == "", out.stderr


def subparsers():
    sub = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction))
    return sub.choices.items()


@pytest.mark.parametrize("command", [name for name, _ in subparsers()])
def test_every_help_says_each_default_at_most_once(command):
    parser = dict(subparsers())[command]
    formatter = parser._get_formatter()
    for action in parser._actions:
        if action.help:
            text = formatter._expand_help(action) if hasattr(formatter, "_expand_help") else ""
            assert text.count("(default:") <= 1, (command, action.dest, text)
            assert "None)" not in text and "SUPPRESS" not in text, (command, action.dest, text)
