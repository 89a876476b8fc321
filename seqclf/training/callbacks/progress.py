"""``ProgressBar``: a tqdm bar per epoch with the running loss and accuracy, the devices the run
uses, and a warning when validation shows a class the model never predicts."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from seqclf.distributed import DataParallel
from seqclf.training.callbacks.base import Callback
from seqclf.training.run import Run, StepMetrics


def warn_unpredicted_classes(recall: list[float | None] | None) -> None:
    """Say so when the model never gets a class right on validation (e.g. heavy imbalance)."""
    missed = [c for c, r in enumerate(recall or []) if r is not None and r == 0.0]
    if missed:
        tqdm.write(
            f"Warning: on the validation split the model recalls none of class(es) {missed} "
            "(recall 0). The classes may be too imbalanced or too few: try "
            "--class-weighting balanced, more examples of those classes, or more epochs."
        )


class ProgressBar(Callback):
    """Shows progress when ``run.show_progress`` (refreshed when losses are fetched, every
    ``TrainConfig.log_every`` steps: each refresh waits for the device)."""

    def __init__(self) -> None:
        self.bar: tqdm | None = None

    def on_train_begin(self, run: Run) -> None:
        if run.show_progress and run.stop_reason is None:
            tqdm.write(DataParallel.of(run.state).describe(run.config.batch_size))

    def on_epoch_begin(self, run: Run) -> None:
        if run.stop_reason is None:
            self.bar = tqdm(
                total=run.steps_per_epoch,
                initial=run.progress.batch,
                desc=f"epoch {run.epoch + 1}/{run.config.epochs}",
                disable=not run.show_progress,
                dynamic_ncols=True,
            )

    def on_step_end(self, run: Run) -> None:
        if self.bar is not None:
            self.bar.update(1)

    def on_step_metrics(self, run: Run, fetched: list[StepMetrics]) -> None:
        running = run.progress.running
        if self.bar is not None and running is not None and running.steps:
            means = running.means()
            self.bar.set_postfix(
                loss=f"{means['train_loss']:.4f}", acc=f"{means['train_accuracy']:.4f}"
            )

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None

    def on_epoch_trained(self, run: Run, train_metrics: dict[str, Any]) -> None:
        self.close()

    def on_train_end(self, run: Run) -> None:
        self.close()
        finished_before = run.stopped_by == "already_finished"  # nothing was trained now
        if run.error is None and run.history and run.show_progress and not finished_before:
            warn_unpredicted_classes(run.history[-1].get("val_recall"))
