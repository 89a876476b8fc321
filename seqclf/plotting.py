"""Training curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402


def best_epoch(history: Sequence[dict[str, Any]]) -> int | None:
    """The epoch with the highest validation accuracy (the last, on ties: a later epoch as good
    as the best replaces it in the checkpoint store); None when no epoch has a validation
    accuracy."""
    scored = [h for h in history if "val_accuracy" in h]
    if not scored:
        return None
    return max(reversed(scored), key=lambda h: h["val_accuracy"])["epoch"]


def plot_history(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, train against validation, side by side.

    Epochs are whole numbers on the x axis; the best epoch (``best_epoch``: highest validation
    accuracy, the checkpoint ``seqclf.load`` uses) is marked with a dotted line.

    Args:
      history: one dict per epoch with ``epoch``, ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy`` (missing keys are skipped).
      path: where to write the PNG.

    Returns:
      The path written.
    """
    path = Path(path)
    fig = history_figure(history)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def history_figure(history: Sequence[dict[str, Any]]) -> plt.Figure:
    """The figure ``plot_history`` saves (the caller closes it)."""
    epochs = [h["epoch"] for h in history]
    best = best_epoch(history)
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split, style in (("train", "o-"), ("val", "s--")):
            key = f"{split}_{metric}"
            points = [(e, h[key]) for e, h in zip(epochs, history, strict=True) if key in h]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=split)
        if best is not None:
            ax.axvline(best, color="gray", linestyle=":", label=f"best epoch ({best})")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        if ax.get_legend_handles_labels()[0]:  # a history with losses only: no accuracy lines
            ax.legend()
        else:
            ax.text(0.5, 0.5, f"no {metric} recorded", ha="center", transform=ax.transAxes)
    fig.tight_layout()
    return fig
