"""The command-line options are generated from the configuration dataclasses: they cannot drift."""

from __future__ import annotations

import dataclasses

import pytest

from seqclf.cli import build_parser
from seqclf.cli_options import (
    NOT_OPTIONS,
    RUN_OPTIONS,
    config_actions,
    field_docs,
    int_list,
    text_config_from,
    train_config_from,
)
from seqclf.data.preprocessing import TRAIN_FIELDS, TextConfig
from seqclf.model import ClassifierConfig
from seqclf.train import TrainConfig

CONFIGS = (ClassifierConfig, TextConfig, TrainConfig)


def train_parser():
    sub = next(a for a in build_parser()._actions if a.dest == "command")
    return sub.choices["train"]


def option_fields(cls):
    names = {f.name for f in dataclasses.fields(cls)}
    left_out = {ClassifierConfig: NOT_OPTIONS}.get(cls, set())
    return names - left_out


def test_every_field_has_a_flag_and_every_flag_a_field():
    dests = [a.dest for a in config_actions(train_parser())]
    fields = set().union(*(option_fields(c) for c in CONFIGS))
    assert sorted(dests) == sorted(fields)  # and no field twice
    assert set(TRAIN_FIELDS) <= set(dests)  # the text settings, by their TextConfig names


@pytest.mark.parametrize("cls", CONFIGS)
def test_every_field_is_documented_and_no_entry_names_a_missing_field(cls):
    assert set(field_docs(cls)) == {f.name for f in dataclasses.fields(cls)}


def test_help_is_the_fields_doc_with_its_default_once():
    parser = train_parser()
    helps = {a.dest: a.help for a in config_actions(parser)}
    for dest, text in helps.items():
        assert text and text.count("(default:") == 1, (dest, text)
    assert helps["hidden_size"].startswith("recurrent hidden size H")
    text = parser.format_help()
    assert "(default: from the data)" in text
    assert "%(default)" not in text and "SUPPRESS" not in text
    for name in ("pool_size", "nb_buckets", "epochs", "batch_size", "max_len"):
        assert helps[name].endswith("(default: from the data)"), name
    assert helps["embed_dim"].endswith("(default: 128)")
    assert helps["bidirectional"].endswith("(default: True)")


def test_choices_are_exactly_what_the_config_accepts():
    for action in config_actions(train_parser()):
        if not action.choices:
            continue
        cls = next(c for c in CONFIGS if action.dest in option_fields(c))
        for value in action.choices:
            cls(**{action.dest: value})
        with pytest.raises(ValueError, match=action.dest):
            cls(**{action.dest: "no-such-" + action.dest})


def test_flags_parse_to_the_field_types():
    args = train_parser().parse_args(
        [
            "--train",
            "t.csv",
            "--output-dir",
            "o",
            "--conv-filters",
            "8,4",
            "--no-bidirectional",
            "--learning-rate",
            "0.01",
            "--epochs",
            "2",
        ]
    )
    assert args.conv_filters == (8, 4) and args.bidirectional is False
    assert args.learning_rate == 0.01 and args.epochs == 2
    assert train_config_from(args) == TrainConfig(learning_rate=0.01, epochs=2)
    assert not hasattr(args, "hidden_size")  # not given: left to the recipe
    assert int_list("") == ()
    assert {"resume", "no_progress"} == RUN_OPTIONS


def test_text_flags_make_the_text_config_and_the_older_vocabulary_flag_still_works():
    base = ["--train", "t.csv", "--output-dir", "o"]
    for flag in ("--vocab-size", "--max-words"):
        args = train_parser().parse_args([*base, flag, "300", "--max-len", "50"])
        assert text_config_from(args) == TextConfig(vocab_size=300, max_len=50)
        assert train_config_from(args) == TrainConfig()  # the text settings are not in it
