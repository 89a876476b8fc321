"""The training-curves PNG: whole-number epoch ticks and the best epoch marked."""

from __future__ import annotations

import warnings
from pathlib import Path

import matplotlib.pyplot as plt

from seqclf.plotting import best_epoch, history_figure, plot_history

HISTORY = [
    {"epoch": 1, "train_loss": 0.7, "train_accuracy": 0.5, "val_loss": 0.69, "val_accuracy": 0.6},
    {"epoch": 2, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.55, "val_accuracy": 0.8},
    {"epoch": 3, "train_loss": 0.3, "train_accuracy": 0.9, "val_loss": 0.60, "val_accuracy": 0.8},
]


def test_best_epoch_is_the_step_the_checkpoint_store_keeps(tmp_path) -> None:
    import jax.numpy as jnp

    from seqclf.checkpoint import CheckpointStore

    assert best_epoch(HISTORY) == 3  # tie with epoch 2: the last, as the checkpoint store keeps
    assert best_epoch([{"epoch": 1, "train_loss": 0.7}]) is None
    assert best_epoch([]) is None
    # The store itself, on ties before and at the end (epoch i saved as step i).
    for i, accuracies in enumerate(([0.6, 0.8, 0.8], [0.8, 0.8, 0.5], [0.7, 0.7, 0.7, 0.6])):
        store = CheckpointStore(tmp_path / str(i))
        for epoch, accuracy in enumerate(accuracies, start=1):
            store.save(epoch, {"params": {"w": jnp.ones(2)}, "step": epoch}, {}, accuracy)
        history = [{"epoch": e, "val_accuracy": a} for e, a in enumerate(accuracies, start=1)]
        assert best_epoch(history) == store.best_step(), accuracies
        store.close()


def test_figure_has_integer_ticks_and_marks_the_best_epoch() -> None:
    fig = history_figure(HISTORY)
    try:
        for ax in fig.axes:
            ticks = [t for t in ax.get_xticks() if 1 <= t <= 3]
            assert ticks and all(float(t).is_integer() for t in ticks)
            marks = [line for line in ax.get_lines() if line.get_label() == "best epoch (3)"]
            assert len(marks) == 1 and list(marks[0].get_xdata()) == [3, 3]
    finally:
        plt.close(fig)


def test_plot_history_writes_a_png(tmp_path: Path) -> None:
    path = plot_history(HISTORY, tmp_path / "sub" / "curves.png")
    assert path.read_bytes()[:4] == b"\x89PNG"


def test_a_history_with_losses_only_says_so_instead_of_an_empty_legend() -> None:
    losses_only = [{"epoch": 1, "train_loss": 0.7}, {"epoch": 2, "train_loss": 0.5}]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # matplotlib warns about a legend with nothing in it
        fig = history_figure(losses_only)
    try:
        loss_ax, accuracy_ax = fig.axes
        assert loss_ax.get_legend() is not None and accuracy_ax.get_legend() is None
        assert [t.get_text() for t in accuracy_ax.texts] == ["no accuracy recorded"]
    finally:
        plt.close(fig)
