"""benchmarks/accuracy.py: the protocol's pieces, and one run of the suite on tiny slices.

No accuracy target is asserted here (those live in benchmarks/): only that every method ran on the
same splits, that what is written out is complete and sane, and that seqclf is invoked with no
option a user would not give.
"""

from __future__ import annotations

import csv
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

BENCH = Path(__file__).resolve().parents[1] / "benchmarks"
sys.path.insert(0, str(BENCH))

import accuracy  # noqa: E402
import accuracy_report  # noqa: E402
import baselines  # noqa: E402

MPQA = accuracy.CSV_SETS["mpqa"]
TINY = (
    "--epochs 1 --embed-dim 8 --hidden-size 8 --conv-filters 8 --max-words 500 --max-len 32 "
    "--ngram-buckets 64 --ngram-dim 4 --no-progress"
)
TOPICS = {
    "sports": ["goal", "match", "team", "score", "coach"],
    "tech": ["chip", "code", "cloud", "server", "laptop"],
    "food": ["pasta", "bread", "spice", "soup", "cheese"],
}


def _three_class_csv(path: Path, n: int = 150) -> Path:
    rng = random.Random(0)
    filler = ["the", "a", "of", "and", "today", "new"]
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        for i in range(n):
            label = list(TOPICS)[i % 3]
            words = rng.choices(TOPICS[label], k=3) + rng.choices(filler, k=4)
            rng.shuffle(words)
            writer.writerow([" ".join(words), label])
    return path


# ---------------------------------------------------------------------------------------------
# NBSVM features, by hand
# ---------------------------------------------------------------------------------------------


def test_nb_log_count_ratio_matches_a_hand_computation():
    # 3 binarized features; rows 0 and 1 positive.
    x = sp.csr_matrix(np.array([[1, 1, 0], [1, 0, 0], [0, 1, 1]], np.float32))
    r = baselines.nb_log_count_ratio(x, np.array([True, True, False]), alpha=1.0)
    # p = 1 + [2, 1, 0] = [3, 2, 1], |p|_1 = 6; q = 1 + [0, 1, 1] = [1, 2, 2], |q|_1 = 5.
    expected = np.log([(3 / 6) / (1 / 5), (2 / 6) / (2 / 5), (1 / 6) / (2 / 5)])
    np.testing.assert_allclose(r, expected, rtol=1e-12)
    # A feature seen only in positive rows points to the positive class, and vice versa.
    assert r[0] > 0 > r[2]


def test_nbsvm_scales_features_by_r_and_separates_three_classes():
    texts = [" ".join(random.Random(i).choices(TOPICS[c], k=3)) for i in range(30) for c in TOPICS]
    labels = [c for _ in range(30) for c in TOPICS]
    predictions, train_s, predict_s = baselines.nbsvm(texts, labels, ["goal team", "soup bread"])
    assert predictions == ["sports", "food"] and train_s > 0 and predict_s >= 0

    x = sp.csr_matrix(np.array([[1, 0], [1, 1], [0, 1], [0, 1]], np.float32))
    y = np.array(["a", "a", "b", "b"])
    model = baselines.NBLogisticRegression(C=10.0).fit(x, y)
    (r,) = model.ratios_  # one problem for two classes: "b" against "a"
    np.testing.assert_allclose(r, baselines.nb_log_count_ratio(x, y == "b"))
    np.testing.assert_allclose((x @ sp.diags(r)).toarray(), x.toarray() * r)
    assert model.predict(x).tolist() == y.tolist()


# ---------------------------------------------------------------------------------------------
# Folds, the seqclf command, the targets
# ---------------------------------------------------------------------------------------------


def test_cv_folds_hold_out_every_row_once_after_a_seeded_shuffle():
    folds = accuracy.cv_folds(23, 5, seed=3)
    held = np.concatenate([te for _, te in folds])
    assert sorted(held.tolist()) == list(range(23))  # each row held out exactly once
    assert sorted(len(te) for _, te in folds) == [4, 4, 5, 5, 5]
    for tr, te in folds:
        assert not set(tr) & set(te) and len(tr) + len(te) == 23
    assert held.tolist() != list(range(23))  # shuffled...
    again = accuracy.cv_folds(23, 5, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(folds, again, strict=True))  # ...seeded
    limited = accuracy.cv_folds(23, 2, seed=3, limit=10)
    first_ten = np.random.default_rng(3).permutation(23)[:10]
    assert sorted(np.concatenate([te for _, te in limited]).tolist()) == sorted(first_ten.tolist())
    with pytest.raises(ValueError, match="folds"):
        accuracy.cv_folds(3, 4)


def test_the_default_seqclf_invocation_has_no_options_but_data_and_output(tmp_path, monkeypatch):
    """What the suite runs when --seqclf-args is not given: only --train and --output-dir (and
    --data-dir for a TFDS name), with this checkout's seqclf."""
    calls = []

    def fake_run(cmd, **kwargs):
        calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(accuracy.subprocess, "run", fake_run)
    extra = accuracy.shlex.split(accuracy.build_parser().parse_args([]).seqclf_args)
    assert extra == []
    rows = accuracy.LabelledTexts(["good film", "bad film"], ["pos", "neg"])
    csv_split = accuracy.Split(0, rows, rows)
    tfds_split = accuracy.Split(0, rows, rows, ("imdb_reviews", "/data/tfds"))
    for i, split in enumerate((csv_split, tfds_split)):
        work = tmp_path / str(i)
        work.mkdir()
        accuracy.train_seqclf(split, work, extra, work / "log")

    (cmd_csv, kw), (cmd_tfds, _) = calls
    prefix = [sys.executable, "-m", "seqclf.cli", "train"]
    assert cmd_csv == [*prefix, "--train", str(tmp_path / "0" / "train.csv"), "--output-dir",
                       str(tmp_path / "0" / "model")]  # fmt: skip
    assert cmd_tfds == [*prefix, "--train", "imdb_reviews", "--output-dir",
                        str(tmp_path / "1" / "model"), "--data-dir", "/data/tfds"]  # fmt: skip
    assert kw["env"]["PYTHONPATH"].split(os.pathsep)[0] == str(accuracy.REPO)
    with (tmp_path / "0" / "train.csv").open() as f:  # the fold's training rows, as a user's file
        assert list(csv.reader(f)) == [["text", "label"], ["good film", "pos"], ["bad film", "neg"]]


def _rows(set_name, method, correct, n, folds="10"):
    return {
        "set": set_name,
        "method": method,
        "fold": 0,
        "folds": folds,
        "n_test": n,
        "correct": correct,
        "train_seconds": 1.0,
        "predict_seconds": 0.1,
        "error": "",
    }


def test_targets_compare_seqclf_with_the_best_baseline_minus_its_standard_error():
    rows = [
        _rows("a", "seqclf", 800, 1000),
        _rows("a", "tfidf_lr", 810, 1000),  # best on a; SE 0.0124: 0.800 >= 0.7976, met
        _rows("a", "nbsvm", 790, 1000),
        _rows("b", "seqclf", 700, 1000),
        _rows("b", "fasttext", 760, 1000),  # missed by 0.06
        _rows("b", "seqclf/recurrent_head", 900, 1000),  # a head is no baseline
    ]
    summaries = accuracy_report.summarize(rows)
    best = next(s for s in summaries if (s.set, s.method) == ("a", "tfidf_lr"))
    assert math.isclose(best.se, math.sqrt(0.81 * 0.19 / 1000))
    lines = accuracy_report.targets(summaries)
    assert "MET" in lines[0] and "tfidf_lr" in lines[0]
    assert "MISSED" in lines[1] and "fasttext" in lines[1] and "-0.0600" in lines[1]
    assert "MISSED" in lines[2] and "-0.0350" in lines[2]  # average of +(-0.01) and -0.06


# ---------------------------------------------------------------------------------------------
# The whole suite on tiny slices
# ---------------------------------------------------------------------------------------------


def test_accuracy_suite_smoke(tmp_path):
    """All methods on a 3-class user CSV and (when ../shared has it) an MPQA slice, 2 folds, one
    run; a tiny seqclf (--seqclf-args) with two heads so that the per-head rows appear too."""
    user = _three_class_csv(tmp_path / "topics.csv")
    sets = ([str(MPQA)] if MPQA.is_file() else []) + [str(user)]
    out = tmp_path / "out"
    cmd = [
        sys.executable,
        str(BENCH / "accuracy.py"),
        *("--sets", ",".join(sets), "--folds", "2", "--max-folds", "1", "--limit", "3000"),
        *("--out", str(out), "--seqclf-args", TINY),
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    with (out / "accuracy.csv").open() as f:
        rows = list(csv.DictReader(f))
    names = [Path(s).stem for s in sets]
    methods = [
        "seqclf",
        "seqclf/nbsvm_head",  # the default head beside the CNN-LSTM
        "seqclf/ngram_head",
        "seqclf/recurrent_head",
        *baselines.BASELINES,
    ]
    assert sorted((r["set"], r["method"]) for r in rows) == sorted(
        (s, m) for s in names for m in methods
    )
    assert all(r["error"] == "" and r["fold"] == "0" and r["folds"] == "2" for r in rows)
    for r in rows:
        assert 0.0 <= float(r["accuracy"]) <= 1.0
        assert int(r["correct"]) == round(float(r["accuracy"]) * int(r["n_test"]))
        if "/" not in r["method"]:
            assert float(r["train_seconds"]) > 0 and float(r["predict_seconds"]) >= 0
    acc = {(r["set"], r["method"]): float(r["accuracy"]) for r in rows}
    test_size = {r["set"]: int(r["n_test"]) for r in rows}
    assert test_size["topics"] == 75
    for m in baselines.BASELINES:  # topic words separate the 3 classes
        assert acc["topics", m] >= 0.9, (m, acc["topics", m])
    if MPQA.is_file():
        assert test_size["mpqa"] == 1500
        (split,) = accuracy.load_set(str(MPQA), 2, 1, None, limit=3000).splits  # the same fold
        majority = max(map(split.test.labels.count, set(split.test.labels))) / 1500  # ~0.69
        for m in ("tfidf_lr", "nbsvm"):
            assert acc["mpqa", m] >= majority + 0.04, (m, acc["mpqa", m], majority)
        assert acc["mpqa", "fasttext"] >= 0.6

    md = (out / "accuracy.md").read_text()
    for s in names:
        for m in methods:
            assert f"| {s} | {m} | 1 |" in md, (s, m)
    assert "seqclf train --train FOLD_TRAIN.csv --output-dir DIR --epochs 1" in md
    assert "NOT the defaults" in md and "--seqclf-args" in md
    for word in ("scikit-learn", "fasttext-wheel", "jax", "seqclf git", "cores", "## Targets"):
        assert word in md, word
    assert (out / "accuracy.png").stat().st_size > 1000
    log = (out / "logs" / "topics-fold0.log").read_text()
    assert log.startswith(sys.executable) and "--epochs 1" in log
    assert "Targets:" in proc.stdout and "| topics |" in proc.stdout


def test_a_failing_method_is_recorded_and_the_others_still_run(tmp_path, monkeypatch):
    def failing_train(cmd, stdout=None, **kwargs):
        stdout.write("seqclf train: error: something about the data\n")
        return subprocess.CompletedProcess(cmd, 2)

    monkeypatch.setattr(accuracy.subprocess, "run", failing_train)
    texts = [" ".join(random.Random(i).choices(TOPICS[c], k=3)) for i in range(8) for c in TOPICS]
    rows = accuracy.LabelledTexts(texts, [c for _ in range(8) for c in TOPICS])
    ds = accuracy.DataSet(
        "topics", "2", [accuracy.Split(0, rows.take(range(12)), rows.take(range(12, 24)))]
    )
    out = list(accuracy.run_split(ds, ds.splits[0], ["seqclf", "tfidf_lr"], [], tmp_path))
    assert [r["method"] for r in out] == ["seqclf", "tfidf_lr"]
    assert "exited with 2: seqclf train: error: something about the data" in out[0]["error"]
    assert out[0]["accuracy"] == "" and out[1]["error"] == "" and 0 <= out[1]["accuracy"] <= 1
