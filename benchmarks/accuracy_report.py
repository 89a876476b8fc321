"""The accuracy suite's summary: pooled accuracy ± standard error, markdown, PNG, the targets."""

from __future__ import annotations

import csv
import datetime
import importlib.metadata
import json
import math
import os
import platform
import shlex
import subprocess
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
BASELINE_METHODS = ("tfidf_lr", "nbsvm", "fasttext")
METHOD_ORDER = ("seqclf", *BASELINE_METHODS)


@dataclass
class Summary:
    """One set × method over the folds run.

    Attributes:
      accuracy: correct / n, pooled over the folds (the n-weighted mean of the fold accuracies).
      se: one standard error, sqrt(accuracy (1 - accuracy) / n).
      train_seconds, predict_seconds: totals over the folds (nan where not timed).
    """

    set: str
    method: str
    protocol: str
    folds_run: int
    n: int
    correct: int
    train_seconds: float
    predict_seconds: float

    @property
    def accuracy(self) -> float:
        return self.correct / self.n

    @property
    def se(self) -> float:
        p = self.accuracy
        return math.sqrt(p * (1 - p) / self.n)


def _seconds(value: str | float) -> float:
    return float("nan") if value in ("", None) else float(value)


def summarize(rows: Sequence[dict]) -> list[Summary]:
    """Rows of the CSV (errors left out) -> one ``Summary`` per set × method, in run order."""
    out: dict[tuple[str, str], Summary] = {}
    for r in rows:
        if r["error"]:
            continue
        key = (r["set"], r["method"])
        s = out.get(key)
        if s is None:
            protocol = "train → test" if r["folds"] == "test" else f"{r['folds']}-fold CV"
            s = out[key] = Summary(r["set"], r["method"], protocol, 0, 0, 0, 0.0, 0.0)
        s.folds_run += 1
        s.n += int(r["n_test"])
        s.correct += int(r["correct"])
        s.train_seconds += _seconds(r["train_seconds"])
        s.predict_seconds += _seconds(r["predict_seconds"])
    return list(out.values())


def _methods(summaries: Sequence[Summary]) -> list[str]:
    seen = list(dict.fromkeys(s.method for s in summaries))
    known = [m for m in METHOD_ORDER if m in seen]
    return known + sorted(m for m in seen if m not in known)


def _sets(summaries: Sequence[Summary]) -> list[str]:
    return list(dict.fromkeys(s.set for s in summaries))


def targets(summaries: Sequence[Summary]) -> list[str]:
    """The issue's targets, one line per set and one for the average: seqclf >= the best
    baseline of the same run minus that baseline's standard error; above it on average."""
    by = {(s.set, s.method): s for s in summaries}
    lines, gaps = [], []
    for name in _sets(summaries):
        ours = by.get((name, "seqclf"))
        base = [by[name, m] for m in BASELINE_METHODS if (name, m) in by]
        if ours is None or not base:
            continue
        best = max(base, key=lambda s: s.accuracy)
        ok = ours.accuracy >= best.accuracy - best.se
        gaps.append(ours.accuracy - best.accuracy)
        lines.append(
            f"- {name}: seqclf {ours.accuracy:.4f} vs best baseline {best.method} "
            f"{best.accuracy:.4f} ± {best.se:.4f}: "
            f"{'MET' if ok else 'MISSED'} (seqclf ≥ best − 1 SE; difference "
            f"{ours.accuracy - best.accuracy:+.4f})"
        )
    if not gaps:
        return ["- seqclf and a baseline did not both run on any set: no target to check."]
    mean = sum(gaps) / len(gaps)
    lines.append(
        f"- average over {len(gaps)} set(s): seqclf − best baseline = {mean:+.4f}: "
        f"{'MET' if mean > 0 else 'MISSED'} (seqclf above the best baseline on average)"
    )
    return lines


def markdown_tables(summaries: Sequence[Summary]) -> str:
    """The accuracy table (a row per set, a column per method) and the wall-time table."""
    methods, by = _methods(summaries), {(s.set, s.method): s for s in summaries}
    lines = [
        "| set | protocol | held-out n | " + " | ".join(methods) + " |",
        "| --- | --- | ---: | " + " | ".join("---:" for _ in methods) + " |",
    ]
    for name in _sets(summaries):
        first = next(s for s in summaries if s.set == name)
        cells = []
        for m in methods:
            s = by.get((name, m))
            cells.append(f"{s.accuracy:.4f} ± {s.se:.4f}" if s else "–")
        n = max(s.n for s in summaries if s.set == name)
        protocol = first.protocol
        if first.protocol.endswith("CV"):
            protocol += f" ({first.folds_run} run)"
        lines.append(f"| {name} | {protocol} | {n} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Wall time, seconds summed over the folds run (train: fit on the training rows; "
        "predict: score the held-out rows, seqclf's including `seqclf.load`):",
        "",
        "| set | method | folds | held-out n | accuracy ± SE | train s | predict s |",
        "| --- | --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in _sets(summaries):
        for m in methods:
            s = by.get((name, m))
            if s is None:
                continue
            times = [
                f"{t:.1f}" if not math.isnan(t) else "–"
                for t in (s.train_seconds, s.predict_seconds)
            ]
            lines.append(
                f"| {name} | {m} | {s.folds_run} | {s.n} | {s.accuracy:.4f} ± {s.se:.4f} | "
                + " | ".join(times)
                + " |"
            )
    return "\n".join(lines)


def write_plot(summaries: Sequence[Summary], path: Path, title: str) -> None:
    """Grouped bars: a group per set, a bar per method, error bars of one standard error."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    methods, sets = _methods(summaries), _sets(summaries)
    by = {(s.set, s.method): s for s in summaries}
    width = 0.8 / max(1, len(methods))
    fig, ax = plt.subplots(figsize=(max(6, 1.6 * len(sets) + 2), 4.5))
    lowest = 1.0
    for j, m in enumerate(methods):
        xs, ys, errs = [], [], []
        for i, name in enumerate(sets):
            s = by.get((name, m))
            if s is not None:
                xs.append(i + (j - (len(methods) - 1) / 2) * width)
                ys.append(s.accuracy)
                errs.append(s.se)
                lowest = min(lowest, s.accuracy - s.se)
        ax.bar(xs, ys, width, yerr=errs, capsize=2, label=m)
    ax.set_xticks(range(len(sets)), sets)
    ax.set_ylim(max(0.0, lowest - 0.05), 1.0)
    ax.set_ylabel("held-out accuracy (± 1 SE)")
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=8, ncol=min(4, len(methods)), loc="lower right")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------
# Stamp and output
# ---------------------------------------------------------------------------------------------


def _git(*args: str) -> str:
    try:
        return subprocess.run(
            ["git", *args], cwd=REPO, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return ""


def seqclf_commit() -> str:
    """This checkout's commit, ``-dirty`` if tracked files differ from it; "unknown" outside git."""
    commit = _git("rev-parse", "--short", "HEAD")
    if not commit:
        return "unknown"
    return commit + ("-dirty" if _git("status", "--porcelain", "--untracked-files=no") else "")


def versions() -> dict[str, str]:
    out = {"python": platform.python_version(), "seqclf": f"git {seqclf_commit()}"}
    for name in ("jax", "jaxlib", "flax", "numpy", "scikit-learn", "fasttext-wheel"):
        try:
            out[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            pass
    return out


def run_stamp(argv: Sequence[str], seqclf_args: Sequence[str], note: str) -> dict:
    """What the markdown says about the run; taken when it starts."""
    from common import cpu_name

    script = os.path.relpath(HERE / "accuracy.py", Path.cwd())
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    return {
        "command": shlex.join(["python", script, *argv]),
        "started": datetime.datetime.now(datetime.timezone.utc),
        "machine": cpu_name(),
        "load_start": load,
        "versions": versions(),
        "seqclf_args": list(seqclf_args),
        "note": note,
    }


def save_stamp(stamp: dict, path: Path) -> None:
    """The stamp as JSON (``run.json``), so that a stopped run can still be rendered."""
    path.write_text(json.dumps({**stamp, "started": stamp["started"].isoformat()}, indent=1))


def load_stamp(path: Path) -> dict:
    stamp = json.loads(path.read_text())
    return {**stamp, "started": datetime.datetime.fromisoformat(stamp["started"])}


def read_rows(path: Path) -> list[dict]:
    """accuracy.csv back into rows (``fold`` as int, the other fields as the CSV has them)."""
    with path.open(newline="") as f:
        return [{**r, "fold": int(r["fold"])} for r in csv.DictReader(f)]


def progress_line(row: dict, num_splits: int) -> str:
    where = f"[{row['set']} fold {row['fold'] + 1}/{num_splits}]"
    if row["error"]:
        return f"{where} {row['method']}: ERROR {row['error']}"
    times = ""
    if row["train_seconds"] != "":
        times = f" (train {row['train_seconds']} s, predict {row['predict_seconds']} s)"
    return f"{where} {row['method']}: {row['accuracy']:.4f} of {row['n_test']}{times}"


def write_outputs(
    rows: Sequence[dict], out: Path, stamp: dict, finished: datetime.datetime | None = None
) -> str:
    """accuracy.md and accuracy.png in ``out``; returns the tables and targets as printed.

    ``finished``: when the last row was measured; None: now, the end of the run."""
    summaries = summarize(rows)
    load = ""
    if finished is None:
        finished = datetime.datetime.now(datetime.timezone.utc)
        if hasattr(os, "getloadavg"):
            load = f", {os.getloadavg()[0]:.1f} at the end"
    train_cmd = "seqclf train --train FOLD_TRAIN.csv --output-dir DIR"
    if stamp["seqclf_args"]:
        train_cmd += " " + shlex.join(stamp["seqclf_args"]) + "  (NOT the defaults: experiment)"
    body = markdown_tables(summaries) if summaries else "(no results)"
    target_lines = targets(summaries)
    errors = [
        f"- {r['set']} fold {r['fold']} {r['method']}: {r['error']}" for r in rows if r["error"]
    ]
    libs = ", ".join(f"{k} {v}" for k, v in stamp["versions"].items())
    md = [
        "# Accuracy suite",
        "",
        f"- command: `{stamp['command']}`",
        f"- date: {stamp['started']:%Y-%m-%d %H:%M} – {finished:%H:%M} UTC "
        f"({(finished - stamp['started']).total_seconds() / 60:.1f} min)",
        f"- machine: {stamp['machine']}; load average {stamp['load_start']:.1f} at the start{load}",
        f"- versions: {libs}",
    ]
    if any(r["method"] == "seqclf" for r in rows):
        md.append(
            f"- seqclf ran as: `{train_cmd}`, then `seqclf.load(DIR).predict(held-out texts)`"
        )
    if stamp["note"]:
        md.append(f"- note: {stamp['note']}")
    md += [
        "",
        "Accuracy on the held-out rows, pooled over the folds run, ± one standard error "
        "sqrt(p(1 − p)/n), n = all held-out rows of the folds run. seqclf/HEAD: that head of the "
        "seqclf checkpoint alone.",
        "",
        body,
        "",
        "## Targets (issue 17)",
        "",
        *target_lines,
    ]
    if errors:
        md += ["", "## Errors", "", *errors]
    (out / "accuracy.md").write_text("\n".join(md) + "\n")
    if summaries:
        title = (
            f"{stamp['machine']}, {stamp['started']:%Y-%m-%d}; seqclf {stamp['versions']['seqclf']}"
        )
        write_plot(summaries, out / "accuracy.png", title)
    return "\n".join([body, "", "Targets:", *target_lines, *errors])


if __name__ == "__main__":  # python benchmarks/accuracy_report.py DIR: render DIR's CSV again
    import sys

    directory = Path(sys.argv[1])
    table = directory / "accuracy.csv"
    mtime = datetime.datetime.fromtimestamp(table.stat().st_mtime, datetime.timezone.utc)
    print(write_outputs(read_rows(table), directory, load_stamp(directory / "run.json"), mtime))
