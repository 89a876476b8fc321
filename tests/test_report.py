"""Evaluation metrics (per class, averages, calibration) and the evaluation report."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import precision_recall_fscore_support

from seqclf.metrics import (
    average_metrics,
    calibration_bins,
    classification_report,
    confusion_matrix,
    expected_calibration_error,
    per_class_metrics,
)


def test_a_model_that_never_predicts_the_minority_class_has_recall_0_for_it():
    labels = np.array([0] * 8 + [1] * 2)
    predictions = np.zeros(10, int)  # always the majority class: accuracy 0.8
    m = per_class_metrics(confusion_matrix(labels, predictions, 2))
    np.testing.assert_allclose(m["recall"], [1.0, 0.0])
    np.testing.assert_allclose(m["precision"], [0.8, 0.0])  # never predicted: 0, not NaN
    np.testing.assert_allclose(m["f1"], [2 * 0.8 / 1.8, 0.0])
    np.testing.assert_array_equal(m["support"], [8, 2])
    avg = average_metrics(m)
    assert avg["macro"]["recall"] == pytest.approx(0.5)
    assert avg["weighted"]["recall"] == pytest.approx(0.8)
    assert avg["macro"]["f1"] == pytest.approx(0.8 / 1.8)
    assert avg["weighted"]["support"] == 10


def test_per_class_metrics_of_a_hand_computed_matrix():
    # rows true, columns predicted
    matrix = np.array([[3, 1, 0], [1, 4, 1], [0, 2, 2]])
    m = per_class_metrics(matrix)
    np.testing.assert_allclose(m["precision"], [3 / 4, 4 / 7, 2 / 3])
    np.testing.assert_allclose(m["recall"], [3 / 4, 4 / 6, 2 / 4])
    p, r = m["precision"], m["recall"]
    np.testing.assert_allclose(m["f1"], 2 * p * r / (p + r))
    avg = average_metrics(m)
    assert avg["weighted"]["precision"] == pytest.approx((4 * 3 / 4 + 6 * 4 / 7 + 4 * 2 / 3) / 14)


def test_report_numbers_agree_with_scikit_learn():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 4, 200)
    probs = rng.dirichlet(np.ones(4), 200)
    probs[labels == 3, 3] += 0.5  # some signal, classes of different quality
    probs[:, 1] = 0.0  # class 1 is never predicted
    probs /= probs.sum(axis=1, keepdims=True)
    report = classification_report(labels, probs, ["a", "b", "c", "d"])
    predictions = probs.argmax(axis=1)
    for average in ("macro", "weighted"):
        p, r, f, _ = precision_recall_fscore_support(
            labels, predictions, labels=range(4), average=average, zero_division=0
        )
        assert report[average]["precision"] == pytest.approx(p)
        assert report[average]["recall"] == pytest.approx(r)
        assert report[average]["f1"] == pytest.approx(f)
    p, r, f, s = precision_recall_fscore_support(
        labels, predictions, labels=range(4), zero_division=0
    )
    for k, name in enumerate("abcd"):
        row = report["classes"][name]
        assert (row["precision"], row["recall"], row["f1"]) == pytest.approx((p[k], r[k], f[k]))
        assert row["support"] == s[k]
    assert report["classes"]["b"]["recall"] == 0.0
    assert report["accuracy"] == pytest.approx(np.mean(predictions == labels))
    assert np.asarray(report["confusion_matrix"]).sum() == 200


def test_calibration_bins_and_ece_by_hand():
    confidences = np.array([0.05, 0.55, 0.6, 0.95, 1.0, 0.9])
    correct = np.array([False, True, False, True, True, False])
    bins = calibration_bins(confidences, correct, num_bins=2)  # (0, 0.5], (0.5, 1]
    np.testing.assert_array_equal(bins["count"], [1, 5])
    np.testing.assert_allclose(bins["confidence"], [0.05, (0.55 + 0.6 + 0.95 + 1.0 + 0.9) / 5])
    np.testing.assert_allclose(bins["accuracy"], [0.0, 3 / 5])
    expected = 1 / 6 * 0.05 + 5 / 6 * abs(0.6 - 4.0 / 5)
    assert expected_calibration_error(bins) == pytest.approx(expected)
    ten = calibration_bins(confidences, correct, num_bins=10)
    # 0.9 is the upper edge of (0.8, 0.9]; 1.0 falls in the last bin
    np.testing.assert_array_equal(ten["count"], [1, 0, 0, 0, 0, 2, 0, 0, 1, 2])


def test_a_perfectly_calibrated_model_has_ece_near_0_and_an_overconfident_one_does_not():
    rng = np.random.default_rng(1)
    confidences = rng.uniform(0.5, 1.0, 100_000)
    calibrated = rng.uniform(size=confidences.size) < confidences
    assert expected_calibration_error(calibration_bins(confidences, calibrated)) < 0.01
    overconfident = rng.uniform(size=confidences.size) < 0.5
    ece = expected_calibration_error(calibration_bins(confidences, overconfident))
    assert ece == pytest.approx(0.25, abs=0.01)  # mean confidence 0.75, accuracy 0.5
