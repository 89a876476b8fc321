"""The "…the data is wrong" table of docs/what-happens-when.md says what the code prints.

Each row of the table (the checkpoint row aside, which another test owns) is produced here, and
every message the row quotes (a backticked snippet; ``...`` marks what it leaves out) must appear,
in order, in one of the messages the code gives for that case. The cases run in a temporary
folder with the file names the table uses (``reviews.csv``, ``test.csv``); absolute paths under
it are written ``/home/me`` in the table.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

import seqclf
from seqclf.cli import main
from seqclf.data.sources import LabelWarning, read_table
from seqclf.data.text import Vocabulary

DOC = Path(__file__).resolve().parents[1] / "docs" / "what-happens-when.md"
HOME = "/home/me"  # stands for the folder the cases run in
TINY = [
    "--embed-dim", "8", "--hidden-size", "8", "--conv-filters", "", "--rnn", "rnn",
    "--max-len", "16", "--num-buckets", "1", "--batch-size", "8", "--epochs", "1",
    "--patience", "0", "--no-progress",
]  # fmt: skip
NOT_OURS = ("checkpoint folder",)  # rows whose messages other tests check


def data_table() -> dict[str, list[str]]:
    """problem cell -> the backticked messages of its row, from the data table of the doc."""
    text = DOC.read_text("utf-8")
    section = text[text.index("**…the data is wrong.**") :]
    section = section[section.index("| problem |") :]
    rows = {}
    for line in section.splitlines()[2:]:
        if not line.startswith("|"):
            break
        problem, message = line.strip().strip("|").split(" | ", 1)
        rows[problem.strip()] = re.findall(r"`([^`]+)`", message)
    return rows


def appears(snippet: str, message: str) -> bool:
    """Whether the pieces of ``snippet`` between its ``...`` occur in ``message`` in order."""
    at = 0
    for piece in (p.strip() for p in snippet.split("...")):
        if piece:
            at = message.find(piece, at)
            if at < 0:
                return False
            at += len(piece)
    return True


class Case:
    """Runs one row's cases in ``folder`` and collects what they print."""

    def __init__(self, folder: Path, capsys, monkeypatch, request):
        self.folder, self.capsys = folder, capsys
        self.monkeypatch, self.request = monkeypatch, request
        self.messages: list[str] = []
        monkeypatch.chdir(folder)

    def write(self, name: str, text: str) -> str:
        (self.folder / name).write_text(text, "utf-8")
        return name

    def reviews(self, name: str = "reviews.csv", n: int = 24) -> str:
        rows = [f"good great {i},pos\nbad awful {i},neg" for i in range(n)]
        return self.write(name, "text,label\n" + "\n".join(rows) + "\n")

    def _keep(self, message: str) -> None:
        self.messages.append(message.replace(str(self.folder), HOME))

    def cli(self, *args) -> None:
        """``seqclf ARGS`` must fail with exit status 2; keeps all it wrote to stderr."""
        status = main([str(a) for a in args])
        err = self.capsys.readouterr().err
        assert status == 2 and "Traceback" not in err, err
        self._keep(err.strip())

    def api(self, call: Callable[[], object], error=Exception) -> None:
        with pytest.raises(error) as caught:
            call()
        self._keep(str(caught.value))

    def imdb(self) -> Path:
        return self.request.getfixturevalue("imdb_data_dir")


def utf8(c: Case) -> None:
    (c.folder / "reviews.csv").write_bytes(b"text,label\ngood,pos\nbad \xff,neg\n")
    c.cli("train", "--train", "reviews.csv", "--output-dir", "run")
    c.api(lambda: Vocabulary.build(["a b"]).encode_batch(["a"] * 7 + [b"\xff"]))


def column(c: Case) -> None:
    c.cli("train", "--train", c.reviews(), "--output-dir", "run", "--text-column", "review")


def fields(c: Case) -> None:
    c.write("reviews.csv", "text,label\ngood,pos\nslow, but fine,pos\n")
    c.cli("train", "--train", "reviews.csv", "--output-dir", "run")
    c.write("reviews.tsv", "text\tlabel\ngood\tpos\nslow\tbut fine\tpos\n")
    c.cli("train", "--train", "reviews.tsv", "--output-dir", "run")


def label_spellings(c: Case) -> None:
    c.write("reviews.csv", "text,label\na,pos\nb, pos\nc,POS\nd,neg\n")
    c.cli("train", "--train", "reviews.csv", "--output-dir", "run", "--max-len", "0")
    with pytest.warns(LabelWarning):
        read_table("reviews.csv")


def unseen_label(c: Case) -> None:
    c.write("test.csv", "text,label\ngood,pos\nbad,neg\nmeh,neutral\n")
    c.cli("train", "--train", c.reviews(), "--test", "test.csv", "--output-dir", "run", *TINY)
    assert not (c.folder / "run" / "checkpoints").exists()  # refused before training
    c.write("cased.csv", "text,label\ngood,POS\n")
    c.api(lambda: read_table("cased.csv", classes=["neg", "pos"]), ValueError)


def late_test_failure(c: Case) -> None:
    c.write("test.csv", "text,label\ngood,pos\nbad,neg\n")

    def fail(predictor, dataset, *args, **kwargs):
        raise ValueError("a failure")

    import seqclf.report  # what seqclf train --test evaluates with

    c.monkeypatch.setattr(seqclf.report, "evaluation_report", fail)
    c.cli("train", "--train", c.reviews(), "--test", "test.csv", "--output-dir", "run", *TINY)


def empty(c: Case) -> None:
    c.cli("train", "--train", c.write("reviews.csv", "text,label\n"), "--output-dir", "run")
    c.api(lambda: seqclf.read_tfds("imdb_reviews", split="test[:0]", data_dir=c.imdb()))


def one_class(c: Case) -> None:
    one = c.write("one.csv", "text,label\n" + "a,pos\nb,pos\n" * 10)
    c.cli("train", "--train", one, "--output-dir", "run")


def max_len(c: Case) -> None:
    c.cli("train", "--train", c.reviews(), "--output-dir", "run", "--max-len", "0")


def not_finite(c: Case) -> None:
    c.cli("train", "--train", c.reviews(), "--output-dir", "run", "--clip-norm", "nan")


def valid_fraction(c: Case) -> None:
    c.cli("train", "--train", c.reviews(), "--output-dir", "run", "--valid-fraction", "1.5")
    c.cli("train", "--train", c.reviews(n=4), "--output-dir", "run", "--valid-fraction", "0.01")


def output_dir(c: Case) -> None:
    c.cli("train", "--train", c.reviews(), "--output-dir", c.write("afile.txt", "x"))


def no_such_file(c: Case) -> None:
    c.cli("train", "--train", "reviews.csv", "--output-dir", "run")
    c.cli("train", "--train", "data/reviews", "--output-dir", "run")
    os.mkfifo(c.folder / "pipe.csv")
    c.cli("train", "--train", "pipe.csv", "--output-dir", "run")
    (c.folder / "texts.csv").mkdir()
    c.cli("predict", "run", "--file", "texts.csv")


def unknown_tfds(c: Case) -> None:
    data_dir = c.imdb()
    c.cli("train", "--train", "imdb_reviewz", "--data-dir", data_dir, "--output-dir", "run")
    c.cli("train", "--train", "imdb_reviews:9.9.9", "--data-dir", data_dir, "--output-dir", "run")
    c.cli("train", "--train", "mnist", "--data-dir", c.folder, "--output-dir", "run")


def tfds_data_dir(c: Case) -> None:
    c.cli("train", "--train", "imdb_reviews", "--data-dir", "tfds", "--output-dir", "run")
    (c.folder / "empty").mkdir()
    c.monkeypatch.setitem(sys.modules, "importlib_resources", None)  # something is missing
    c.cli("train", "--train", "imdb_reviews", "--data-dir", "empty", "--output-dir", "run")


def huge_header(c: Case) -> None:
    c.write("reviews.csv", "x" * 1_000_000 + ",y\n1,2\n")
    c.cli("train", "--train", "reviews.csv", "--output-dir", "run")
    assert len(c.messages[-1]) < 400


CASES: dict[str, Callable[[Case], None]] = {
    "bytes that are not UTF-8": utf8,
    "missing or misnamed column": column,
    "a CSV row with an unquoted comma, a TSV text holding a tab (more fields than the header)": fields,  # noqa: E501
    "labels that differ only in case or surrounding spaces (a note, `LabelWarning` in Python; training goes on)": label_spellings,  # noqa: E501
    "a label training never saw (`--valid`, `--test`: checked before training)": unseen_label,
    "`--test` fails after training all the same": late_test_failure,
    "empty file, split or data set": empty,
    "one class only": one_class,
    "`--max-len 0` (any bad setting)": max_len,
    "`--clip-norm nan`, `--learning-rate inf` (any float option)": not_finite,
    "`--valid-fraction` out of range or too small": valid_fraction,
    "`--output-dir` is a file": output_dir,
    "no such file or folder; a FIFO; a folder for a file": no_such_file,
    "unknown TFDS name, config or version / not text": unknown_tfds,
    "a TFDS data directory that does not exist or does not hold the set (paths made absolute)": tfds_data_dir,  # noqa: E501
    'a 50 MB "header" or label': huge_header,
}


def test_every_row_of_the_table_is_checked_here():
    rows = [p for p in data_table() if not p.startswith(NOT_OURS)]
    assert sorted(rows) == sorted(CASES)


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"the test tried to download and prepare {self.name}")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)


@pytest.mark.parametrize("problem", sorted(CASES))
def test_the_documented_message_is_the_one_printed(problem, tmp_path, capsys, monkeypatch, request):
    snippets = data_table()[problem]
    assert snippets, f"the row {problem!r} quotes no message"
    case = Case(tmp_path, capsys, monkeypatch, request)
    CASES[problem](case)
    for snippet in snippets:
        assert any(appears(snippet, m) for m in case.messages), (snippet, case.messages)
