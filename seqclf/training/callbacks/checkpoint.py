"""``Checkpoint``: resume from, and save to, a ``seqclf.checkpoint.CheckpointStore``.

It saves after every epoch (with the validation accuracy, so the store keeps the best step too)
and every ``TrainConfig.save_every`` steps within one; it never saves parameters that are NaN or
infinite, nor a state whose losses have not been checked. At the end of an interrupted run it
says which checkpoint is intact and how to resume.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from seqclf.checkpoint import DiskFullError
from seqclf.training.callbacks.base import Callback
from seqclf.training.callbacks.loss_watch import TrainingDiverged
from seqclf.training.run import FINISHED, Progress, Run


def explain_divergence(err: TrainingDiverged, store: Any | None) -> TrainingDiverged:
    """``err`` with what became of the checkpoints in ``store`` (those from before an explosion
    are good; parameters are checked before every save)."""
    steps = store.all_steps() if store is not None else []
    good = [s for s in steps if err.since_step is None or s <= err.since_step]
    last = max(good) if good else None
    kept = (
        f"the last good checkpoint (step {last}) in {store.directory} is kept as it was"
        if last is not None
        else "no checkpoint had been saved yet"
    )
    return TrainingDiverged(f"{err}; {kept}")


class Checkpoint(Callback):
    """Saves the run to ``store`` (None: nowhere) and, with ``resume``, continues from it.

    Args:
      store: a ``CheckpointStore``, or None.
      meta: JSON-ready metadata saved with every checkpoint (model config, vocabulary, classes).
      resume: continue from the latest checkpoint in ``store``.
      resume_hint: the command that resumes this run (messages).
    """

    def __init__(
        self,
        store: Any | None,
        meta: dict[str, Any] | None = None,
        *,
        resume: bool = False,
        resume_hint: str | None = None,
    ):
        self.store = store
        self.meta = meta or {}
        self.resume = resume
        self.resume_hint = resume_hint

    # -- resuming ------------------------------------------------------------------------------

    def on_train_begin(self, run: Run) -> None:
        if not self.resume:
            return
        if self.store is None or self.store.latest_step() is None:
            tqdm.write("Nothing to resume from: no checkpoint yet, starting from scratch.")
            return
        state = run.state
        target = {"params": state.params, "opt_state": state.opt_state, "step": state.step}
        run.state = state.replace(**self.store.restore_state(target))
        saved = self.store.restore_meta()
        run.progress = Progress.from_dict(saved["progress"])
        run.history = saved.get("history", [])
        run.step, run.resumed = int(run.state.step), True
        config, progress = run.config, run.progress
        early = bool(config.patience) and progress.bad_epochs >= config.patience
        if progress.epoch >= config.epochs or early:
            how = "early stopping" if early else f"all {config.epochs} epochs"
            where = self.store.directory.parent
            tqdm.write(
                f"The run in {where} is already finished ({how}, step {run.step}); "
                "nothing to resume. Its metrics.jsonl and curves are rewritten from the "
                "checkpoint; pass a larger --epochs to train further."
            )
            run.request_stop("already_finished")
            return
        tqdm.write(
            f"Resuming from step {run.step} (epoch {progress.epoch + 1}, batch {progress.batch})."
        )

    # -- saving --------------------------------------------------------------------------------

    def save(self, run: Run, val_accuracy: float | None) -> None:
        """The current state, progress and history as step ``run.state.step``."""
        if self.store is None:
            return
        state = run.state
        leaves = jax.tree_util.tree_leaves(state.params)
        if not all(np.isfinite(np.asarray(x)).all() for x in leaves):
            raise TrainingDiverged(
                f"the parameters became NaN or infinite by step {int(state.step)}; "
                "try a lower --learning-rate or a smaller --clip-norm"
            )
        try:
            self.store.save(
                int(state.step),
                {"params": state.params, "opt_state": state.opt_state, "step": state.step},
                {
                    **self.meta,
                    "train_config": run.config.to_dict(),
                    **({"text_config": run.text.to_dict()} if run.text is not None else {}),
                    "progress": run.progress.to_dict(),
                    "history": run.history,
                },
                val_accuracy,
            )
        except DiskFullError as err:
            raise DiskFullError(
                f"{err}; free space and run {self.resume_hint or 'it again with resume=True'}",
                err.step,
                err.last_step,
                err.device,
            ) from None

    def on_step_end(self, run: Run) -> None:
        every, done = run.config.save_every, run.progress.batch
        if every and done % every == 0 and done < run.steps_per_epoch:
            run.sync()  # never checkpoint a state whose loss has not been checked
            self.save(run, None)

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        self.save(run, run.validation["accuracy"])  # unrounded, as the store ranks steps

    # -- the end -------------------------------------------------------------------------------

    def on_train_end(self, run: Run) -> None:
        if run.error is not None or run.stopped_by in FINISHED:
            return
        last = self.store.latest_step() if self.store is not None else None
        where = (
            f"the last checkpoint (step {last}) is intact"
            if last is not None
            else "no checkpoint had been saved yet"
        )
        step = int(run.state.step)
        if last is not None and last < step:
            where += f"; the {step - last} step(s) after it will be done again"
        hint = f" Resume with: {self.resume_hint}" if self.resume_hint else " Resume with --resume."
        tqdm.write(f"Stopped by {run.stopped_by} at step {step}; {where}.{hint}")
