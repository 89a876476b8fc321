"""Bad data and options, second round (issue 20, rows 1, 2, 9, 11 and 12): each case as a hostile
new user meets it, through the ``seqclf`` command run in-process (one line, exit status 2, no
traceback) or through the Python API where that is the user's path.

Nothing here downloads: ``download_and_prepare`` is replaced by a function that fails the test.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path

import pytest
import tensorflow_datasets as tfds

import seqclf
from seqclf.cli import build_parser, main
from seqclf.data import sources
from seqclf.data.sources import LabelWarning, read_dataset, read_table, read_texts

REPO = Path(__file__).resolve().parents[1]
TINY = [
    "--embed-dim", "8", "--hidden-size", "8", "--conv-filters", "", "--rnn", "rnn",
    "--max-len", "16", "--num-buckets", "1", "--batch-size", "8", "--epochs", "1",
    "--patience", "0", "--no-progress",
]  # fmt: skip


@pytest.fixture(autouse=True)
def no_downloads(monkeypatch):
    def refuse(self, *args, **kwargs):
        raise AssertionError(f"the test tried to download and prepare {self.name}")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", refuse)


def run_cli(capsys, args) -> tuple[int, str, str]:
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def cli_error(capsys, args) -> str:
    """The one error line of a ``seqclf`` command that must fail with exit status 2."""
    status, _, err = run_cli(capsys, args)
    assert status == 2, err
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert lines[-1].startswith(f"seqclf {args[0]}: error: "), err
    assert all(line.startswith(f"seqclf {args[0]}: note: ") for line in lines[:-1]), err
    return lines[-1]


def reviews(path: Path, n: int = 24) -> Path:
    words = {"pos": "good great fine", "neg": "bad awful dull"}
    rows = [f"{words[c]} {i},{c}" for i in range(n) for c in ("pos", "neg")]
    path.write_text("text,label\n" + "\n".join(rows) + "\n", "utf-8")
    return path


# ---------------------------------------------------------------------------------------------
# Row 1: rows with more fields than the header
# ---------------------------------------------------------------------------------------------


def test_a_csv_row_with_an_unquoted_comma_is_an_error_naming_the_line(tmp_path, capsys):
    data = tmp_path / "commas.csv"
    data.write_text("text,label\ngood film,pos\nslow, but fine,pos\nbad,neg\n", "utf-8")
    for read in (read_table, lambda p: list(read_texts(p))):
        with pytest.raises(ValueError, match=r"commas\.csv: line 3 has 3 fields, the header 2"):
            read(data)
    err = cli_error(capsys, ["train", "--train", data, "--output-dir", tmp_path / "out"])
    assert (
        "line 3 has 3 fields, the header 2; a text holding a comma must be in double quotes" in err
    )
    assert '("like, this"), with any " inside it doubled' in err
    data.write_text('text,label\ngood film,pos\n"slow, but fine",pos\n', "utf-8")
    assert read_table(data).texts == ["good film", "slow, but fine"]


def test_a_tsv_text_holding_a_tab_is_an_error_unless_quoted(tmp_path):
    data = tmp_path / "tabs.tsv"
    data.write_text("text\tlabel\ngood\tpos\nslow\tbut fine\tpos\n", "utf-8")
    with pytest.raises(ValueError, match="line 3 has 3 fields, the header 2; a text holding a tab"):
        read_table(data)
    with pytest.raises(ValueError, match="line 3 has 3 fields"):
        list(read_texts(data))
    data.write_text('text\tlabel\ngood\tpos\n"slow\tbut ""fine"""\tpos\n', "utf-8")
    assert read_table(data).texts == ["good", 'slow\tbut "fine"']


# ---------------------------------------------------------------------------------------------
# Row 2: labels that differ only in case or surrounding spaces
# ---------------------------------------------------------------------------------------------


def test_labels_differing_in_spaces_are_merged_and_in_case_kept_with_a_warning(tmp_path, capsys):
    data = tmp_path / "labels.csv"
    data.write_text("text,label\na,pos\nb, pos\nc,POS\nd,Neg\ne,neg\nf,neg \n", "utf-8")
    with pytest.warns(LabelWarning) as caught:
        ds = read_table(data)
    assert ds.classes == ["Neg", "POS", "neg", "pos"]  # spaces stripped, case kept
    assert ds.labels.tolist() == [3, 3, 1, 0, 2, 2]
    (message,) = [str(w.message) for w in caught]
    assert (
        "labels that differ only in surrounding spaces were read as one: 'neg', 'neg ' as 'neg'; "
        "' pos', 'pos' as 'pos'; "
    ) in message
    assert "differ only in case are different classes: 'Neg', 'neg'; 'POS', 'pos'" in message
    assert seqclf.LabelWarning is LabelWarning
    # Consistent spelling warns of nothing ("text, label" files give ' pos' everywhere).
    data.write_text("text,label\na, pos\nb, neg\n", "utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert read_table(data).classes == ["neg", "pos"]
    # The command prints the warning as a note (here before an option error stops it).
    data.write_text("text,label\na,pos\nb,POS\nc,neg\n", "utf-8")
    args = ["train", "--train", data, "--output-dir", tmp_path / "o", "--max-len", "0"]
    status, _, err = run_cli(capsys, args)
    assert status == 2
    assert err.startswith(
        f"seqclf train: note: {data}: labels that differ only in case are different classes: "
        "'POS', 'pos'\n"
    ), err
    # Against given classes, a label that differs only in case is named so.
    with pytest.raises(ValueError, match=r"label 'POS' is not .* differs only in case from 'pos'"):
        with pytest.warns(LabelWarning):
            read_table(data, classes=["neg", "pos"])


# ---------------------------------------------------------------------------------------------
# Row 9: NaN and infinite options
# ---------------------------------------------------------------------------------------------


def _float_options() -> list[str]:
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]  # noqa: SLF001
    return sorted(a.option_strings[0] for a in train._actions if a.type is float)  # noqa: SLF001


def test_every_float_option_is_found():
    assert {"--learning-rate", "--clip-norm", "--dropout", "--valid-fraction"} <= set(
        _float_options()
    )


@pytest.mark.parametrize("flag", _float_options())
@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinite_options_are_rejected_naming_the_flag(flag, value, tmp_path, capsys):
    args = ["train", "--train", reviews(tmp_path / "r.csv"), "--output-dir", tmp_path / "o"]
    err = cli_error(capsys, [*args, *TINY, f"{flag}={value}"])
    assert err == f"seqclf train: error: {flag} must be a finite number, got {float(value)}"
    assert not (tmp_path / "o").exists()


def test_nan_settings_are_rejected_by_the_configurations():
    for field in ("clip_norm", "learning_rate", "weight_decay", "end_lr_fraction"):
        with pytest.raises(ValueError, match=f"{field} must be a finite number, got nan"):
            seqclf.TrainConfig(**{field: float("nan")})
    for field in ("dropout", "embed_dropout"):
        with pytest.raises(ValueError, match=f"{field} must be in"):
            seqclf.ClassifierConfig(**{field: float("nan")})


# ---------------------------------------------------------------------------------------------
# Row 11: a TFDS data directory that does not hold the set
# ---------------------------------------------------------------------------------------------


def test_an_empty_data_dir_says_where_it_looked_and_what_to_install(tmp_path, monkeypatch):
    """On a fresh machine with TensorFlow, preparing failed inside TFDS with 60 lines ending in
    ``ModuleNotFoundError: importlib_resources``; now what is missing is named before trying."""
    empty = tmp_path / "empty"
    empty.mkdir()
    monkeypatch.setitem(sys.modules, "importlib_resources", None)  # as on a fresh machine
    with pytest.raises(RuntimeError) as caught:
        seqclf.read_tfds("imdb_reviews", data_dir=empty)
    message = str(caught.value)
    assert f"is not prepared in {empty}{os.sep}imdb_reviews" in message
    assert "pip install 'seqclf[prepare]' (missing: " in message
    assert "importlib_resources" in message.split("missing: ")[1]
    assert "pass --data-dir (data_dir=) of the folder that holds a prepared copy" in message


def test_the_prepare_extra_holds_what_preparing_imports():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    project = tomllib.loads((REPO / "pyproject.toml").read_text("utf-8"))["project"]
    prepare = " ".join(project["optional-dependencies"]["prepare"])
    for package in sources.PREPARE_PACKAGES.values():
        assert package in prepare, (package, prepare)


def test_a_relative_data_dir_from_another_folder_is_named_absolutely(tmp_path, capsys, monkeypatch):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    err = cli_error(
        capsys,
        ["train", "--train", "imdb_reviews", "--data-dir", "../shared/tensorflow_datasets",
         "--output-dir", "out"],
    )  # fmt: skip
    looked = elsewhere / ".." / "shared" / "tensorflow_datasets"
    assert f"the TFDS data directory {looked} (--data-dir, data_dir= or $TFDS_DATA_DIR)" in err
    assert "does not exist; pass the folder that holds 'imdb_reviews'" in err
    # The dataset's own folder given as the data dir: its parent is named.
    own = elsewhere / "imdb_reviews"
    own.mkdir()
    with pytest.raises(FileNotFoundError, match=f"pass its parent folder {elsewhere}"):
        seqclf.read_tfds("imdb_reviews", data_dir=own, download=False)


def test_an_unknown_config_or_version_is_one_line(imdb_data_dir):
    with pytest.raises(ValueError, match=r"TFDS dataset 'imdb_reviews:9\.9\.9': .* only: 1\.0\.0"):
        seqclf.read_tfds("imdb_reviews:9.9.9", data_dir=imdb_data_dir)  # TFDS: AssertionError


# ---------------------------------------------------------------------------------------------
# Row 12: messages
# ---------------------------------------------------------------------------------------------


def test_messages_quote_at_most_200_characters_of_the_data(tmp_path, capsys):
    huge = tmp_path / "huge.csv"
    huge.write_text("x" * 1_000_000 + ",y\n1,2\n", "utf-8")
    err = cli_error(capsys, ["train", "--train", huge, "--output-dir", tmp_path / "o"])
    assert f"{huge}: no text column 'text'; the columns are ['xxx" in err
    assert "…. Pass text_column= (--text-column)" in err
    assert len(err) < 400
    many = tmp_path / "many.jsonl"
    many.write_text('{"text": "a", "label": "%s"}\n' % ("z" * 100_000), "utf-8")
    with pytest.raises(ValueError) as caught:
        read_table(many, classes=["neg", "pos"])
    assert len(str(caught.value)) < 500 and "'zzz" in str(caught.value)


@pytest.mark.parametrize("source", ["data/reviews", "./reviews", "../x/reviews/v1", "a/b/c"])
def test_a_missing_path_without_suffix_is_no_such_file(source, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    err = cli_error(capsys, ["train", "--train", source, "--output-dir", "o"])
    assert err == (
        f"seqclf train: error: no such file or folder: {tmp_path / source} "
        "(nor a TFDS dataset of that name)"
    )


def test_a_name_tfds_cannot_parse_is_an_unknown_dataset_in_one_line(capsys, tmp_path):
    err = cli_error(capsys, ["train", "--train", "my-data", "--output-dir", tmp_path / "o"])
    assert err.endswith("unknown TFDS dataset 'my-data' (and there is no file or folder 'my-data')")


def test_a_fifo_or_a_folder_is_said_to_be_what_it_is(tmp_path, capsys):
    fifo = tmp_path / "pipe.csv"
    os.mkfifo(fifo)
    err = cli_error(capsys, ["train", "--train", fifo, "--output-dir", tmp_path / "o"])
    assert err.endswith(
        f"{fifo} is a FIFO (named pipe), not a regular file; write the data to a file first"
    )
    with pytest.raises(OSError, match="is a FIFO"):
        read_texts(fifo)
    with pytest.raises(OSError, match="is a FIFO"):
        read_dataset(fifo)
    folder = tmp_path / "texts.csv"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match=r"texts\.csv is a folder, not a file"):
        read_texts(folder)
    run = tmp_path / "run"
    run.mkdir()
    err = cli_error(capsys, ["predict", run, "--file", folder])
    assert err.endswith(f"{folder} is a folder, not a file")


def test_an_output_dir_that_is_a_file_is_named_as_the_output_dir(tmp_path, capsys):
    afile = tmp_path / "afile.txt"
    afile.write_text("x", "utf-8")
    data = reviews(tmp_path / "r.csv")
    err = cli_error(capsys, ["train", "--train", data, "--output-dir", afile, *TINY])
    assert err.endswith(
        f"--output-dir {afile} is a file, not a folder; choose another --output-dir"
    )
    err = cli_error(capsys, ["train", "--train", data, "--output-dir", afile / "run", *TINY])
    assert f"--output-dir {afile / 'run'} is inside {afile}, which is a file" in err


def test_valid_fraction_errors_name_the_flag(tmp_path, capsys):
    data = reviews(tmp_path / "r.csv", n=4)
    args = ["train", "--train", data, "--output-dir", tmp_path / "o", *TINY]
    for value in ("1.5", "0", "-0.2"):
        err = cli_error(capsys, [*args, "--valid-fraction", value])
        assert err.endswith(f"--valid-fraction must be in (0, 1), got {float(value)}")
    err = cli_error(capsys, [*args, "--valid-fraction", "0.01"])
    assert "fraction=0.01 of 8 examples leaves the validation split empty; pass another " in err
    assert "(--valid-fraction), or validation data (valid=, --valid)" in err
    with pytest.raises(ValueError, match=r"\(valid_fraction=, --valid-fraction\) must be in"):
        seqclf.train_validation_split(read_table(data), 2.0)


def test_test_labels_are_checked_before_training_and_a_late_failure_names_the_model(
    tmp_path, capsys, monkeypatch
):
    data = reviews(tmp_path / "r.csv")
    test = tmp_path / "test.csv"
    test.write_text("text,label\ngood,pos\nmeh,neutral\n", "utf-8")
    out = tmp_path / "out"
    err = cli_error(capsys, ["train", "--train", data, "--test", test, "--output-dir", out, *TINY])
    assert err.endswith(f"{test}: line 3: label 'neutral' is not one of the classes ['neg', 'pos']")
    assert not (out / "checkpoints").exists()  # nothing was trained

    def fail(predictor, dataset, *args, **kwargs):
        raise ValueError("something went wrong")

    import seqclf.report  # what seqclf train --test evaluates with

    test.write_text("text,label\ngood,pos\nbad,neg\n", "utf-8")
    monkeypatch.setattr(seqclf.report, "evaluation_report", fail)
    err = cli_error(capsys, ["train", "--train", data, "--test", test, "--output-dir", out, *TINY])
    assert f"the model was saved to {out} (best checkpoint: step " in err
    assert err.endswith("but evaluating --test failed: something went wrong")
    assert seqclf.load(out).predict(["good"])[0] in ("neg", "pos")


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A trained tiny model's output folder."""
    folder = tmp_path_factory.mktemp("tiny_run")
    data = reviews(folder / "r.csv")
    assert main(["train", "--train", str(data), "--output-dir", str(folder / "run"), *TINY]) == 0
    return folder / "run"


def test_empty_texts_of_a_file_are_named_by_line(tiny_run, tmp_path, capsys):
    """Positions in a list of texts count from 0 (``texts[i]``); places in a file are lines,
    counted from 1: the note of ``predict --file`` gives both."""
    lines = tmp_path / "notes.txt"
    lines.write_text("good\n\n…\ngreat\n", "utf-8")  # "…": no token
    status, out, err = run_cli(capsys, ["predict", tiny_run, "--file", lines])
    assert status == 0 and len(out.splitlines()) == 5
    assert "2 of 4 texts have no tokens" in err and "at position(s) 1, 2;" in err
    assert err.rstrip().endswith(f"; in {lines} these are line 2, line 3")
    table = tmp_path / "notes.csv"  # a quoted text over two lines, a blank line, then empty text
    table.write_text('text\n"good\nfilm"\n\nbad\n""\n', "utf-8")
    status, out, err = run_cli(capsys, ["predict", tiny_run, "--file", table])
    assert status == 0
    assert "1 of 3 texts have no tokens" in err and "at position(s) 2;" in err
    assert err.rstrip().endswith(f"; in {table} these are line 6")
    with pytest.warns(seqclf.EmptyTextWarning, match=r"position\(s\) 0, 2") as caught:
        seqclf.load(tiny_run).predict(["", "good", "— …"])
    assert caught[0].message.positions == [0, 2]
