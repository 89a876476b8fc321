"""What the training loop shares with its callbacks: Run, its Progress and RunningMetrics.

These are small dataclasses: the loop updates them, callbacks read them (and may ask the run to
stop), checkpoints save ``Progress`` so that a resumed run continues where it stopped.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from seqclf.data.preprocessing import TextConfig
from seqclf.training.config import TrainConfig
from seqclf.training.state import TrainState

# How a run can end without a signal (``already_finished``: a finished run resumed).
FINISHED = ("completed", "early_stopping", "time_budget", "already_finished")


@dataclasses.dataclass
class StepMetrics:
    """One training step's loss and accuracy, as fetched from the device (float64)."""

    step: int
    loss: float
    accuracy: float


@dataclasses.dataclass
class RunningMetrics:
    """Sums of the training loss and accuracy over an epoch's steps so far.

    Summed in float64 one step at a time, in step order: the means do not depend on when values
    are fetched, and a checkpoint saves the sums so that a resumed epoch reports the means an
    uninterrupted one would.
    """

    loss_sum: float = 0.0
    accuracy_sum: float = 0.0
    steps: int = 0

    def add(self, fetched: list[StepMetrics]) -> None:
        for m in fetched:
            self.loss_sum += m.loss
            self.accuracy_sum += m.accuracy
        self.steps += len(fetched)

    def means(self) -> dict[str, float]:
        """``{"train_loss", "train_accuracy"}`` of the steps so far (0 for none)."""
        seen = max(self.steps, 1)
        return {"train_loss": self.loss_sum / seen, "train_accuracy": self.accuracy_sum / seen}

    def to_list(self) -> list[float]:
        """``[loss sum, accuracy sum, steps]``, as checkpoints store it."""
        return [self.loss_sum, self.accuracy_sum, self.steps]

    @classmethod
    def from_list(cls, values: list[float] | None) -> RunningMetrics | None:
        return None if values is None else cls(*values)


@dataclasses.dataclass
class Progress:
    """Where a run is, saved with every checkpoint (``to_dict``) and restored on resume.

    Attributes:
      epoch: epochs finished.
      batch: batches of the current epoch finished (a checkpoint within an epoch).
      best_val_accuracy: the best validation accuracy so far (-1 before the first).
      bad_epochs: epochs in a row without a better validation accuracy.
      running: the current epoch's running sums (None at an epoch's start).
    """

    epoch: int = 0
    batch: int = 0
    best_val_accuracy: float = -1.0
    bad_epochs: int = 0
    running: RunningMetrics | None = None

    def epoch_done(self, val_accuracy: float) -> None:
        """An epoch ended with this validation accuracy."""
        improved = val_accuracy > self.best_val_accuracy
        self.epoch += 1
        self.batch = 0
        self.best_val_accuracy = max(val_accuracy, self.best_val_accuracy)
        self.bad_epochs = 0 if improved else self.bad_epochs + 1
        self.running = None

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["running"] = None if self.running is None else self.running.to_list()
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Progress:
        known = {f.name for f in dataclasses.fields(cls)}
        values = {k: v for k, v in d.items() if k in known}
        values["running"] = RunningMetrics.from_list(values.get("running"))
        return cls(**values)


@dataclasses.dataclass
class Run:
    """One training run as its callbacks see it.

    Attributes:
      config: the (resolved) ``TrainConfig``.
      state: the current ``TrainState`` (callbacks may replace it, e.g. with fitted weights).
        Each training step donates its buffers to the next state: a callback that keeps
        parameters past the step must copy them (``np.array(x)``, ``jnp.copy``).
      steps_per_epoch: batches per epoch.
      text: the (resolved) ``TextConfig`` the batches are truncated and padded by.
      progress: where the run is (``Progress``).
      history: one record (dict) per finished epoch, as ``metrics.jsonl`` holds them.
      show_progress: whether bars and progress notes are shown (this process, if primary).
      epoch: the epoch being trained (0-based).
      step: steps taken, a host-side copy of ``state.step`` (reading that waits for the device).
      resumed: the run continued from a checkpoint.
      stop_reason: why the run ends early, once something asked (``request_stop``).
      end_epoch: set during an epoch: end it after the current step, then validate as usual.
      validation: the last validation's metrics (unrounded; ``record`` has them rounded).
      error: the exception that ended the run, when ``on_train_end`` is called after one.
    """

    config: TrainConfig
    state: TrainState = dataclasses.field(repr=False)  # a short repr: no parameter arrays
    steps_per_epoch: int
    text: TextConfig | None = None
    progress: Progress = dataclasses.field(default_factory=Progress)
    history: list[dict[str, Any]] = dataclasses.field(default_factory=list, repr=False)
    show_progress: bool = True
    epoch: int = 0
    step: int = 0
    resumed: bool = False
    stop_reason: str | None = None
    end_epoch: bool = False
    validation: dict[str, Any] | None = None
    error: BaseException | None = None
    ended: bool = False
    # Fetches the steps' metrics still on the device (set by train_epoch while it runs).
    sync: Callable[[], None] = dataclasses.field(default=lambda: None, repr=False)

    def request_stop(self, reason: str) -> bool:
        """Ask the run to stop; True when this request decides how it ends (the first one).

        Asked during an epoch, the epoch ends after the current step, without validation; asked
        in ``on_epoch_begin``, the epoch is not started; in ``on_epoch_end``, no next epoch.
        """
        if self.stop_reason is not None or self.ended:
            return False
        self.stop_reason = reason
        return True

    @property
    def stopped_by(self) -> str:
        """How the run ended: ``stop_reason``, or "completed"."""
        return self.stop_reason or "completed"
