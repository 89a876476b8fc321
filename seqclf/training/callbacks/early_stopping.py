"""``EarlyStopping``: stop after ``patience`` epochs without a better validation accuracy."""

from __future__ import annotations

from typing import Any

from tqdm.auto import tqdm

from seqclf.training.callbacks.base import Callback
from seqclf.training.run import Run


class EarlyStopping(Callback):
    """Stops the run once ``run.progress.bad_epochs`` reaches ``patience``.

    The count of epochs without improvement is kept in ``Progress`` (so checkpoints carry it and
    a resumed run counts on); this callback only decides.

    Args:
      patience: epochs without a better validation accuracy (0: never stop early).
    """

    def __init__(self, patience: int):
        self.patience = patience

    def should_stop(self, run: Run) -> bool:
        return bool(self.patience) and run.progress.bad_epochs >= self.patience

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        if self.should_stop(run) and run.request_stop("early_stopping"):
            tqdm.write(f"Early stopping: no better validation accuracy for {self.patience} epochs.")
