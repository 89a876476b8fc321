"""Classification metrics on the host (NumPy): accuracy, confusion matrix, macro-F1."""

from __future__ import annotations

import numpy as np


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """(C, C) counts, rows = true class, columns = predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def macro_f1(matrix: np.ndarray) -> float:
    """Unweighted mean over classes of F1 = 2·TP / (2·TP + FP + FN).

    A class that is neither present nor predicted has no F1 and is left out of the mean.
    """
    tp = np.diag(matrix).astype(np.float64)
    fp = matrix.sum(axis=0) - tp
    fn = matrix.sum(axis=1) - tp
    denom = 2 * tp + fp + fn
    present = denom > 0
    if not present.any():
        return 0.0
    return float(np.mean(2 * tp[present] / denom[present]))


def classification_metrics(
    labels: np.ndarray, probabilities: np.ndarray, loss: float | None = None
) -> dict[str, float]:
    """Accuracy (and macro-F1 when there are more than two classes) of (N, C) probabilities."""
    num_classes = probabilities.shape[1]
    predictions = probabilities.argmax(axis=1)
    out = {"accuracy": float(np.mean(predictions == labels)) if len(labels) else 0.0}
    if loss is not None:
        out = {"loss": float(loss), **out}
    if num_classes > 2:
        out["macro_f1"] = macro_f1(confusion_matrix(labels, predictions, num_classes))
    return out
