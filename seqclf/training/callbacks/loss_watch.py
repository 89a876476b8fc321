"""The NaN and explosion guard: ``LossGuard`` stops a run whose training loss is NaN, infinite
or exploded (``LossWatch``), raising ``TrainingDiverged``."""

from __future__ import annotations

from typing import Any

import numpy as np

from seqclf.training.callbacks.base import Callback
from seqclf.training.run import Run, StepMetrics


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or exploded (``LossWatch``).

    Attributes:
      since_step: the first step of the explosion (checkpoints up to it are good); None for a
        NaN or infinite loss (every checkpoint is good: parameters are checked before saving).
    """

    def __init__(self, message: str, since_step: int | None = None):
        super().__init__(message)
        self.since_step = since_step


EXPLODED_FACTOR = 10  # a loss this many times a uniform guess's (log C per head) has exploded...
EXPLODED_STEPS = 10  # ...when it stays there this many steps in a row (or a whole epoch)


class LossWatch:
    """Stops a run whose training loss exploded without becoming NaN.

    The rule follows from the data: an untrained classifier predicts about uniformly, so its loss
    starts near log C (C classes; summed over the heads of a multi-head model), and learning
    only lowers it. A loss above ``EXPLODED_FACTOR`` × that for ``EXPLODED_STEPS`` steps in a
    row, or as the mean of a whole epoch, is not noise: the updates are too large (e.g.
    ``--learning-rate 1e6`` gives losses near 1e6 and validation at chance). A healthy run may
    cross the line for a step or two after a bad batch; it does not stay there.

    Args:
      num_classes: C.
      heads: how many heads' losses are summed into the training loss.
    """

    def __init__(self, num_classes: int, heads: int = 1):
        self.limit = EXPLODED_FACTOR * heads * float(np.log(max(num_classes, 2)))
        self.streak = 0
        self.since_step: int | None = None

    def check(self, step: int, loss: float, epoch: int) -> None:
        """One step's loss; raises ``TrainingDiverged`` once the rule is met."""
        if loss <= self.limit:
            self.streak, self.since_step = 0, None
            return
        self.streak += 1
        self.since_step = step if self.since_step is None else self.since_step
        if self.streak >= EXPLODED_STEPS:
            self.raise_exploded(f"{EXPLODED_STEPS} steps in a row", step, loss, epoch)

    def check_epoch(self, first_step: int, mean_loss: float, epoch: int) -> None:
        """An epoch's mean loss (for epochs shorter than ``EXPLODED_STEPS``)."""
        if mean_loss > self.limit:
            since = self.since_step if self.since_step is not None else first_step
            self.since_step = since
            self.raise_exploded("a whole epoch (its mean)", None, mean_loss, epoch)

    def raise_exploded(self, how: str, step: int | None, loss: float, epoch: int) -> None:
        at = f" at step {step}" if step is not None else ""
        raise TrainingDiverged(
            f"the training loss exploded: {loss:.3g}{at} (epoch {epoch + 1}), above "
            f"{self.limit:.3g} ({EXPLODED_FACTOR}x the loss of a uniform guess) for {how} since "
            f"step {self.since_step}; try a lower --learning-rate or a smaller --clip-norm",
            since_step=self.since_step,
        )


class LossGuard(Callback):
    """Checks every fetched step loss: NaN or infinite stops the run at once; with a
    ``LossWatch``, so does a loss that exploded (``EXPLODED_STEPS`` steps in a row, or a whole
    epoch's mean).

    Args:
      watch: the explosion rule (None: only non-finite losses are caught).
    """

    def __init__(self, watch: LossWatch | None = None):
        self.watch = watch

    def on_step_metrics(self, run: Run, fetched: list[StepMetrics]) -> None:
        for m in fetched:
            if not np.isfinite(m.loss):
                raise TrainingDiverged(
                    f"the training loss became {m.loss} at step {m.step} (epoch {run.epoch + 1}); "
                    "try a lower --learning-rate or a smaller --clip-norm"
                )
            if self.watch is not None:
                self.watch.check(m.step, float(m.loss), run.epoch)

    def on_epoch_trained(self, run: Run, train_metrics: dict[str, Any]) -> None:
        if self.watch is not None and run.progress.batch == run.steps_per_epoch:
            first = run.step - run.steps_per_epoch
            self.watch.check_epoch(first, train_metrics["train_loss"], run.epoch)
