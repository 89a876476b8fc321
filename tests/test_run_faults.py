"""Faults around a training run: two writers, readers of a run being trained, damaged arrays,
a kill after the last commit, a second Ctrl-C while compiling, a full disk, an exploding loss.

Each test reproduces a case of issue 20 that went wrong before (silently, or with a traceback)
and checks the one clear outcome. Most run the ``seqclf`` command in this process on one tiny
data set with one model shape (compiled once for the module); the Ctrl-C test needs a process of
its own and a real compilation.
"""

from __future__ import annotations

import csv
import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

import seqclf
from seqclf.checkpoint import CheckpointError, CheckpointStore, mount_point
from seqclf.cli import main, resume_command
from seqclf.run_lock import LOCK_FILE

REPO = Path(__file__).resolve().parents[1]
# 180 training rows (20 held out) in batches of 16: 12 steps per epoch; epochs end at 12 and 24.
STEPS_PER_EPOCH = 12
OPTIONS = [
    "--embed-dim", "8", "--conv-filters", "", "--hidden-size", "8", "--rnn", "rnn",
    "--max-len", "16", "--num-buckets", "1", "--batch-size", "16", "--epochs", "2",
    "--patience", "0", "--no-progress",
]  # fmt: skip

WORDS = {"pos": "good great superb loved".split(), "neg": "bad awful dull hated".split()}
FILLER = "the a film plot scene it was and of story".split()


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return write_reviews(tmp_path_factory.mktemp("faults") / "reviews.csv")


def write_reviews(path: Path) -> Path:
    """200 short labelled reviews."""
    rng = np.random.default_rng(0)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(200):
            label = "pos" if i % 2 else "neg"
            words = list(rng.choice(FILLER, 6)) + list(rng.choice(WORDS[label], 2))
            writer.writerow([" ".join(words), label])
    return path


def train_args(data: Path, out: Path, *more: str) -> list[str]:
    return ["train", "--train", str(data), "--output-dir", str(out), *OPTIONS, *more]


@pytest.fixture(scope="module")
def finished(data, tmp_path_factory) -> Path:
    """A finished two-epoch run (its checkpoint: step 24, the latest and the best)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    assert main(train_args(data, out)) == 0
    return out


def one_error_line(err: str, command: str = "train") -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith(f"seqclf {command}: error: "), err
    return lines[0]


def steps_in(out: Path) -> list[int]:
    return sorted(int(p.name) for p in (out / "checkpoints").iterdir() if p.name.isdigit())


# ---------------------------------------------------------------------------------------------
# Row 3: two runs into one --output-dir
# ---------------------------------------------------------------------------------------------

# What a training run does to its output directory: flock the lock file and write its PID.
HOLD_LOCK = """
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR | os.O_CREAT)
fcntl.flock(fd, fcntl.LOCK_EX)
os.write(fd, f"{os.getpid()}\\n".encode())
print("locked", flush=True)
time.sleep(60)
"""


def test_a_second_run_into_a_busy_output_dir_is_refused_naming_the_pid(data, tmp_path, capfd):
    out = tmp_path / "run"
    out.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(out / LOCK_FILE)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        started = time.monotonic()
        for options in ([], ["--hidden-size", "4"]):  # the same options, other options
            assert main(train_args(data, out, *options)) == 2
            err = one_error_line(capfd.readouterr().err)
            assert err == (
                f"seqclf train: error: {out.resolve()} is in use by another training run "
                f"(PID {holder.pid}); wait for it to end, or choose another --output-dir"
            )
        assert time.monotonic() - started < 5  # at once: before reading data or training
        assert not (out / "checkpoints").exists()
    finally:
        holder.kill()
        holder.wait()


def test_the_lock_of_a_killed_run_is_taken_over_with_a_note(data, tmp_path, capfd):
    out = tmp_path / "run"
    out.mkdir()
    dead = subprocess.Popen(["true"])
    dead.wait()  # its PID is no longer running; the lock file still names it (as after SIGKILL)
    (out / LOCK_FILE).write_text(f"{dead.pid}\n")
    assert main(train_args(data, out, "--epochs", "1")) == 0
    stdout = capfd.readouterr().out
    assert (
        f"Note: {out.resolve()} was left locked by a training run that was killed "
        f"(PID {dead.pid}, which is no longer running); taking the lock over."
    ) in stdout
    assert "Saved to" in stdout
    assert (out / LOCK_FILE).read_text() == ""  # released: the next run gets no note


# ---------------------------------------------------------------------------------------------
# Row 4: reading a run while it trains
# ---------------------------------------------------------------------------------------------


def test_a_checkpoint_superseded_while_being_read_is_retried_not_called_damaged(
    finished, tmp_path, monkeypatch
):
    """The training run saves a newer step, renames the one a reader picked away and removes
    it: here exactly between the reader's listing of the steps and its read of the arrays."""
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    shutil.copytree(out / "checkpoints" / "24", out / "checkpoints" / "30")  # the newer step
    real = CheckpointStore.restore_params
    superseded = []

    def restore_params(self, step=None):
        if not superseded:
            step_dir = self.directory / str(step if step is not None else self.best_step())
            gone = self.directory / "deleted" / step_dir.name
            gone.parent.mkdir(exist_ok=True)
            step_dir.rename(gone)  # what orbax does with todelete_subdir
            shutil.rmtree(gone)
            superseded.append(int(step_dir.name))
        return real(self, step)

    monkeypatch.setattr(CheckpointStore, "restore_params", restore_params)
    predictor = seqclf.load(out)  # no error: the remaining checkpoint is read
    assert len(superseded) == 1 and steps_in(out) == [s for s in (24, 30) if s not in superseded]
    assert predictor.predict(["a good film"])[0] in ("neg", "pos")

    # A step asked for by number is not swapped for another: said plainly, nothing "damaged".
    superseded.clear()
    with pytest.raises(CheckpointError) as info:
        seqclf.load(out, step=steps_in(out)[0])
    message = str(info.value)
    assert "was removed while being read: the run saving there replaced it" in message
    assert "damaged" not in message and "Delete" not in message


# ---------------------------------------------------------------------------------------------
# Row 5: bytes overwritten in a checkpoint's arrays
# ---------------------------------------------------------------------------------------------


def test_bytes_overwritten_in_an_array_file_are_detected_and_named(tmp_path):
    """8 KB overwritten at four places of a checkpoint holding a (3000, 16) table: random
    floats do not compress, so zstd stores them raw and overwritten bytes decode into other
    numbers, which only the saved checksums can tell."""
    rng = np.random.default_rng(1)
    table = rng.normal(size=(3000, 16)).astype(np.float32)
    state = {"params": {"embedding": {"embedding": table}, "dense": {"bias": np.ones(2)}}}
    store = CheckpointStore(tmp_path / "run")
    store.save(1, state, {"note": "test"}, 0.5)
    store.close()
    step_dir = tmp_path / "run" / "checkpoints" / "1"
    clean = tmp_path / "clean"
    shutil.copytree(step_dir, clean)
    for fraction in (0.2, 0.4, 0.6, 0.8):
        shutil.rmtree(step_dir)
        shutil.copytree(clean, step_dir)
        biggest = max(
            (f for f in step_dir.rglob("*") if f.is_file()), key=lambda f: f.stat().st_size
        )
        data = bytearray(biggest.read_bytes())
        start = int(len(data) * fraction)
        data[start : start + 8192] = rng.integers(0, 256, 8192, dtype=np.uint8).tobytes()
        biggest.write_bytes(bytes(data[: len(biggest.read_bytes())]))
        store = CheckpointStore(tmp_path / "run", create=False)
        try:
            with pytest.raises(CheckpointError) as info:
                store.restore_params(1)
        finally:
            store.close()
        message = str(info.value)
        assert f"checkpoint {step_dir.resolve()} is damaged" in message, message
        assert "params/embedding/embedding" in message, message
        assert "<bound method" not in message and "pybind11" not in message


def test_a_damaged_checkpoint_is_named_with_its_array_and_the_other_checkpoints(
    finished, tmp_path, capfd
):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    checkpoints = out / "checkpoints"
    for other in (20, 30):  # an earlier and a later checkpoint beside it
        shutil.copytree(checkpoints / "24", checkpoints / str(other))
    # Step 24's embedding differs from what was saved (as after overwritten bytes that still
    # decode): its saved checksum no longer matches.
    meta_file = checkpoints / "24" / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta["checksums"]["params/embedding/embedding"] = "crc32:00000000"
    meta_file.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError) as info:
        seqclf.load(out, step=24)
    assert str(info.value) == (
        f"checkpoint {checkpoints.resolve() / '24'} is damaged: the values of "
        "params/embedding/embedding differ from those saved (checksum mismatch; bytes of its "
        "files were overwritten). Its other checkpoints: step 20 (earlier), 30 (later); move "
        f"that folder out of {checkpoints.resolve()} to use them."
    )
    # Through the command: one line, and no orbax object printed in it.
    assert main(["predict", str(out), "good film"]) == 0  # the best (30 or 20) is intact
    shutil.rmtree(checkpoints / "20")
    shutil.rmtree(checkpoints / "30")
    assert main(["predict", str(out), "good film"]) == 2
    err = one_error_line(capfd.readouterr().err, "predict")
    assert "is damaged: the values of params/embedding/embedding differ" in err
    assert "The run has no other checkpoint: train it again (or restore a backup)." in err


# ---------------------------------------------------------------------------------------------
# Row 6: killed right after the last checkpoint's commit
# ---------------------------------------------------------------------------------------------


def test_resume_repairs_the_metrics_and_curves_and_says_a_finished_run_is_finished(
    finished, data, tmp_path, capfd
):
    out = tmp_path / "run"
    shutil.copytree(finished, out)
    complete = (out / "metrics.jsonl").read_text()
    assert len(complete.splitlines()) == 2
    # What a SIGKILL between the last checkpoint's commit and the rewrite of the logs leaves.
    (out / "metrics.jsonl").write_text(complete.splitlines(keepends=True)[0])
    (out / "training_curves.png").unlink()
    capfd.readouterr()
    assert main(train_args(data, out, "--resume")) == 0
    stdout = capfd.readouterr().out
    assert (
        f"The run in {out.resolve()} is already finished (all 2 epochs, step 24); nothing to "
        "resume. Its metrics.jsonl and curves are rewritten from the checkpoint; pass a larger "
        "--epochs to train further."
    ) in stdout
    assert "Saved to" not in stdout and "Resuming" not in stdout
    assert (out / "metrics.jsonl").read_text() == complete
    assert (out / "training_curves.png").stat().st_size > 0
    assert steps_in(out) == steps_in(finished)  # nothing trained, nothing saved


# ---------------------------------------------------------------------------------------------
# Row 7: a second Ctrl-C while the first step compiles
# ---------------------------------------------------------------------------------------------

# Sends itself two SIGINTs 0.05 s apart as soon as XLA starts compiling the first training step
# (jax's backend_compile_and_load, the call into XLA, is wrapped once the step is first called).
TWO_CTRL_C = """
import os, signal, sys, threading, time
from jax._src import compiler
from seqclf.training import step as train
from seqclf.cli import main

real_step, real_compile = train.train_step_in_place, compiler.backend_compile_and_load

def press():
    for _ in range(2):
        time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

def compile_pressed(*args, **kwargs):
    compiler.backend_compile_and_load = real_compile
    threading.Thread(target=press).start()
    executable = real_compile(*args, **kwargs)
    print("compiled", flush=True)
    return executable

def step(state, batch):
    if train.train_step_in_place is step:
        train.train_step_in_place = real_step
        compiler.backend_compile_and_load = compile_pressed
    return real_step(state, batch)

train.train_step_in_place = step
sys.exit(main(sys.argv[1:]))
"""


def test_a_second_ctrl_c_while_compiling_exits_130_with_the_resume_command(data, tmp_path):
    out = tmp_path / "run"
    env = {k: v for k, v in os.environ.items() if not k.startswith("JAX_COMPILATION_CACHE")}
    env["JAX_PLATFORMS"] = "cpu"  # a real compilation (no persistent cache): seconds of XLA
    run = subprocess.run(
        [sys.executable, "-c", TWO_CTRL_C, *train_args(data, out)],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert run.returncode == 130, (run.returncode, run.stdout, run.stderr)
    assert "SIGINT received: finishing the current step, then stopping." in run.stdout
    assert "compiled" not in run.stdout  # it ended during XLA's compilation, not after it
    last = run.stderr.strip().splitlines()[-1]
    assert last.startswith("seqclf train: interrupted; the checkpoints already saved are intact")
    assert last.endswith(f"Resume with: {resume_command('seqclf', train_args(data, out))}")
    assert "Traceback" not in run.stderr


# ---------------------------------------------------------------------------------------------
# Row 8: no space left while saving
# ---------------------------------------------------------------------------------------------


def test_a_full_disk_during_a_save_gives_one_line_and_the_resume_command(
    data, tmp_path, capfd, monkeypatch
):
    from orbax.checkpoint._src.path import async_path

    out = tmp_path / "run"
    real_write = async_path.write_text

    async def write_text(path, text):
        if f"/{2 * STEPS_PER_EPOCH}.orbax-checkpoint-tmp" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return await real_write(path, text)

    monkeypatch.setattr(async_path, "write_text", write_text)
    args = train_args(data, out)
    assert main(args) == 2
    err = one_error_line(capfd.readouterr().err)
    resume = resume_command("seqclf", args)
    assert err == (
        f"seqclf train: error: no space left on {mount_point(out)} while saving step "
        f"{2 * STEPS_PER_EPOCH}; the last checkpoint, step {STEPS_PER_EPOCH}, is intact; free "
        f"space and run {resume}"
    )
    assert [p.name for p in (out / "checkpoints").iterdir()] == [str(STEPS_PER_EPOCH)]
    # Space freed: the same command with --resume finishes the run.
    monkeypatch.setattr(async_path, "write_text", real_write)
    assert main([*args, "--resume"]) == 0
    assert steps_in(out)[-1] == 2 * STEPS_PER_EPOCH


def test_a_full_disk_while_writing_the_metrics_is_repaired_by_resume(
    data, tmp_path, capfd, monkeypatch
):
    from seqclf.training.callbacks import metrics_log

    def full(history, output_dir):
        raise OSError(errno.ENOSPC, "No space left on device", "metrics.jsonl.tmp")

    out = tmp_path / "run"
    args = train_args(data, out, "--epochs", "1")
    with monkeypatch.context() as patch:
        patch.setattr(metrics_log, "write_logs", full)
        assert main(args) == 2
    err = one_error_line(capfd.readouterr().err)
    assert err == (
        f"seqclf train: error: no space left on {mount_point(out)} while writing metrics.jsonl "
        f"and the curves; the last checkpoint, step {STEPS_PER_EPOCH}, is intact; free space "
        f"and run {resume_command('seqclf', args)}"
    )
    assert main([*args, "--resume"]) == 0  # finished: the logs are rewritten from the checkpoint
    assert "is already finished" in capfd.readouterr().out
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 1


# ---------------------------------------------------------------------------------------------
# Row 9: an exploding loss
# ---------------------------------------------------------------------------------------------


def test_an_exploding_loss_stops_training_with_the_divergence_message(data, tmp_path, capfd):
    out = tmp_path / "run"
    assert main(train_args(data, out, "--learning-rate", "1e6")) == 2
    err = one_error_line(capfd.readouterr().err)
    assert err.startswith("seqclf train: error: the training loss exploded: ")
    assert "above 6.93 (10x the loss of a uniform guess) for " in err  # 10 steps or an epoch
    assert "try a lower --learning-rate or a smaller --clip-norm" in err
    assert not (out / "checkpoints").exists() or not steps_in(out)  # nothing exploded is saved


def test_a_healthy_run_is_not_stopped_by_the_explosion_rule(finished):
    history = [json.loads(line) for line in (finished / "metrics.jsonl").read_text().splitlines()]
    assert len(history) == 2 and all(r["train_loss"] < 6.93 for r in history)


# Training slowed down (so that readers meet it mid-run), as the `seqclf` command.
SLOW_STEPS = """
import sys, time
from seqclf.training import step as train
from seqclf.cli import main

real_step = train.train_step_in_place

def step(state, batch):
    time.sleep(0.05)
    return real_step(state, batch)

train.train_step_in_place = step
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_reading_a_run_that_saves_every_step_never_reports_damage(data, tmp_path, capfd):
    out = tmp_path / "run"
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    args = train_args(data, out, "--save-every", "1")
    trainer = subprocess.Popen(
        [sys.executable, "-c", SLOW_STEPS, *args], cwd=REPO, env=env,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoints").is_dir() or not steps_in(out):
            assert trainer.poll() is None and time.monotonic() < deadline, trainer.stdout.read()
            time.sleep(0.05)
        loads = 0
        while trainer.poll() is None:
            seqclf.load(out)  # never an error: superseded steps are read again
            assert main(["predict", str(out), "a good film"]) == 0, capfd.readouterr().err
            loads += 1
        assert trainer.wait(timeout=60) == 0, trainer.stdout.read()
    finally:
        trainer.kill()
        trainer.wait()
    err = capfd.readouterr().err
    assert "damaged" not in err and "Delete" not in err
    assert loads >= 3  # it did read while steps were being replaced
