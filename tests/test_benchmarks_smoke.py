"""benchmarks/rnn_speed.py (tiny grid: CSV, Markdown, PNG) and imdb_accuracy.py (a few texts) run.

No timing is asserted: only that every implementation ran, agreed with the reference and was
written out in the documented format.
"""

from __future__ import annotations

import csv
import json
import os
import random
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "rnn_speed.py"


def test_rnn_speed_smoke(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--kinds", "rnn", "--repeats", "2"]
    proc = subprocess.run(
        [*cmd, "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    with (tmp_path / "rnn_speed.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["impl", "device", "precision", "batch", "seq_len", "hidden", "mode", "ms"]
    body = rows[1:]
    impls = {r[0] for r in body}
    assert impls == {"rnn/seqclf-scan", "rnn/seqclf-fused", "rnn/flax"}
    # 3 implementations x 2 shapes x 2 modes, all on the CPU in float32, with positive times.
    assert len(body) == 12
    assert {(r[1], r[2]) for r in body} == {("cpu", "float32")}
    assert {r[6] for r in body} == {"fwd", "fwdbwd"}
    assert all(float(r[7]) > 0 for r in body)

    md = (tmp_path / "rnn_speed.md").read_text()
    assert "GFLOP/s" in md and "jax" in md and "max|diff|" not in md
    assert (tmp_path / "rnn_speed.png").stat().st_size > 1000


def test_imdb_accuracy_smoke(tmp_path):
    """benchmarks/imdb_accuracy.py on a few JSON Lines texts: one CSV row, per-head accuracies."""
    rng = random.Random(0)
    good, bad = ["great", "superb", "moving", "fun"], ["awful", "boring", "waste", "dull"]
    for name, n in (("train", 80), ("test", 40)):
        with (tmp_path / f"{name}.jsonl").open("w") as fh:
            for i in range(n):
                label = ["neg", "pos"][i % 2]
                words = rng.choices(good if label == "pos" else bad, k=6) + ["film"] * 3
                fh.write(json.dumps({"text": " ".join(words), "label": label}) + "\n")
    script = SCRIPT.parent / "imdb_accuracy.py"
    cmd = [sys.executable, str(script), "--presets", "smoke", "--out", str(tmp_path)]
    cmd += ["--set", "ngram_learning_rate=0.05", "--set", "epochs=2"]  # overrides reach the run
    for split in ("train", "test"):
        cmd += [f"--{split}-file", str(tmp_path / f"{split}.jsonl")]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    with (tmp_path / "imdb_accuracy.csv").open() as fh:
        (row,) = list(csv.DictReader(fh))
    assert row["preset"] == "smoke+ngram_learning_rate=0.05+epochs=2" and row["device"]
    assert 0 <= float(row["test_accuracy"]) <= 1
    assert row["epochs_run"] == "2" and json.loads(row["training"])["ngram_learning_rate"] == 0.05
    heads = json.loads(row["head_test_accuracy"])
    assert sorted(heads) == ["ngram_head", "recurrent_head"]
    assert all(0 <= v <= 1 for v in heads.values())
