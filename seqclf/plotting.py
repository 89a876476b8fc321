"""Training curves as a PNG (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")  # no display needed; must precede pyplot
import matplotlib.pyplot as plt  # noqa: E402


def plot_history(history: Sequence[dict[str, Any]], path: str | Path) -> Path:
    """Loss and accuracy per epoch, train against validation, side by side.

    Args:
      history: one dict per epoch with ``epoch``, ``train_loss``, ``train_accuracy``,
        ``val_loss``, ``val_accuracy`` (missing keys are skipped).
      path: where to write the PNG.

    Returns:
      The path written.
    """
    path = Path(path)
    epochs = [h["epoch"] for h in history]
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, metric in zip(axes, ("loss", "accuracy"), strict=True):
        for split, style in (("train", "o-"), ("val", "s--")):
            key = f"{split}_{metric}"
            points = [(e, h[key]) for e, h in zip(epochs, history, strict=True) if key in h]
            if points:
                ax.plot(*zip(*points, strict=True), style, label=split)
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
