"""The run messages quoted in docs/what-happens-when.md are the ones the code prints.

Every line of a ```text block of that page is a message with placeholders (``<dir>``,
``<step>``, ...). The scenarios below make the code print each of them (interruption, a finished
run resumed, NaN and exploding losses, a locked output directory, damaged and superseded
checkpoints, a full disk), and every documented line must match one printed line in full, so the
page cannot drift from the code.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import jax.numpy as jnp
import pytest
from test_run_faults import HOLD_LOCK, STEPS_PER_EPOCH, train_args, write_reviews

import seqclf
from seqclf.checkpoint import CheckpointError, CheckpointStore
from seqclf.cli import interrupted_message, main
from seqclf.run_lock import LOCK_FILE, run_lock
from seqclf.training import step as step_module

DOC = Path(__file__).resolve().parents[1] / "docs" / "what-happens-when.md"


def documented_messages() -> list[str]:
    """The lines of the page's ```text blocks."""
    blocks = re.findall(r"```text\n(.*?)```", DOC.read_text(), flags=re.S)
    return [line.strip() for block in blocks for line in block.splitlines() if line.strip()]


def as_pattern(message: str) -> re.Pattern:
    """A documented message as a regular expression: each ``<placeholder>`` stands for text."""
    parts = re.split(r"<[^<>]+>", message)
    return re.compile(".+?".join(re.escape(p) for p in parts))


def wrapped_step(**at_step):
    """``train_step_in_place`` (train_epoch's step) that sends SIGTERM to this process
    (``sigterm=N``) or returns a NaN loss (``nan=N``) at step N."""
    real = step_module.train_step_in_place

    def step(state, batch):
        now = int(state.step)
        if now == at_step.get("sigterm"):
            os.kill(os.getpid(), signal.SIGTERM)
        state, values = real(state, batch)
        return state, values * jnp.nan if now == at_step.get("nan") else values

    return step


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_every_documented_run_message_is_what_the_code_prints(tmp_path, capfd, monkeypatch):
    messages = documented_messages()
    assert len(messages) >= 12, messages  # the page's blocks were found
    data = write_reviews(tmp_path / "reviews.csv")
    lines: list[str] = []

    def collect() -> None:
        out, err = capfd.readouterr()
        lines.extend(line.strip() for line in (out + err).splitlines() if line.strip())

    def run(args, expect, **at_step):
        """``seqclf <args>`` in this process (its training step wrapped by ``at_step``)."""
        with monkeypatch.context() as patch:
            if at_step:
                patch.setattr(step_module, "train_step_in_place", wrapped_step(**at_step))
            status = main([str(a) for a in args])
        collect()
        assert status == expect, lines[-3:]

    # A finished run, resumed; a run stopped by SIGTERM; NaN and exploding losses.
    done = tmp_path / "done"
    run(train_args(data, done, "--epochs", "1"), 0)
    run(train_args(data, done, "--epochs", "1", "--resume"), 0)
    run(train_args(data, tmp_path / "term", "--save-every", "2"), 130, sigterm=2)
    lines.append(interrupted_message("train", train_args(data, tmp_path / "term")).strip())
    run(train_args(data, tmp_path / "nan", "--save-every", "2"), 2, nan=3)
    run(train_args(data, tmp_path / "exploded", "--learning-rate", "1e6"), 2)

    # A locked output directory, and the lock of a killed run.
    busy = tmp_path / "busy"
    busy.mkdir()
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(busy / LOCK_FILE)], stdout=subprocess.PIPE
    )
    try:
        holder.stdout.readline()
        run(train_args(data, busy), 2)
    finally:
        holder.kill()
        holder.wait()
    dead = subprocess.Popen(["true"])
    dead.wait()
    (busy / LOCK_FILE).write_text(f"{dead.pid}\n")
    with run_lock(busy):
        collect()

    # Damaged checkpoints: values that differ from their checksums (an earlier step beside it),
    # then unreadable array data (no other step).
    step = STEPS_PER_EPOCH
    damaged = tmp_path / "damaged"
    shutil.copytree(done, damaged)
    checkpoints = damaged / "checkpoints"
    shutil.copytree(checkpoints / str(step), checkpoints / "6")
    (checkpoints / "6" / "metrics" / "metrics").write_text(json.dumps({"val_accuracy": 0.0}))
    meta_file = checkpoints / str(step) / "meta" / "metadata"
    meta = json.loads(meta_file.read_text())
    meta["checksums"]["params/embedding/embedding"] = "crc32:00000000"
    meta_file.write_text(json.dumps(meta))
    run(["predict", damaged, "good film"], 2)
    shutil.rmtree(checkpoints / "6")
    for f in (checkpoints / str(step) / "state").rglob("*"):
        if f.is_file() and f.parent.name == "d":
            f.write_bytes(bytes(f.stat().st_size))
    run(["predict", damaged, "good film"], 2)

    # A step removed (by the training run) while it is read.
    real = CheckpointStore.restore_params

    def superseded(self, step=None):
        shutil.rmtree(self.directory / str(step))
        return real(self, step)

    reread = tmp_path / "superseded"
    shutil.copytree(done, reread)
    with monkeypatch.context() as patch:
        patch.setattr(CheckpointStore, "restore_params", superseded)
        with pytest.raises(CheckpointError) as info:
            seqclf.load(reread, step=step)
    lines.append(str(info.value))

    # No space left while saving the second epoch's checkpoint.
    from orbax.checkpoint._src.path import async_path

    real_write = async_path.write_text

    async def full(path, text):
        if f"/{2 * step}.orbax-checkpoint-tmp" in str(path):
            raise OSError(errno.ENOSPC, "No space left on device")
        return await real_write(path, text)

    with monkeypatch.context() as patch:
        patch.setattr(async_path, "write_text", full)
        run(train_args(data, tmp_path / "full"), 2)

    missing = [m for m in messages if not any(as_pattern(m).fullmatch(x) for x in lines)]
    assert not missing, (
        "documented but not printed:\n  " + "\n  ".join(missing)
        + "\nprinted:\n  " + "\n  ".join(lines)
    )  # fmt: skip
