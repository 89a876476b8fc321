"""The ``seqclf`` command and examples/imdb.py: help, and a short train → evaluate → predict."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path

import pytest

import seqclf
from seqclf.cli import main

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--embed-dim",
    "16",
    "--conv-filters",
    "8",
    "--conv-kernel-size",
    "3",
    "--pool-size",
    "2",
    "--hidden-size",
    "16",
    "--max-len",
    "64",
    "--num-buckets",
    "1",
    "--max-words",
    "3000",
    "--batch-size",
    "32",
    "--epochs",
    "2",
    "--no-progress",
]


def test_console_script_is_installed_and_helps():
    (script,) = [e for e in entry_points(group="console_scripts") if e.name == "seqclf"]
    assert script.value == "seqclf.cli:main"
    out = subprocess.run(
        [sys.executable, "-m", "seqclf.cli", "--help"], capture_output=True, text=True, check=True
    ).stdout
    for command in ("train", "evaluate", "predict"):
        assert command in out


def test_train_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for option in (
        "--train",
        "--valid",
        "--text-column",
        "--label-column",
        "--output-dir",
        "--epochs",
        "--max-len",
        "--rnn",
        "--bidirectional",
        "--resume",
    ):
        assert option in out


def test_imdb_example_help_lists_the_options():
    out = subprocess.run(
        [sys.executable, str(REPO / "examples" / "imdb.py"), "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for option in ("--data-dir", "--epochs", "--max-len", "--output-dir", "--resume", "--rnn"):
        assert option in out


@pytest.fixture(scope="module")
def review_files(imdb_data_dir, tmp_path_factory):
    """A CSV to train on and a JSON Lines file to evaluate on, with string labels."""
    folder = tmp_path_factory.mktemp("reviews")
    train = seqclf.read_tfds(split="train[:600]", data_dir=imdb_data_dir)
    test = seqclf.read_tfds(split="test[:100]", data_dir=imdb_data_dir)
    with open(folder / "train.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["review", "sentiment"])
        for text, label in zip(train.texts, train.labels, strict=True):
            writer.writerow([text, train.classes[label]])
    with open(folder / "test.jsonl", "w") as f:
        for text, label in zip(test.texts, test.labels, strict=True):
            f.write(json.dumps({"review": text, "sentiment": test.classes[label]}) + "\n")
    return folder


def test_train_evaluate_predict_on_own_files(review_files, tmp_path, capsys):
    out = tmp_path / "model"
    columns = ["--text-column", "review", "--label-column", "sentiment"]
    status = main(
        [
            "train",
            "--train",
            str(review_files / "train.csv"),
            *columns,
            "--output-dir",
            str(out),
            *TINY,
        ]
    )
    assert status == 0
    assert "Saved to" in capsys.readouterr().out
    assert seqclf.load(out).classes == ["neg", "pos"]

    status = main(["evaluate", str(out), "--data", str(review_files / "test.jsonl"), *columns])
    assert status == 0
    metrics = json.loads(capsys.readouterr().out)
    assert set(metrics) == {"loss", "accuracy"} and 0.0 <= metrics["accuracy"] <= 1.0

    status = main(["predict", str(out), "what a wonderful film", "utterly boring"])
    assert status == 0
    rows = list(csv.reader(capsys.readouterr().out.splitlines()))
    assert rows[0] == ["label", "p_neg", "p_pos", "text"]
    assert [r[3] for r in rows[1:]] == ["what a wonderful film", "utterly boring"]
    assert all(r[0] in ("neg", "pos") for r in rows[1:])
    assert all(abs(float(r[1]) + float(r[2]) - 1) < 1e-3 for r in rows[1:])

    lines = tmp_path / "texts.txt"
    lines.write_text("great\nterrible\nfine\n")
    status = main(["predict", str(out), "--file", str(lines), "--output", str(tmp_path / "p.csv")])
    assert status == 0
    assert len((tmp_path / "p.csv").read_text().splitlines()) == 4


def test_errors_are_one_sentence_and_exit_status_2(tmp_path, capsys):
    status = main(["predict", str(tmp_path / "nowhere"), "text"])
    assert status == 2
    err = capsys.readouterr().err
    assert err.startswith("seqclf predict: error:") and "does not exist" in err
    assert "Traceback" not in err
