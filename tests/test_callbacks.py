"""Each training callback on its own, with a hand-made ``Run`` (no training: milliseconds)."""

from __future__ import annotations

import errno
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

from seqclf.checkpoint import DiskFullError
from seqclf.data.preprocessing import TextConfig
from seqclf.heads import HeadSpec
from seqclf.training import TrainConfig
from seqclf.training.callbacks import (
    Callback,
    CallbackList,
    Checkpoint,
    EarlyStopping,
    FitHeadWeights,
    LossGuard,
    LossWatch,
    MetricsLog,
    ProgressBar,
    StopOnSignal,
    TimeBudget,
    TrainingDiverged,
    explain_divergence,
    metrics_log,
    warn_unpredicted_classes,
)
from seqclf.training.run import Progress, Run, RunningMetrics, StepMetrics

CONFIG = TrainConfig(epochs=3, batch_size=4)
TEXT = TextConfig(vocab_size=10, max_len=8, num_buckets=1)


class FakeState:
    """What callbacks read of a ``TrainState``."""

    def __init__(self, params=None, step=0, heads=None):
        self.params = params or {"w": np.ones(2, np.float32)}
        self.step, self.opt_state, self.heads = step, {}, heads or HeadSpec()

    def replace(self, **changes):
        new = FakeState(self.params, self.step, self.heads)
        new.__dict__.update(changes)
        return new


def make_run(**fields) -> Run:
    state, steps = fields.pop("state", FakeState()), fields.pop("steps", 10)
    return Run(CONFIG, state, steps, TEXT, **fields)


class FakeStore:
    """A ``CheckpointStore`` in memory."""

    def __init__(self, saved=None):
        self.saved = dict(saved or {})
        self.directory = Path("runs/x/ck")

    def latest_step(self):
        return max(self.saved, default=None)

    def all_steps(self):
        return sorted(self.saved)

    def best_step(self):
        return None

    def save(self, step, state, meta, val_accuracy):
        self.saved[step] = (state, json.loads(json.dumps(meta)), val_accuracy)

    def restore_state(self, target):
        return self.saved[self.latest_step()][0]

    def restore_meta(self):
        return self.saved[self.latest_step()][1]


# -- the run's dataclasses ---------------------------------------------------------------------


def test_progress_is_saved_in_the_checkpoint_format_and_restored():
    progress = Progress(epoch=1, batch=4, best_val_accuracy=0.5, bad_epochs=1)
    progress.running = RunningMetrics()
    progress.running.add([StepMetrics(7, 0.5, 1.0), StepMetrics(8, 0.25, 0.0)])
    saved = progress.to_dict()
    assert saved == {
        "epoch": 1, "batch": 4, "best_val_accuracy": 0.5, "bad_epochs": 1,
        "running": [0.75, 1.0, 2],
    }  # fmt: skip
    assert Progress.from_dict(json.loads(json.dumps(saved))) == progress
    assert progress.running.means() == {"train_loss": 0.375, "train_accuracy": 0.5}
    progress.epoch_done(0.4)  # not better than 0.5
    assert (progress.epoch, progress.batch, progress.bad_epochs, progress.running) == (
        2,
        0,
        2,
        None,
    )


def test_the_first_stop_request_decides_and_none_after_the_end():
    run = make_run()
    assert run.request_stop("mine") and not run.request_stop("theirs")
    assert run.stopped_by == "mine"
    ended = make_run(ended=True)
    assert not ended.request_stop("late") and ended.stopped_by == "completed"


def test_a_callback_list_validates_with_the_first_answer_and_ends_in_reverse():
    calls = []

    class Named(Callback):
        def __init__(self, name, metrics=None):
            self.name, self.metrics = name, metrics

        def on_validate(self, run):
            calls.append(("validate", self.name))
            return self.metrics

        def on_train_end(self, run):
            calls.append(("end", self.name))
            if self.name == "b":
                raise RuntimeError("b failed")

    hooks = CallbackList([Named("a"), Named("b", {"accuracy": 1.0}), Named("c", {})])
    run = make_run()
    hooks.on_train_begin(run)
    assert hooks.on_validate(run) == {"accuracy": 1.0}
    with pytest.raises(RuntimeError, match="b failed"):
        hooks.on_train_end(run)
    assert calls == [("validate", "a"), ("validate", "b"), ("end", "c"), ("end", "b"), ("end", "a")]


# -- one callback each -------------------------------------------------------------------------


def test_early_stopping_after_patience_bad_epochs(capsys):
    run = make_run(progress=Progress(bad_epochs=1))
    EarlyStopping(2).on_epoch_end(run, {})
    assert run.stop_reason is None
    run.progress.bad_epochs = 2
    EarlyStopping(0).on_epoch_end(run, {})  # 0: never
    assert run.stop_reason is None
    EarlyStopping(2).on_epoch_end(run, {})
    assert run.stop_reason == "early_stopping"
    assert "Early stopping: no better validation accuracy for 2 epochs." in capsys.readouterr().out


def test_the_time_budget_ends_the_epoch_then_the_run(capsys):
    budget, run = TimeBudget(1e-9), make_run()
    budget.on_epoch_begin(run)  # the clock starts; the first epoch is always started
    assert run.stop_reason is None
    budget.on_step_end(run)
    assert run.end_epoch  # spent: the epoch ends after this step...
    run.progress.batch = 3
    budget.on_epoch_trained(run, {})
    budget.on_epoch_end(run, {})
    assert run.stop_reason == "time_budget"  # ...and the run after its validation
    assert "s of training are over; stopping after this validation" in capsys.readouterr().out
    assert TimeBudget(0).spent is False


def test_the_time_budget_does_not_start_an_epoch_that_would_overrun(capsys):
    budget, run = TimeBudget(3600), make_run()
    budget.on_epoch_begin(run)
    budget.epoch_seconds = 4000.0  # as if the first epoch had taken that long
    run.epoch = 1
    budget.on_epoch_begin(run)
    assert run.stop_reason == "time_budget"
    assert "would be over before epoch 2 ends" in capsys.readouterr().out


def test_the_loss_guard_stops_at_a_nan_loss_and_at_an_explosion():
    run = make_run()
    LossGuard().on_step_metrics(run, [StepMetrics(0, 0.7, 0.5)])
    with pytest.raises(
        TrainingDiverged, match=r"the training loss became nan at step 3 \(epoch 1\)"
    ):
        LossGuard().on_step_metrics(run, [StepMetrics(3, float("nan"), 0.0)])
    guard = LossGuard(LossWatch(num_classes=2))
    guard.on_step_metrics(run, [StepMetrics(s, 1e6, 0.0) for s in range(9)])  # 9 in a row: not yet
    with pytest.raises(TrainingDiverged, match="exploded") as info:
        guard.on_step_metrics(run, [StepMetrics(9, 1e6, 0.0)])
    assert info.value.since_step == 0


def test_the_metrics_log_writes_one_line_per_epoch_and_prints_it(tmp_path, capsys):
    run = make_run()
    record = {"epoch": 1, "step": 10, "train_loss": 0.5, "val_loss": 0.6, "val_recall": [1.0, None]}
    run.history.append(record)
    MetricsLog(tmp_path).on_epoch_end(run, record)
    assert [json.loads(x) for x in (tmp_path / "metrics.jsonl").read_text().splitlines()] == [
        record
    ]
    assert (tmp_path / "training_curves.png").exists()
    assert (
        "epoch 1: train_loss 0.5000, val_loss 0.6000, val_recall [1.0, None]"
        in capsys.readouterr().out
    )


def test_a_full_disk_while_logging_says_which_checkpoint_is_intact(tmp_path, monkeypatch):
    def full(history, output_dir):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(metrics_log, "write_logs", full)
    store = FakeStore({10: None})
    with pytest.raises(DiskFullError, match="the last checkpoint, step 10, is intact; free space"):
        MetricsLog(tmp_path, store, "seqclf train --resume").on_epoch_end(make_run(), {})


def test_the_checkpoint_saves_every_n_steps_after_checking_losses_and_never_nan():
    store, run, synced = FakeStore(), make_run(steps=10), []
    run.config = TrainConfig(**{**CONFIG.to_dict(), "save_every": 3})
    run.sync = lambda: synced.append(run.progress.batch)
    checkpoint = Checkpoint(store, {"classes": ["a", "b"]})
    for batch in range(1, 10):
        run.progress.batch, run.state = batch, FakeState(step=batch)
        checkpoint.on_step_end(run)
    assert synced == [3, 6, 9] and store.all_steps() == [3, 6, 9]
    _, meta, val = store.saved[6]
    assert meta["classes"] == ["a", "b"] and meta["progress"]["batch"] == 6 and val is None
    run.state = FakeState({"w": np.array([np.nan])}, step=11)
    with pytest.raises(TrainingDiverged, match="the parameters became NaN or infinite by step 11"):
        checkpoint.save(run, 0.5)


def test_resuming_restores_progress_and_history_or_says_the_run_is_finished(capsys):
    progress = Progress(epoch=1, batch=2).to_dict()
    store = FakeStore({12: ({"step": 12}, {"progress": progress, "history": [{"epoch": 1}]}, None)})
    run = make_run()
    Checkpoint(store, resume=True).on_train_begin(run)
    assert (
        run.resumed and run.progress == Progress(epoch=1, batch=2) and run.history == [{"epoch": 1}]
    )
    assert "Resuming from step 12 (epoch 2, batch 2)." in capsys.readouterr().out
    finished = dict(progress, epoch=3)
    store.saved[12] = ({"step": 12}, {"progress": finished, "history": []}, None)
    run = make_run()
    Checkpoint(store, resume=True).on_train_begin(run)
    assert run.stop_reason == "already_finished"
    assert (
        "The run in runs/x is already finished (all 3 epochs, step 12)" in capsys.readouterr().out
    )
    Checkpoint(FakeStore(), resume=True).on_train_begin(make_run())
    assert "Nothing to resume from" in capsys.readouterr().out


def test_an_interrupted_run_says_what_is_intact_and_how_to_resume(capsys):
    run = make_run(state=FakeState(step=14))
    run.request_stop("SIGTERM")
    Checkpoint(FakeStore({10: None}), resume_hint="seqclf train --resume").on_train_end(run)
    assert capsys.readouterr().out.strip() == (
        "Stopped by SIGTERM at step 14; the last checkpoint (step 10) is intact; the 4 step(s) "
        "after it will be done again. Resume with: seqclf train --resume"
    )
    explained = explain_divergence(
        TrainingDiverged("boom", since_step=11), FakeStore({10: 0, 12: 0})
    )
    assert (
        str(explained) == "boom; the last good checkpoint (step 10) in runs/x/ck is kept as it was"
    )


def test_the_head_weights_are_left_to_evaluate_for_a_one_head_model_and_logged_otherwise():
    run = make_run()
    assert FitHeadWeights(([], [])).on_validate(run) is None
    spec = HeadSpec(heads=("a", "b"), head_weights="head_weights")
    run.state = FakeState({"head_weights": np.array([0.5, 1.25])}, heads=spec)
    record = {"epoch": 1}
    FitHeadWeights(([], [])).on_epoch_end(run, record)
    assert record == {"epoch": 1, "head_weights": [0.5, 1.25]}


def test_the_progress_bar_follows_the_steps_and_warns_of_unpredicted_classes(capsys):
    bar, run = ProgressBar(), make_run(show_progress=True, progress=Progress(batch=2))
    bar.on_epoch_begin(run)
    bar.on_step_end(run)
    assert (bar.bar.n, bar.bar.total, bar.bar.desc) == (3, 10, "epoch 1/3")
    run.progress.running = RunningMetrics(1.0, 0.5, 2)
    bar.on_step_metrics(run, [])
    assert bar.bar.postfix == "acc=0.2500, loss=0.5000"
    bar.on_epoch_trained(run, {})
    assert bar.bar is None
    warn_unpredicted_classes([0.9, 0.0, None])
    assert "recalls none of class(es) [1]" in capsys.readouterr().out
    warn_unpredicted_classes([0.9, 0.1])
    assert capsys.readouterr().out == ""


def test_the_first_signal_asks_the_run_to_stop_and_handlers_are_restored(capsys):
    before = signal.getsignal(signal.SIGINT)
    stop, run = StopOnSignal(), make_run()
    stop.on_train_begin(run)
    os.kill(os.getpid(), signal.SIGINT)
    assert run.stop_reason == "SIGINT"
    assert "SIGINT received: finishing the current step, then stopping." in capsys.readouterr().out
    with pytest.raises(KeyboardInterrupt):  # the second one, without an exit message
        os.kill(os.getpid(), signal.SIGINT)
    stop.on_train_end(run)
    assert signal.getsignal(signal.SIGINT) is before
