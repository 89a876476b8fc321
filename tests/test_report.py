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


def test_the_report_of_a_model_that_never_predicts_the_minority_class(tmp_path):
    from seqclf.report import build_report

    labels = np.array([0] * 8 + [1] * 2)
    probs = np.tile([0.9, 0.1], (10, 1))
    probs[[0, 8]] = [0.6, 0.4]  # the mistake on text 8 is the less confident one
    texts = [f"text {i}" for i in range(10)]
    report = build_report(texts, labels, probs, ["majority", "minority"], tmp_path)
    assert "| minority | 0.0000 | 0.0000 | 0.0000 | 2 |" in report.table()
    assert "| *macro avg* | 0.4000 | 0.5000 | 0.4444 | 10 |" in report.table()
    assert report.metrics["accuracy"] == pytest.approx(0.8)
    assert [m[0] for m in report.mistakes] == ["text 9", "text 8"]
    assert report.mistakes[0][1:] == ("minority", "majority", pytest.approx(0.9))
    # bins: 8 predictions at 0.9 (7 right), 2 at 0.6 (1 right)
    assert report.details["ece"] == pytest.approx(0.8 * abs(0.9 - 7 / 8) + 0.2 * abs(0.6 - 0.5))
    md = (tmp_path / "report.md").read_text()
    assert report.table() in md and "| majority | 8 | 0 |" in md and "| minority | 2 | 0 |" in md


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from tiny_run import tiny_run

    return tiny_run(tmp_path_factory)


def _check_report_dir(folder, n_mistakes_at_most):
    import csv
    import json

    for name in ("confusion_matrix.png", "calibration.png"):
        data = (folder / name).read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) > 2000, name
    with open(folder / "mistakes.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["text", "true", "predicted", "probability"]
    assert all(r[1] != r[2] for r in rows[1:]) and len(rows) - 1 <= n_mistakes_at_most
    p = [float(r[3]) for r in rows[1:]]
    assert p == sorted(p, reverse=True)
    details = json.loads((folder / "metrics.json").read_text())
    assert set(details["classes"]) == {"neg", "pos"}
    return details, rows


def test_predictor_evaluate_writes_the_report_and_returns_the_same_metrics(run, tmp_path):
    from tiny_run import synthetic_reviews

    import seqclf

    predictor = seqclf.load(run)
    data = synthetic_reviews(60, seed=3, max_words=30)
    plain = predictor.evaluate(data)
    with_report = predictor.evaluate(data, report_dir=tmp_path / "report")
    assert with_report == pytest.approx(plain)
    details, rows = _check_report_dir(tmp_path / "report", 60)
    assert details["accuracy"] == pytest.approx(plain["accuracy"])
    assert len(rows) - 1 == round((1 - plain["accuracy"]) * 60)
    report = seqclf.evaluation_report(predictor, data)
    assert report.files == {} and report.metrics == pytest.approx(plain)


def test_cli_evaluate_report(run, tmp_path, capsys):
    import csv
    import json

    from tiny_run import synthetic_reviews

    from seqclf.cli import main

    data = synthetic_reviews(40, seed=4, max_words=30)
    path = tmp_path / "test.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows((t, data.classes[y]) for t, y in zip(data.texts, data.labels, strict=True))
    status = main(["evaluate", str(run), "--data", str(path), "--report", str(tmp_path / "r")])
    captured = capsys.readouterr()
    assert status == 0
    metrics = json.loads(captured.out)
    assert set(metrics) == {"loss", "accuracy"}
    assert "| *weighted avg* |" in captured.err
    details, _ = _check_report_dir(tmp_path / "r", 40)
    assert details["accuracy"] == pytest.approx(metrics["accuracy"])
    assert "## Confusion matrix" in (tmp_path / "r" / "report.md").read_text()
