"""Callback: the hooks of the training loop (as Keras' callbacks), and CallbackList.

``fit`` is a short loop; every extra behaviour (checkpoints, early stopping, the loss guard, the
metrics log, progress bars, the head-weight fits, the time budget, signals) is a ``Callback``
plugged into it, and users can pass their own (``fit(..., callbacks=[...])``). The loop calls,
in this order::

    on_train_begin(run)
    for each epoch:
        on_epoch_begin(run)                  # may request_stop: the epoch is not started
        for each step:
            on_step_end(run)                 # after every step, without waiting for the device
            on_step_metrics(run, fetched)    # when steps' losses are fetched (every log_every
                                             # steps, before a checkpoint, at the epoch's end)
        on_epoch_trained(run, train_metrics) # the epoch's steps are done (or cut short)
        on_validate(run)                     # the first result not None is the validation
        on_epoch_end(run, record)            # record: the epoch's line of metrics.jsonl
    on_train_end(run)                        # always, in reverse order, run.error set after one

Every hook gets the ``Run`` (``seqclf.training.run``): its state, config, progress and history.
A callback stops training with ``run.request_stop(reason)`` (the first reason is the one
``FitResult.stopped_by`` reports), ends an epoch early with ``run.end_epoch = True``, or raises.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from seqclf.training.run import Run, StepMetrics


class Callback:
    """Base class of a training callback: override the hooks you need (each does nothing here)."""

    def on_train_begin(self, run: Run) -> None:
        """Before the first epoch (a resumed run: after its checkpoint is restored)."""

    def on_epoch_begin(self, run: Run) -> None:
        """Before epoch ``run.epoch``'s first step."""

    def on_step_end(self, run: Run) -> None:
        """After each step (``run.step`` steps taken, ``run.progress.batch`` of this epoch)."""

    def on_step_metrics(self, run: Run, fetched: list[StepMetrics]) -> None:
        """Steps' losses and accuracies fetched from the device, in step order (already added to
        ``run.progress.running``). Raise to stop the run (e.g. ``TrainingDiverged``)."""

    def on_epoch_trained(self, run: Run, train_metrics: dict[str, float]) -> None:
        """The epoch's steps are done (``run.progress.batch`` of them), before validation."""

    def on_validate(self, run: Run) -> dict[str, Any] | None:
        """Validation metrics, when this callback computes them itself (e.g. fitting the head
        weights on the validation split); None leaves validation to the next callback, or to
        ``evaluate``."""
        return None

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        """The epoch is validated; ``record`` (already in ``run.history``) may be added to."""

    def on_train_end(self, run: Run) -> None:
        """The run is over (``run.stopped_by``), or failed (``run.error``)."""


class CallbackList(Callback):
    """Several callbacks as one, called in order (``on_train_end`` in reverse order, and only
    for those whose ``on_train_begin`` was called, as a stack of context managers unwinds)."""

    def __init__(self, callbacks: Sequence[Callback] = ()):
        self.callbacks = list(callbacks)
        self._begun: list[Callback] = []

    def on_train_begin(self, run: Run) -> None:
        for c in self.callbacks:
            self._begun.append(c)
            c.on_train_begin(run)

    def on_epoch_begin(self, run: Run) -> None:
        for c in self.callbacks:
            c.on_epoch_begin(run)

    def on_step_end(self, run: Run) -> None:
        for c in self.callbacks:
            c.on_step_end(run)

    def on_step_metrics(self, run: Run, fetched: list[StepMetrics]) -> None:
        for c in self.callbacks:
            c.on_step_metrics(run, fetched)

    def on_epoch_trained(self, run: Run, train_metrics: dict[str, float]) -> None:
        for c in self.callbacks:
            c.on_epoch_trained(run, train_metrics)

    def on_validate(self, run: Run) -> dict[str, Any] | None:
        for c in self.callbacks:
            metrics = c.on_validate(run)
            if metrics is not None:
                return metrics
        return None

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        for c in self.callbacks:
            c.on_epoch_end(run, record)

    def on_train_end(self, run: Run) -> None:
        try:
            if self._begun:
                self._begun.pop().on_train_end(run)
        finally:  # the others are still called when one raises (e.g. signal handlers restored)
            if self._begun:
                self.on_train_end(run)
