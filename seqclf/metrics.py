"""Classification metrics on the host (NumPy): accuracy, confusion matrix, per-class precision,
recall and F1 with macro and weighted averages, calibration bins and expected calibration error.

Every function is pure and takes plain arrays, so the training loop, ``Predictor.evaluate`` and
the evaluation report (``seqclf.report``) compute the same numbers.
"""

from __future__ import annotations

from typing import Any

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


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator elementwise, 0 where the denominator is 0 (scikit-learn's
    ``zero_division=0``: a class never predicted has precision 0, one never present recall 0)."""
    out = np.zeros(numerator.shape, np.float64)
    np.divide(numerator, denominator, out=out, where=denominator > 0)
    return out


def per_class_metrics(matrix: np.ndarray) -> dict[str, np.ndarray]:
    """Precision, recall, F1 and support of each class of a confusion matrix.

    Args:
      matrix: (C, C) counts, rows = true class, columns = predicted class.

    Returns:
      ``{"precision", "recall", "f1"}``: float64 (C,), 0 where undefined (a class never predicted
      has precision 0; a class never present has recall 0); ``"support"``: int64 (C,), the number
      of examples of each true class. A model that never predicts class k has recall 0 for k.
    """
    matrix = np.asarray(matrix)
    tp = np.diag(matrix).astype(np.float64)
    predicted = matrix.sum(axis=0).astype(np.float64)
    support = matrix.sum(axis=1)
    precision = _ratio(tp, predicted)
    recall = _ratio(tp, support.astype(np.float64))
    f1 = _ratio(2 * tp, predicted + support)  # = 2PR / (P + R), defined whenever P + R > 0
    return {"precision": precision, "recall": recall, "f1": f1, "support": support.astype(np.int64)}


def average_metrics(per_class: dict[str, np.ndarray]) -> dict[str, dict[str, float]]:
    """Macro (unweighted) and weighted (by support) means of per-class precision, recall, F1.

    Args:
      per_class: the output of ``per_class_metrics``.

    Returns:
      ``{"macro": {...}, "weighted": {...}}``, each with ``precision``, ``recall``, ``f1`` and
      ``support`` (the total). The macro mean is over every class (scikit-learn's
      ``average="macro"`` with all labels), so a class the model never predicts pulls it down.
    """
    support = per_class["support"].astype(np.float64)
    total = support.sum()
    out: dict[str, dict[str, float]] = {"macro": {}, "weighted": {}}
    for name in ("precision", "recall", "f1"):
        values = per_class[name]
        out["macro"][name] = float(values.mean()) if values.size else 0.0
        out["weighted"][name] = float(values @ support / total) if total > 0 else 0.0
    for kind in out:
        out[kind]["support"] = int(total)
    return out


def classification_report(
    labels: np.ndarray, probabilities: np.ndarray, classes: list[str]
) -> dict[str, Any]:
    """Everything the evaluation report shows, as JSON-ready numbers.

    Args:
      labels: int (N,) true class ids.
      probabilities: float (N, C) class probabilities.
      classes: C class names.

    Returns:
      ``{"accuracy", "classes": {name: {precision, recall, f1, support}}, "macro", "weighted",
      "confusion_matrix": (C, C) nested lists}``.
    """
    labels = np.asarray(labels)
    predictions = np.asarray(probabilities).argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, len(classes))
    per_class = per_class_metrics(matrix)
    rows = {
        name: {
            "precision": float(per_class["precision"][k]),
            "recall": float(per_class["recall"][k]),
            "f1": float(per_class["f1"][k]),
            "support": int(per_class["support"][k]),
        }
        for k, name in enumerate(classes)
    }
    return {
        "accuracy": float(np.mean(predictions == labels)) if labels.size else 0.0,
        "classes": rows,
        **average_metrics(per_class),
        "confusion_matrix": matrix.tolist(),
    }


def calibration_bins(
    confidences: np.ndarray, correct: np.ndarray, num_bins: int = 10
) -> dict[str, np.ndarray]:
    """Reliability diagram data: predictions grouped by confidence into equal-width bins.

    Args:
      confidences: float (N,), the probability of the predicted class, in [0, 1].
      correct: bool (N,), whether each prediction is right.
      num_bins: M equal-width bins over [0, 1]; the last one includes 1.

    Returns:
      ``edges`` float64 (M + 1,); ``count`` int64 (M,); ``confidence`` and ``accuracy`` float64
      (M,), the mean confidence and the accuracy in each bin (0 for an empty bin).
    """
    if num_bins < 1:
        raise ValueError(f"num_bins must be >= 1, got {num_bins}")
    confidences = np.asarray(confidences, np.float64)
    correct = np.asarray(correct, np.float64)
    edges = np.linspace(0.0, 1.0, num_bins + 1)
    # Bin b holds (edges[b], edges[b+1]]; confidence 0 goes to the first bin.
    which = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, num_bins - 1)
    count = np.bincount(which, minlength=num_bins).astype(np.int64)
    total_conf = np.bincount(which, weights=confidences, minlength=num_bins)
    total_right = np.bincount(which, weights=correct, minlength=num_bins)
    n = count.astype(np.float64)
    return {
        "edges": edges,
        "count": count,
        "confidence": _ratio(total_conf, n),
        "accuracy": _ratio(total_right, n),
    }


def expected_calibration_error(bins: dict[str, np.ndarray]) -> float:
    """ECE = Σ_b (n_b / N) · |accuracy_b − confidence_b| over the bins of ``calibration_bins``.

    References:
      Guo et al. 2017, "On Calibration of Modern Neural Networks" (eq. 3); Naeini et al. 2015.
    """
    count = bins["count"].astype(np.float64)
    total = count.sum()
    if total == 0:
        return 0.0
    return float(np.sum(count / total * np.abs(bins["accuracy"] - bins["confidence"])))


def mean_cross_entropy(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean of −log p(true class) over N examples (probabilities floored at 1e-12); 0 for N = 0.

    Args:
      labels: int (N,); probabilities: float (N, C).
    """
    labels = np.asarray(labels)
    if labels.size == 0:
        return 0.0
    picked = np.asarray(probabilities)[np.arange(labels.size), labels]
    return float(-np.mean(np.log(np.maximum(picked, 1e-12))))


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
