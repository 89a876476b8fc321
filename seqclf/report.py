"""The evaluation report: per-class table, confusion matrix, calibration and confident mistakes.

``evaluation_report(predictor, dataset, out_dir)`` scores a labelled dataset once and writes:

    report.md             per-class precision / recall / F1 / support, macro and weighted
                          averages, accuracy, loss, ECE, and the confusion matrix as a table
    metrics.json          the same numbers (and the calibration bins), JSON
    confusion_matrix.png  counts, rows = true class, columns = predicted class
    calibration.png       reliability diagram (accuracy against confidence per bin) with ECE
    mistakes.csv          the most confident wrong predictions: text, true, predicted, probability

The numbers come from the pure functions of ``seqclf.metrics``; this file only lays them out.
"""

from __future__ import annotations

import csv
import dataclasses
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from seqclf.metrics import (
    calibration_bins,
    classification_metrics,
    classification_report,
    expected_calibration_error,
    mean_cross_entropy,
)

if TYPE_CHECKING:
    from seqclf.data.sources import TextDataset
    from seqclf.predict import Predictor

NUM_BINS = 10
NUM_MISTAKES = 50
FILES = ("report.md", "metrics.json", "confusion_matrix.png", "calibration.png", "mistakes.csv")


@dataclasses.dataclass(frozen=True)
class EvaluationReport:
    """What ``evaluation_report`` computed (and, when given a directory, wrote).

    Attributes:
      metrics: what ``Predictor.evaluate`` returns: loss, accuracy (and macro_f1 for > 2 classes).
      details: ``seqclf.metrics.classification_report`` plus ``loss``, ``ece`` and
        ``calibration`` (the bins as lists).
      classes: the class names, in the order of the confusion matrix.
      mistakes: the most confident wrong predictions, ``(text, true, predicted, probability)``,
        most confident first.
      files: name → path of each file written (empty when no directory was given).
    """

    metrics: dict[str, float]
    details: dict[str, Any]
    classes: list[str]
    mistakes: list[tuple[str, str, str, float]]
    files: dict[str, Path]

    def table(self) -> str:
        """The per-class markdown table, with macro and weighted averages."""
        return markdown_table(self.details, self.classes)


def evaluation_report(
    predictor: Predictor,
    dataset: TextDataset,
    out_dir: str | Path | None = None,
    *,
    batch_size: int | None = None,
    num_bins: int = NUM_BINS,
    num_mistakes: int = NUM_MISTAKES,
) -> EvaluationReport:
    """Score ``dataset`` with ``predictor`` once and build (and write) the evaluation report.

    Args:
      predictor: a ``seqclf.Predictor``.
      dataset: labelled texts; class names are matched to the model's by name (an unknown one
        raises ``ValueError``, as in ``Predictor.evaluate``).
      out_dir: where to write the report files (created); None writes nothing.
      batch_size: texts per forward pass (default: the predictor's).
      num_bins: equal-width confidence bins of the calibration curve and ECE.
      num_mistakes: rows of ``mistakes.csv``.

    Returns:
      An ``EvaluationReport``.
    """
    labels, probs = predictor.labelled_probabilities(dataset, batch_size)
    return build_report(
        dataset.texts,
        labels,
        probs,
        predictor.classes,
        out_dir,
        num_bins=num_bins,
        num_mistakes=num_mistakes,
    )


def build_report(
    texts: list[str],
    labels: np.ndarray,
    probabilities: np.ndarray,
    classes: list[str],
    out_dir: str | Path | None = None,
    *,
    num_bins: int = NUM_BINS,
    num_mistakes: int = NUM_MISTAKES,
) -> EvaluationReport:
    """The report of N predictions already made.

    Args:
      texts: N texts (for the mistakes).
      labels: int (N,) true class ids, in ``classes``.
      probabilities: float (N, C).
      classes: C class names.
      out_dir: where to write the files; None writes nothing.
      num_bins, num_mistakes: as in ``evaluation_report``.
    """
    labels = np.asarray(labels)
    probabilities = np.asarray(probabilities)
    loss = mean_cross_entropy(labels, probabilities)
    details = classification_report(labels, probabilities, classes)
    predictions = probabilities.argmax(axis=1)
    confidence = probabilities.max(axis=1)
    bins = calibration_bins(confidence, predictions == labels, num_bins)
    details["loss"] = loss
    details["ece"] = expected_calibration_error(bins)
    details["calibration"] = {k: v.tolist() for k, v in bins.items()}
    mistakes = confident_mistakes(texts, labels, probabilities, classes, num_mistakes)
    report = EvaluationReport(
        classification_metrics(labels, probabilities, loss), details, list(classes), mistakes, {}
    )
    if out_dir is None:
        return report
    return dataclasses.replace(report, files=write_report(report, Path(out_dir)))


def confident_mistakes(
    texts: list[str], labels: np.ndarray, probabilities: np.ndarray, classes: list[str], k: int
) -> list[tuple[str, str, str, float]]:
    """The ``k`` wrong predictions with the highest predicted probability, highest first.

    Returns:
      ``(text, true class, predicted class, probability of the predicted class)`` tuples.
    """
    predictions = probabilities.argmax(axis=1)
    wrong = np.flatnonzero(predictions != labels)
    confidence = probabilities[wrong, predictions[wrong]]
    order = wrong[np.argsort(-confidence, kind="stable")][:k]
    return [
        (
            texts[i],
            classes[int(labels[i])],
            classes[int(predictions[i])],
            float(probabilities[i, predictions[i]]),
        )
        for i in order.tolist()
    ]


def _cell(name: str) -> str:
    return str(name).replace("|", "\\|")


def markdown_table(details: dict[str, Any], classes: list[str]) -> str:
    """Per-class precision / recall / F1 / support, then the macro and weighted averages."""
    lines = ["| class | precision | recall | F1 | support |", "|---|---:|---:|---:|---:|"]
    rows = [(_cell(c), details["classes"][c]) for c in classes]
    rows += [("*macro avg*", details["macro"]), ("*weighted avg*", details["weighted"])]
    for name, row in rows:
        lines.append(
            f"| {name} | {row['precision']:.4f} | {row['recall']:.4f} | {row['f1']:.4f} "
            f"| {row['support']} |"
        )
    return "\n".join(lines)


def markdown_confusion_matrix(matrix: list[list[int]], classes: list[str]) -> str:
    """Counts as a markdown table, rows = true class, columns = predicted class."""
    names = [_cell(c) for c in classes]
    lines = [
        "| true \\ predicted | " + " | ".join(names) + " |",
        "|---|" + "---:|" * len(names),
    ]
    for name, row in zip(names, matrix, strict=True):
        lines.append(f"| {name} | " + " | ".join(str(v) for v in row) + " |")
    return "\n".join(lines)


def write_report(report: EvaluationReport, out_dir: Path) -> dict[str, Path]:
    """Write the report's files into ``out_dir`` (see the module docstring)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    d = report.details
    paths = {name: out_dir / name for name in FILES}
    summary = [
        "# Evaluation report",
        "",
        f"{d['weighted']['support']} examples · accuracy {d['accuracy']:.4f} · "
        f"loss {d['loss']:.4f} · expected calibration error {d['ece']:.4f} "
        f"({len(d['calibration']['count'])} bins)",
        "",
        "## Per class",
        "",
        report.table(),
        "",
        "## Confusion matrix (rows: true class, columns: predicted)",
        "",
        markdown_confusion_matrix(d["confusion_matrix"], report.classes),
        "",
        "![confusion matrix](confusion_matrix.png)",
        "",
        "## Calibration",
        "",
        "![calibration curve](calibration.png)",
        "",
        f"The {len(report.mistakes)} most confident mistakes are in `mistakes.csv`.",
        "",
    ]
    paths["report.md"].write_text("\n".join(summary), encoding="utf-8")
    paths["metrics.json"].write_text(json.dumps(d, indent=2) + "\n", encoding="utf-8")
    plot_confusion_matrix(np.asarray(d["confusion_matrix"]), report.classes, paths[FILES[2]])
    bins = {k: np.asarray(v) for k, v in d["calibration"].items()}
    plot_calibration(bins, d["ece"], paths["calibration.png"])
    with open(paths["mistakes.csv"], "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "true", "predicted", "probability"])
        for text, true, predicted, p in report.mistakes:
            writer.writerow([text, true, predicted, f"{p:.4f}"])
    return paths


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # no display needed; must precede pyplot
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(matrix: np.ndarray, classes: list[str], path: Path) -> Path:
    """(C, C) counts as a heat map, each cell labelled with its count; colour = share of the row
    (the true class), so a small class's errors show as clearly as a large one's."""
    plt = _pyplot()
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    size = 1.5 + 0.6 * len(classes)
    fig, ax = plt.subplots(figsize=(size + 1.5, size))
    image = ax.imshow(share, cmap="Blues", vmin=0.0, vmax=1.0)
    for (i, j), count in np.ndenumerate(matrix):
        ax.text(
            j,
            i,
            str(count),
            ha="center",
            va="center",
            color="white" if share[i, j] > 0.5 else "black",
        )
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, label="share of the true class")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def plot_calibration(bins: dict[str, np.ndarray], ece: float, path: Path) -> Path:
    """Reliability diagram: accuracy against mean confidence per bin, beside the diagonal (perfect
    calibration), and the number of predictions per bin underneath."""
    plt = _pyplot()
    edges, count = bins["edges"], bins["count"]
    centres = (edges[:-1] + edges[1:]) / 2
    width = edges[1] - edges[0]
    used = count > 0
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(5, 6), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot([0, 1], [0, 1], "k--", lw=1, label="perfectly calibrated")
    top.bar(
        centres[used], bins["accuracy"][used], width=width * 0.9, alpha=0.6, label="accuracy in bin"
    )
    top.plot(
        bins["confidence"][used],
        bins["accuracy"][used],
        "o-",
        color="C3",
        label="(mean confidence, accuracy)",
    )
    top.set_ylim(0, 1)
    top.set_ylabel("accuracy")
    top.set_title(f"calibration, ECE = {ece:.4f}")
    top.legend(loc="upper left", fontsize=8)
    top.grid(alpha=0.3)
    bottom.bar(centres, count, width=width * 0.9, color="grey")
    bottom.set_xlabel("confidence (probability of the predicted class)")
    bottom.set_ylabel("predictions")
    bottom.set_xlim(0, 1)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
