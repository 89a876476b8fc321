"""Bad input, interruption, divergence, determinism and loaded models under load.

Bad input: every case gives one message that names the problem and where, checked through the
``seqclf`` command run in-process (exit status 2, ``seqclf <cmd>: error: ...`` on stderr) or the
Python API where that is the user-facing path.

Interruption: ``seqclf train`` runs as a real subprocess that is SIGKILLed mid-epoch, resumed,
stopped by SIGTERM, resumed again, and must end bitwise equal to an uninterrupted run; a NaN loss
stops training naming the step. The subprocesses share a JAX persistent compilation cache (in this
module's temporary folder) so that only the first one pays for compiling; a cached executable is
the program a fresh compile gives, and ``tests/test_train.py`` checks in-process resumption with
fresh compiles.

Determinism: two runs in one process and a run in another process give identical parameters and
metrics (``seconds`` aside), bitwise on CPU.
"""

from __future__ import annotations

import csv
import dataclasses
import gc
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import jax
import numpy as np
import pytest

import seqclf
from seqclf.cli import main
from seqclf.predict import CHUNK_TEXTS, EmptyTextWarning
from seqclf.training import loop as loop_module

REPO = Path(__file__).resolve().parents[1]
N_ROWS = 300
# 270 training rows (10% held out for validation) in batches of 8: 34 steps per epoch.
STEPS_PER_EPOCH = 34
SAVE_EVERY = 5
TRAIN_OPTIONS = [
    "--embed-dim", "16", "--conv-filters", "", "--hidden-size", "16", "--rnn", "rnn",
    "--max-len", "32", "--num-buckets", "1", "--max-words", "2000", "--batch-size", "8",
    "--epochs", "2", "--patience", "0", "--save-every", str(SAVE_EVERY), "--no-progress",
]  # fmt: skip

# The child process for runs that must be slowed down (so a signal lands mid-epoch) or poisoned
# (a NaN loss at a chosen step). It wraps seqclf.training.step.train_step_in_place (the step
# train_epoch calls) and runs the seqclf command.
CHILD = """
import os, sys, time
import jax, jax.numpy as jnp
from seqclf.training import step as train
from seqclf.cli import main

delay = float(os.environ.get("SEQCLF_TEST_STEP_DELAY", "0"))
nan_at = int(os.environ.get("SEQCLF_TEST_NAN_AT", "-1"))
real_step = train.train_step_in_place

def step(state, batch):
    time.sleep(delay)
    if int(state.step) == nan_at:
        state = state.replace(params=jax.tree_util.tree_map(lambda p: p * jnp.nan, state.params))
    return real_step(state, batch)

train.train_step_in_place = step
sys.exit(main(sys.argv[1:]))
"""

# Several runs of the seqclf command in one process: a JSON list of argument lists.
SAME_PROCESS = """
import json, sys
from seqclf.cli import main

for args in json.loads(sys.argv[1]):
    assert main(args) == 0, args
"""


# ---------------------------------------------------------------------------------------------
# Data, subprocess runs and the reference (uninterrupted) run
# ---------------------------------------------------------------------------------------------

POSITIVE = "good great excellent wonderful loved superb moving".split()
NEGATIVE = "bad awful boring terrible hated dull poor".split()
FILLER = "the a movie film plot actor scene it was and of story its this".split()


def synthetic_reviews(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``n`` short reviews and their labels ("neg"/"pos"): filler words plus a few sentiment
    words of the review's class."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        positive = bool(rng.integers(2))
        words = list(rng.choice(FILLER, rng.integers(3, 40)))
        words += list(rng.choice(POSITIVE if positive else NEGATIVE, rng.integers(1, 4)))
        rng.shuffle(words)
        texts.append(" ".join(words))
        labels.append("pos" if positive else "neg")
    return texts, labels


def write_csv(path: Path, rows: list[tuple[str, str]], header=("text", "label")) -> Path:
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    return path


@dataclasses.dataclass
class Lab:
    """This module's folder, data and subprocess environment; the runs started with it."""

    root: Path
    data: Path
    env: dict[str, str]
    runs: dict[str, subprocess.Popen] = dataclasses.field(default_factory=dict)
    killed: dict[str, object] = dataclasses.field(default_factory=dict)

    def train_args(self, out: Path) -> list[str]:
        return ["train", "--train", str(self.data), "--output-dir", str(out), *TRAIN_OPTIONS]

    def start(self, args: list[str], name: str, script: str | None = None, **env: str):
        """``seqclf <args>`` in a new process (through CHILD when ``env`` asks for a slow or
        poisoned step, or through ``script``); stdout and stderr go to ``<name>.out/.err``."""
        script = script or (CHILD if env else None)
        command = [sys.executable, "-c", script] if script else [sys.executable, "-m", "seqclf.cli"]
        with (
            open(self.root / f"{name}.out", "w") as out,
            open(self.root / f"{name}.err", "w") as err,
        ):
            proc = subprocess.Popen(
                command + args, cwd=REPO, env={**self.env, **env}, stdout=out, stderr=err
            )
        self.runs[name] = proc
        return proc

    def output(self, name: str) -> tuple[str, str]:
        return (self.root / f"{name}.out").read_text(), (self.root / f"{name}.err").read_text()

    def finish(self, proc: subprocess.Popen, name: str, timeout: float = 300) -> str:
        """Wait for a run that must succeed; its stdout."""
        proc.wait(timeout=timeout)
        out, err = self.output(name)
        assert proc.returncode == 0, f"{name} exited {proc.returncode}:\n{out}\n{err}"
        return out

    def reference_dir(self) -> Path:
        """The uninterrupted run (started with the module, waited for here)."""
        self.finish(self.runs["reference"], "reference")
        return self.root / "reference"


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Lab:
    root = tmp_path_factory.mktemp("reliability")
    texts, labels = synthetic_reviews(N_ROWS)
    data = write_csv(root / "reviews.csv", list(zip(texts, labels, strict=True)))
    env = {
        **os.environ,
        "JAX_PLATFORMS": "cpu",
        "JAX_COMPILATION_CACHE_DIR": str(root / "jax_cache"),
        "JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0",
        "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "0",
    }
    lab = Lab(root, data, env)
    # Started now, they train while the tests that need no model run. The reference runs the
    # command twice in one process (the second run checks determinism within a process).
    both = [lab.train_args(root / "reference"), lab.train_args(root / "same_process")]
    lab.start([json.dumps(both)], "reference", script=SAME_PROCESS)
    # Slowed down so that it is still in epoch 1 when it is killed, by a thread watching it.
    run = lab.start(lab.train_args(root / "interrupted"), "killed", SEQCLF_TEST_STEP_DELAY="0.05")
    killer = threading.Thread(target=kill_after_checkpoint, args=(run, root / "interrupted", lab))
    killer.start()
    yield lab
    killer.join()
    for proc in lab.runs.values():
        if proc.poll() is None:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def predictor(lab) -> seqclf.Predictor:
    return seqclf.load(lab.reference_dir())


def run_cli(capsys, args: list[str]) -> tuple[int, str, str]:
    """``seqclf <args>`` in this process: (exit status, stdout, stderr)."""
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def cli_error(capsys, args: list[str]) -> str:
    """The one-line error of a ``seqclf`` command that must fail with exit status 2."""
    status, _, err = run_cli(capsys, args)
    command = args[0]
    assert status == 2, err
    assert err.startswith(f"seqclf {command}: error: "), err
    assert "Traceback" not in err
    return err.strip()


def steps_in(out: Path) -> list[int]:
    folder = out / "checkpoints"
    return (
        sorted(int(p.name) for p in folder.iterdir() if p.name.isdigit()) if folder.is_dir() else []
    )


def wait_for_checkpoint(
    proc: subprocess.Popen, out: Path, beyond: int, timeout: float = 300
) -> int:
    """Poll until ``out`` holds a checkpoint after step ``beyond``; its step."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        later = [s for s in steps_in(out) if s > beyond]
        if later:
            return max(later)
        assert proc.poll() is None, f"the run ended (exit {proc.returncode}) before step {beyond}"
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"no checkpoint after step {beyond} within {timeout} s")


def kill_after_checkpoint(proc: subprocess.Popen, out: Path, lab: Lab) -> None:
    """SIGKILL ``proc`` once its second checkpoint is written (mid-epoch 1, maybe mid-save)."""
    try:
        lab.killed["after_step"] = wait_for_checkpoint(proc, out, beyond=SAVE_EVERY)
        proc.send_signal(signal.SIGKILL)
    except BaseException as err:  # reported by the test that uses the run
        lab.killed["error"] = err
        proc.kill()
    proc.wait()


def params_of(out: Path, step: int | None = None):
    store = seqclf.checkpoint.CheckpointStore(out, create=False)
    try:
        return store.restore_params(store.latest_step() if step is None else step)
    finally:
        store.close()


def assert_same_params(a, b) -> None:
    leaves_a, tree_a = jax.tree_util.tree_flatten(a)
    leaves_b, tree_b = jax.tree_util.tree_flatten(b)
    assert tree_a == tree_b
    for x, y in zip(leaves_a, leaves_b, strict=True):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))  # bitwise


def history_of(out: Path) -> list[dict]:
    """metrics.jsonl without the wall-clock seconds."""
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(x).items() if k != "seconds"} for x in lines]


def assert_every_checkpoint_restores(out: Path) -> list[int]:
    store = seqclf.checkpoint.CheckpointStore(out, create=False)
    try:
        for step in store.all_steps():
            assert store.restore_meta(step)["format"] == "seqclf-checkpoint-1"
            leaves = jax.tree_util.tree_leaves(store.restore_params(step))
            assert leaves and all(np.isfinite(np.asarray(x)).all() for x in leaves)
        return store.all_steps()
    finally:
        store.close()


# ---------------------------------------------------------------------------------------------
# Bad data: one message naming the problem and where (no model needed)
# ---------------------------------------------------------------------------------------------


def test_misnamed_text_and_label_columns_are_named_with_the_real_ones(lab, capsys):
    err = cli_error(capsys, [*lab.train_args(lab.root / "x"), "--text-column", "review"])
    assert f"{lab.data}: no text column 'review'" in err
    assert "the columns are ['text', 'label']" in err and "--text-column" in err
    err = cli_error(capsys, [*lab.train_args(lab.root / "x"), "--label-column", "lable"])
    assert "no label column 'lable' (did you mean 'label'?)" in err


def test_bytes_that_are_not_utf8_name_the_file_and_line(lab, capsys):
    bad = lab.root / "latin1.csv"
    bad.write_bytes("text,label\ngood,pos\ncaf\xe9 au lait,neg\n".encode("latin-1"))
    err = cli_error(capsys, ["train", "--train", bad, "--output-dir", lab.root / "x"])
    assert f"{bad}: line 3 is not valid UTF-8" in err


def test_empty_data_and_splits_say_which(lab, capsys, imdb_data_dir):
    header_only = write_csv(lab.root / "header_only.csv", [])
    err = cli_error(capsys, ["train", "--train", header_only, "--output-dir", lab.root / "x"])
    assert err.endswith(f"{header_only} has no rows")
    with pytest.raises(ValueError, match=r"split 'test\[:0\]' is empty \(0 examples\)"):
        seqclf.read_tfds("imdb_reviews", split="test[:0]", data_dir=imdb_data_dir)
    tiny = write_csv(lab.root / "tiny.csv", [("good", "pos"), ("bad", "neg")] * 3)
    err = cli_error(capsys, ["train", "--train", tiny, "--output-dir", lab.root / "x"])
    assert "fraction=0.1 of 6 examples leaves the validation split empty" in err


def test_a_single_class_in_training_data_is_named(lab, capsys):
    one = write_csv(lab.root / "one_class.csv", [("nice", "pos"), ("fine", "pos")] * 10)
    err = cli_error(capsys, ["train", "--train", one, "--output-dir", lab.root / "x"])
    assert "the training data has a single class ('pos'); a classifier needs at least two" in err


def test_max_len_zero_or_negative_is_rejected(lab, capsys):
    for value in ("0", "-3"):
        args = [*lab.train_args(lab.root / "x"), "--max-len", value]
        err = cli_error(capsys, args)
        assert f"invalid text configuration: max_len must be >= 1, got {value}" in err


def test_unknown_tfds_name_and_non_text_feature(lab, capsys, imdb_data_dir, tmp_path):
    err = cli_error(
        capsys, ["train", "--train", "imdb_reviewz", "--data-dir", imdb_data_dir,
                 "--output-dir", lab.root / "x"]
    )  # fmt: skip
    assert "unknown TFDS dataset 'imdb_reviewz'; did you mean 'imdb_reviews'?" in err
    assert "there is no file or folder 'imdb_reviewz'" in err
    err = cli_error(
        capsys, ["train", "--train", "mnist", "--data-dir", tmp_path, "--output-dir", tmp_path]
    )
    assert "TFDS dataset 'mnist' is not a text dataset: its supervised input 'image'" in err


def test_a_batch_larger_than_the_data_warns_and_trains_on_all_of_it(monkeypatch):
    """Decision: like Keras (which takes a smaller batch), train; each step sees every example.
    The batch is padded with weight-0 rows, so the step is that of one batch of all the data."""
    seen = {}

    class Stop(Exception):
        pass

    def create_train_state(model, config, total_steps, example_batch, **kwargs):
        seen["total_steps"] = total_steps
        raise Stop

    monkeypatch.setattr(loop_module, "create_train_state", create_train_state)
    ids = [np.array([2, 3, 4])] * 30
    labels = np.array([0, 1] * 15)
    # 200 > 30 rows (but not 10x more: that is clamped, tests/test_recipe.py)
    config = seqclf.TrainConfig(batch_size=200, epochs=3)
    with pytest.warns(UserWarning, match=r"batch_size 200 is larger than the training set "
                      r"\(30 examples\): every step uses all 30 of them"):  # fmt: skip
        with pytest.raises(Stop):
            seqclf.train.fit(
                None, (ids, labels), (ids, labels), config, text=seqclf.TextConfig(max_len=8),
                progress=False,
            )  # fmt: skip
    assert seen["total_steps"] == 3  # one step per epoch


def test_missing_and_empty_checkpoint_directories(tmp_path, capsys):
    err = cli_error(capsys, ["predict", tmp_path / "nowhere", "text"])
    assert f"checkpoint directory {tmp_path / 'nowhere'} does not exist" in err
    err = cli_error(capsys, ["predict", tmp_path, "text"])
    assert f"{tmp_path} holds no checkpoints (expected a 'checkpoints/' folder" in err
    (tmp_path / "checkpoints").mkdir()
    err = cli_error(capsys, ["evaluate", tmp_path, "--data", "x.csv"])
    assert f"{tmp_path / 'checkpoints'} is empty: no checkpoint was saved there" in err
    (tmp_path / "checkpoints" / "17.orbax-checkpoint-tmp-1234").mkdir()
    err = cli_error(capsys, ["predict", tmp_path, "text"])
    assert "holds only partly written checkpoints (17.orbax-checkpoint-tmp-1234)" in err


# ---------------------------------------------------------------------------------------------
# Checkpoints that are damaged or belong to another model
# ---------------------------------------------------------------------------------------------


def copy_of(lab: Lab, name: str) -> Path:
    out = lab.root / name
    shutil.copytree(lab.reference_dir(), out)
    return out


def test_empty_evaluation_split_is_named(lab, capsys, imdb_data_dir):
    args = ["evaluate", lab.reference_dir(), "--data", "imdb_reviews", "--split", "test[:0]"]
    err = cli_error(capsys, [*args, "--data-dir", imdb_data_dir])
    assert err.endswith("TFDS dataset 'imdb_reviews': split 'test[:0]' is empty (0 examples)")


# orbax leaves the reads it started behind when one fails; collected later, they trip pytest's
# unraisable-exception hook (a plain `seqclf` process prints nothing of them: one line, tested).
ORBAX_LEFTOVERS = pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")


def test_damaged_checkpoint_names_the_step_folder(lab):
    """In a real process, to see all it prints: exactly one line."""
    out = copy_of(lab, "damaged")
    for step in steps_in(out):
        for f in (out / "checkpoints" / str(step) / "state").rglob("*"):
            if f.is_file() and f.parent.name == "d":
                f.write_bytes(b"")  # truncated array data, as an interrupted copy leaves it
    run = lab.start(["predict", str(out), "good film"], "damaged")
    run.wait(timeout=300)
    stdout, err = lab.output("damaged")
    assert run.returncode == 2 and stdout == ""
    assert len(err.splitlines()) == 1, err
    assert err.startswith(f"seqclf predict: error: checkpoint {out.resolve() / 'checkpoints'}/")
    assert re.search(r"is damaged or incomplete: (its 'state' part|array \S+) cannot be read", err)
    assert "is not valid for value of size 0" in err  # what TensorStore says, not orbax's wrapper
    assert "<bound method" not in err
    # Every step is damaged: no "earlier checkpoint" to point to.
    assert err.rstrip().endswith(
        "The run has no other checkpoint: train it again (or restore a backup)."
    )


@ORBAX_LEFTOVERS
def test_checkpoint_of_another_configuration_or_vocabulary(lab, capsys):
    out = copy_of(lab, "other_model")
    err = cli_error(capsys, [*lab.train_args(out), "--hidden-size", "32", "--resume"])
    assert (
        "belongs to a different model configuration (saved vs now: {'hidden_size': (16, 32)})"
        in err
    )

    # Arrays of another vocabulary size: the mismatching parameter is named with both shapes.
    store = seqclf.checkpoint.CheckpointStore(out, create=False)
    target = _raw_state(store)
    words, dim = target["params"]["embedding"]["embedding"].shape
    target["params"]["embedding"]["embedding"] = np.zeros((words + 7, dim), np.float32)
    with pytest.raises(seqclf.CheckpointError) as info:
        store.restore_state(target)
    store.close()
    gc.collect()
    message = str(info.value)
    assert "does not fit this model (another model configuration or vocabulary)" in message
    shapes = f"is ({words}, {dim}) in the checkpoint, ({words + 7}, {dim}) here"
    assert f"params/embedding/embedding {shapes}" in message

    # A vocabulary that does not match the saved model (a hand-edited or mixed-up checkpoint).
    for step in steps_in(out):
        meta_file = out / "checkpoints" / str(step) / "meta" / "metadata"
        meta = json.loads(meta_file.read_text())
        meta["vocabulary"]["words"] = meta["vocabulary"]["words"][:-1]
        meta_file.write_text(json.dumps(meta))
    err = cli_error(capsys, ["predict", out, "--file", lab.data])
    assert f"vocabulary has {words - 1} ids but the model expects {words}" in err


def _raw_state(store: seqclf.checkpoint.CheckpointStore):
    import orbax.checkpoint as ocp

    step = store.latest_step()
    return store.manager.restore(step, args=ocp.args.Composite(state=ocp.args.StandardRestore()))[
        "state"
    ]


# ---------------------------------------------------------------------------------------------
# Prediction and evaluation with odd texts and labels
# ---------------------------------------------------------------------------------------------


def test_empty_and_whitespace_texts_are_classified_and_reported(lab, predictor, capsys):
    texts = ["", "   \t", "a great film", "… “”", "awful"]  # "…" and quotes: no token
    with pytest.warns(
        EmptyTextWarning, match=r"3 of 5 texts have no tokens .* position\(s\) 0, 1, 3"
    ):
        probs = predictor.predict_proba(texts)
    assert probs.shape == (5, 2) and np.allclose(probs.sum(axis=1), 1, atol=1e-5)
    np.testing.assert_array_equal(probs[0], probs[1])  # both are "no tokens"

    status, out, err = run_cli(capsys, ["predict", lab.reference_dir(), *texts])
    assert status == 0
    rows = list(csv.reader(out.splitlines()))
    assert rows[0] == ["label", "p_neg", "p_pos", "text"] and len(rows) == 6
    assert "seqclf predict: note: 3 of 5 texts have no tokens" in err


def test_texts_that_are_not_utf8_are_named_by_position(lab, predictor, capsys):
    with pytest.raises(
        ValueError, match=r"text 1 is not valid UTF-8 \(invalid start byte at byte 4\)"
    ):
        predictor.predict_proba([b"fine", b"bad \xff"])
    # The position counts across streaming chunks.
    texts = ["fine"] * (CHUNK_TEXTS + 5) + [b"\xc3"]
    with pytest.raises(ValueError, match=f"text {CHUNK_TEXTS + 5} is not valid UTF-8"):
        predictor.predict_proba(texts)
    lines = lab.root / "lines.txt"
    lines.write_bytes(b"good\nalso good\nnot \xff good\n")
    err = cli_error(capsys, ["predict", lab.reference_dir(), "--file", lines])
    assert f"{lines}: line 3 is not valid UTF-8" in err


def test_predict_file_reads_the_named_text_column(lab, capsys):
    err = cli_error(capsys, ["predict", lab.reference_dir(), "--file", lab.data,
                             "--text-column", "body"])  # fmt: skip
    assert f"{lab.data}: no text column 'body'; the columns are ['text', 'label']" in err
    status, out, _ = run_cli(capsys, ["predict", lab.reference_dir(), "--file", lab.data])
    assert status == 0 and len(out.splitlines()) == N_ROWS + 1


def test_a_label_unseen_in_training_is_named_at_evaluation(lab, capsys):
    rows = [("good", "pos"), ("bad", "neg"), ("meh", "neutral"), ("so so", "neutral")]
    data = write_csv(lab.root / "with_neutral.csv", rows)
    err = cli_error(capsys, ["evaluate", lab.reference_dir(), "--data", data])
    assert (
        "never seen in training: label 'neutral' (2 example(s), the first at position 2); "
        "the model knows only ['neg', 'pos']"
    ) in err
    # When training with --valid, the same label is caught while reading, by line.
    err = cli_error(capsys, [*lab.train_args(lab.root / "x"), "--valid", data])
    assert f"{data}: line 4: label 'neutral' is not one of the classes ['neg', 'pos']" in err


# ---------------------------------------------------------------------------------------------
# Loaded models under load
# ---------------------------------------------------------------------------------------------


def test_a_predictor_shared_by_threads_gives_single_thread_results(predictor):
    texts, _ = synthetic_reviews(500, seed=5)
    texts[::50] = [""] * 10  # the empty-text warning is raised from every thread too
    with pytest.warns(EmptyTextWarning):
        expected = predictor.predict_proba(texts)
    results: list[np.ndarray] = []
    errors: list[BaseException] = []
    start = threading.Barrier(4)

    def work() -> None:
        try:
            start.wait()  # all four at once
            for _ in range(3):
                results.append(predictor.predict_proba(texts))
        except BaseException as err:  # reported below
            errors.append(err)

    threads = [threading.Thread(target=work) for _ in range(4)]
    with pytest.warns(EmptyTextWarning):
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert not errors, errors
    assert len(results) == 12
    for probs in results:
        np.testing.assert_array_equal(probs, expected)  # bitwise


def test_a_small_call_runs_in_half_the_rows_and_predicts_the_same(predictor):
    """A call of at most half a batch is padded to half the rows (row_sizes), and its texts get
    what they get among a full batch of others; the results go back in input order."""
    texts, _ = synthetic_reviews(80, seed=11)
    rows = {r: [] for r in predictor.row_sizes}
    forward = predictor._forward
    try:  # record the rows of every device call
        predictor._forward = lambda p, tokens, lengths: (
            rows[tokens.shape[0]].append(1) or forward(p, tokens, lengths)
        )
        few = predictor.predict_proba(texts[:5])
        assert len(rows[predictor.batch_size // 2]) == 1 and not rows[predictor.batch_size]
        many = predictor.predict_proba(texts)  # 80 texts: a full batch and a half one
        assert len(rows[predictor.batch_size]) == 1 and len(rows[predictor.batch_size // 2]) == 2
    finally:
        predictor._forward = forward
    assert predictor.row_sizes == (predictor.batch_size // 2, predictor.batch_size)
    np.testing.assert_allclose(few, many[:5], atol=1e-6)
    one_by_one = np.concatenate([predictor.predict_proba([t]) for t in texts[:8]])
    np.testing.assert_allclose(one_by_one, many[:8], atol=1e-6)


def test_a_call_of_short_and_long_texts_pads_the_short_half_to_its_own_bucket(predictor):
    """A call of more than half a batch whose shorter half fits a smaller bucket runs as two
    half-row calls (short half cut to its bucket, the rest at the longest one's), with the same
    probabilities as a call of one text at a time; one that does not, as one full call."""
    text = dataclasses.replace(predictor.text, num_buckets=4)  # the same model, 4 padded lengths
    predictor = seqclf.Predictor(
        predictor.config, predictor._params, predictor.vocabulary, predictor.classes, text=text
    )
    half, buckets = predictor.batch_size // 2, predictor.buckets
    assert len(buckets) == 4 and predictor.row_sizes == (half, 2 * half)
    short = ["good film"] * (half + 3)  # the 32 shortest rows fit buckets[0]
    long = [" ".join(["bad", "plot"] * buckets[-1])] * 5  # cut to max_len: the longest bucket
    texts = short[:5] + long + short[5:]
    shapes = []
    forward = predictor._forward
    predictor._forward = lambda p, tokens, lengths: (  # records the shape of every device call
        shapes.append(tokens.shape) or forward(p, tokens, lengths)
    )
    mixed = predictor.predict_proba(texts)
    assert sorted(shapes) == [(half, buckets[0]), (half, buckets[-1])]
    shapes.clear()
    predictor.predict_proba(long * 8)  # all long: nothing to split
    assert shapes == [(2 * half, buckets[-1])]
    alone = np.concatenate([predictor.predict_proba([t]) for t in (short[0], long[0])])
    is_long = np.array([t in long for t in texts])
    np.testing.assert_allclose(
        mixed[~is_long], np.broadcast_to(alone[0], mixed[~is_long].shape), atol=1e-6
    )
    np.testing.assert_allclose(
        mixed[is_long], np.broadcast_to(alone[1], mixed[is_long].shape), atol=1e-6
    )


def test_two_device_calls_run_at_once_and_give_the_same_rows(predictor, monkeypatch):
    """Batches of one prediction run IN_FLIGHT_CALLS (2) at a time: two calls overlap, the rows
    are bitwise those of one call at a time, and an error in a call reaches the caller."""
    import seqclf.predict as predict_module

    texts, _ = synthetic_reviews(6 * predictor.batch_size, seed=5)
    forward, changed = predictor._forward, threading.Condition()
    running, most, await_company = 0, 0, True

    def counted(p, tokens, lengths):
        nonlocal running, most
        with changed:
            running += 1
            most = max(most, running)
            changed.notify_all()
            if await_company:  # until a second call runs too (the last one may wait in vain)
                changed.wait_for(lambda: running >= 2, timeout=5)
        try:
            return np.asarray(forward(p, tokens, lengths))
        finally:
            with changed:
                running -= 1

    monkeypatch.setattr(predictor, "_forward", counted)
    overlapped = predictor.predict_proba(texts)
    assert most == predict_module.IN_FLIGHT_CALLS == 2
    monkeypatch.setattr(predict_module, "IN_FLIGHT_CALLS", 1)
    most, await_company = 0, False
    one_at_a_time = predictor.predict_proba(texts)
    assert most == 1
    np.testing.assert_array_equal(overlapped, one_at_a_time)

    monkeypatch.setattr(predict_module, "IN_FLIGHT_CALLS", 2)
    calls = 0

    def failing(p, tokens, lengths):
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("device lost")
        return counted(p, tokens, lengths)

    monkeypatch.setattr(predictor, "_forward", failing)
    with pytest.raises(RuntimeError, match="device lost"):
        predictor.predict_proba(texts)
    assert running == 0  # nothing left running on the failed prediction's behalf


def test_ten_thousand_texts_stream_without_being_held(predictor):
    base, _ = synthetic_reviews(50, seed=9)
    consumed = 0

    def texts():
        nonlocal consumed
        for i in range(10_000):
            consumed += 1
            yield base[i % len(base)]

    rows = 0
    most_ahead = 0
    first = None
    for block in predictor.iter_predict_proba(texts()):
        first = block if first is None else first
        most_ahead = max(most_ahead, consumed - rows)  # texts read but not yet given back
        rows += len(block)
    assert rows == 10_000
    assert most_ahead <= CHUNK_TEXTS
    same = [base[i % len(base)] for i in range(len(first))]
    np.testing.assert_array_equal(first, predictor.predict_proba(same))


# ---------------------------------------------------------------------------------------------
# Interruption, resumption and divergence of real `seqclf train` processes
# ---------------------------------------------------------------------------------------------


def test_sigkill_then_sigterm_then_resume_ends_bitwise_equal_to_an_uninterrupted_run(lab):
    out = lab.root / "interrupted"
    args = lab.train_args(out)
    slow = {"SEQCLF_TEST_STEP_DELAY": "0.05"}

    # 1. SIGKILLed (by the fixture's thread) once the second checkpoint of epoch 1 was written:
    # mid-epoch, maybe mid-save.
    run = lab.runs["killed"]
    run.wait(timeout=600)
    assert "error" not in lab.killed, lab.killed.get("error")
    assert run.returncode == -signal.SIGKILL, lab.output("killed")
    kept = assert_every_checkpoint_restores(out)  # none is corrupt; a half-written save is unlisted
    last = max(kept)
    assert SAVE_EVERY < last < STEPS_PER_EPOCH and last % SAVE_EVERY == 0
    # What a kill during a save leaves (orbax's temporary folder), made sure of: never listed,
    # never in the way of the resumed run, which saves that step again.
    partial = out / "checkpoints" / f"{last + SAVE_EVERY}.orbax-checkpoint-tmp-1764200000"
    (partial / "state").mkdir(parents=True, exist_ok=True)
    (partial / "state" / "_METADATA").write_bytes(b'{"tree_metadata": {"params')
    assert assert_every_checkpoint_restores(out) == kept

    # 2. Resume; SIGTERM it once it has saved a checkpoint of its own.
    run = lab.start([*args, "--resume"], "terminated", **slow)
    wait_for_checkpoint(run, out, beyond=last)
    run.send_signal(signal.SIGTERM)
    run.wait(timeout=120)
    stdout, stderr = lab.output("terminated")
    assert run.returncode == 130, stdout + stderr
    assert f"Resuming from step {last} (epoch 1, batch {last})." in stdout
    assert "SIGTERM received: finishing the current step, then stopping." in stdout
    latest = steps_in(out)[-1]
    assert latest > last
    assert f"the last checkpoint (step {latest}) is intact" in stdout
    assert f"Resume with: seqclf train --train {lab.data}" in stdout
    assert stdout.rstrip().endswith("--resume")
    assert_every_checkpoint_restores(out)

    # 3. Resume to the end.
    stdout = lab.finish(lab.start([*args, "--resume"], "resumed"), "resumed")
    assert f"Resuming from step {latest} " in stdout
    assert_every_checkpoint_restores(out)
    reference = lab.reference_dir()
    assert steps_in(out)[-1] == steps_in(reference)[-1] == 2 * STEPS_PER_EPOCH
    assert_same_params(params_of(out), params_of(reference))
    assert history_of(out) == history_of(reference)  # train metrics of cut epochs included


def test_a_nan_loss_stops_training_naming_the_step_and_keeps_the_last_checkpoint(lab):
    out = lab.root / "diverged"
    run = lab.start(lab.train_args(out), "diverged", SEQCLF_TEST_NAN_AT="12")
    run.wait(timeout=300)
    stdout, stderr = lab.output("diverged")
    assert run.returncode == 2, stdout + stderr
    assert (
        "seqclf train: error: the training loss became nan at step 12 (epoch 1); try a lower "
        "--learning-rate or a smaller --clip-norm; the last good checkpoint (step 10) in "
        f"{(out / 'checkpoints').resolve()} is kept as it was"
    ) in stderr
    assert "Traceback" not in stderr
    assert assert_every_checkpoint_restores(out) == [10]  # finite parameters


def test_runs_with_the_same_seed_are_identical_within_a_process(lab):
    """The reference process ran the command twice: bitwise equal parameters (latest and best
    checkpoints) and equal metrics. (Across processes: the SIGKILL test ends equal to it.)"""
    reference, again = lab.reference_dir(), lab.root / "same_process"
    assert steps_in(reference) == steps_in(again)
    for step in steps_in(reference):
        assert_same_params(params_of(again, step), params_of(reference, step))
    assert history_of(again) == history_of(reference)
    assert len(history_of(reference)) == 2


def test_a_second_ctrl_c_stops_at_once_and_says_how_to_resume(lab, capsys, monkeypatch):
    """The first SIGINT finishes the step (tested above with SIGTERM, and in test_train.py); a
    second one raises KeyboardInterrupt wherever training is, which the command turns into
    exit status 130 and the resume command."""
    import seqclf.cli

    def interrupted(args, argv):
        raise KeyboardInterrupt

    monkeypatch.setattr(seqclf.cli, "cmd_train", interrupted)
    status, _, err = run_cli(capsys, lab.train_args(lab.root / "x"))
    assert status == 130
    assert "seqclf train: interrupted; the checkpoints already saved are intact" in err
    assert f"Resume with: seqclf train --train {lab.data}" in err
    assert err.rstrip().endswith("--resume")
