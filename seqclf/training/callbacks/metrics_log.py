"""``MetricsLog``: each epoch's record as a line of ``metrics.jsonl``, the training curves
(``training_curves.png``) and one line on the console."""

from __future__ import annotations

import errno
import json
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from seqclf.checkpoint import DiskFullError, mount_point
from seqclf.distributed import is_primary
from seqclf.training.callbacks.base import Callback
from seqclf.training.run import Run


def write_logs(history: list[dict[str, Any]], output_dir: Path | None) -> None:
    """``metrics.jsonl`` and ``training_curves.png`` of ``history`` (primary process only).

    Rewritten whole from the history (which checkpoints carry), each to a temporary name then
    renamed: an interruption anywhere leaves one line per finished epoch, none twice.
    """
    if output_dir is None or not is_primary():
        return
    from seqclf.plotting import plot_history  # matplotlib only when training

    log_path = Path(output_dir) / "metrics.jsonl"
    tmp = log_path.with_name(log_path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
    tmp.replace(log_path)
    if history:
        plot_history(history, Path(output_dir) / "training_curves.png")


def epoch_line(record: dict[str, Any]) -> str:
    """``epoch 2: train_loss 0.4121, ...``: the record as the console shows it."""
    return f"epoch {record['epoch']}: " + ", ".join(
        f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
        for k, v in record.items()
        if k not in ("epoch", "step")
    )


class MetricsLog(Callback):
    """Writes the history to ``output_dir`` (None: nowhere) after every epoch, and prints the
    epoch's line. A resumed run's files are rewritten from its checkpoint's history first (a
    kill after a checkpoint's commit but before the logs were written leaves them an epoch short).

    Args:
      output_dir: the run's folder.
      store: the checkpoint store (to say which step is intact when the disk is full).
      resume_hint: the command that resumes this run (messages).
    """

    def __init__(
        self,
        output_dir: str | Path | None,
        store: Any | None = None,
        resume_hint: str | None = None,
    ):
        self.output_dir = Path(output_dir) if output_dir is not None else None
        self.store = store
        self.resume_hint = resume_hint

    def on_train_begin(self, run: Run) -> None:
        if run.resumed:
            write_logs(run.history, self.output_dir)

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        try:
            write_logs(run.history, self.output_dir)
        except OSError as err:
            if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                raise
            last = self.store.latest_step() if self.store is not None else None  # --resume
            kept = f"the last checkpoint, step {last}, is intact" if last else "no checkpoint"
            raise DiskFullError(  # rewrites the logs from the checkpoint
                f"no space left on {mount_point(self.output_dir)} while writing metrics.jsonl "
                f"and the curves; {kept}; free space and run "
                f"{self.resume_hint or 'it again with resume=True'}",
                int(run.state.step),
                last,
                mount_point(self.output_dir),
            ) from None
        tqdm.write(epoch_line(record))
