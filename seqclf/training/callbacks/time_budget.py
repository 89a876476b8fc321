"""``TimeBudget`` (``TrainConfig.time_budget``): stops an epoch that runs past the budget (it is
then validated and saved as any other), and does not start one that would."""

from __future__ import annotations

import time
from typing import Any

from tqdm.auto import tqdm

from seqclf.training.callbacks.base import Callback
from seqclf.training.run import Run


class TimeBudget(Callback):
    """Seconds of training, counted from the first epoch's start; whether the next epoch would
    overrun them is judged by the longest epoch so far.

    Args:
      seconds: the budget (0: no limit).
    """

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started: float | None = None
        self.epoch_started = 0.0
        self.epoch_seconds = 0.0
        self.cut_short = False

    @property
    def spent(self) -> bool:
        if not self.seconds or self.started is None:
            return False
        return self.cut_short or time.perf_counter() - self.started >= self.seconds

    def next_epoch_would_overrun(self) -> bool:
        if not self.seconds or not self.epoch_seconds or self.started is None:
            return False
        return time.perf_counter() - self.started + self.epoch_seconds > self.seconds

    def on_epoch_begin(self, run: Run) -> None:
        if self.started is None:
            self.started = time.perf_counter()
        if self.next_epoch_would_overrun() and run.request_stop("time_budget"):
            tqdm.write(
                f"Time budget: {self.seconds:.0f} s would be over before epoch "
                f"{run.epoch + 1} ends (an epoch takes ~{self.epoch_seconds:.0f} s); "
                "stopping here (--time-budget to change it)."
            )
        self.epoch_started = time.perf_counter()

    def on_step_end(self, run: Run) -> None:
        if self.spent:
            run.end_epoch = True

    def on_epoch_trained(self, run: Run, train_metrics: dict[str, Any]) -> None:
        self.epoch_seconds = max(self.epoch_seconds, time.perf_counter() - self.epoch_started)
        self.cut_short = self.cut_short or run.progress.batch < run.steps_per_epoch

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        if self.spent and run.request_stop("time_budget"):
            tqdm.write(
                f"Time budget: {self.seconds:.0f} s of training are over; stopping "
                "after this validation (--time-budget to change it)."
            )
