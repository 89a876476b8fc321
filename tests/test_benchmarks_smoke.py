"""benchmarks/rnn_speed.py (tiny grid: CSV, Markdown, PNG) and imdb_accuracy.py (a few texts) run.

No timing is asserted: only that every implementation ran, agreed with the reference and was
written out in the documented format.
"""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import random
import subprocess
import sys
from pathlib import Path

from seqclf.cpu_allocator import has_glibc

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "rnn_speed.py"


def test_rnn_speed_smoke(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    cmd = [sys.executable, str(SCRIPT), "--smoke", "--kinds", "rnn", "--repeats", "2"]
    glibc = has_glibc()
    cmd += ["--keep-freed-memory"] if glibc else []  # the allocator setting's path runs too
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
    assert ("keep freed memory" in md) == glibc
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
    assert sorted(heads) == ["nbsvm_head", "ngram_head", "recurrent_head"]  # + the default NBSVM
    assert all(0 <= v <= 1 for v in heads.values())


def _rnn_speed_module():
    spec = importlib.util.spec_from_file_location("rnn_speed", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def test_scaling_fits_read_the_growth_exponent_of_each_axis(tmp_path):
    """Synthetic rows: time linear in length for one implementation, quadratic for another, and
    square-root in batch; the fitted exponents are those, and the report and plot are written."""
    rs = _rnn_speed_module()
    rows = []
    for b, t, f, h in rs.SCALING:
        for impl, ms in (("lin", 0.5 * t), ("quad", 0.01 * t * t)):
            ms *= (b / 32) ** 0.5  # both grow as sqrt(batch)
            rows.append(rs.Row("lstm", impl, "cpu", "float32", (b, t, f, h), "fwdbwd", ms, "ok"))
    rows.append(rs.Row("lstm", "lin", "cpu", "float32", (8, 64, 64, 128), "fwdbwd", 1.0, "ok"))
    fits = {(fit.impl, fit.axis): fit for fit in rs.scaling_fits(rows)}
    assert sorted(fits) == [
        ("lin", "batch"),
        ("lin", "seq_len"),
        ("quad", "batch"),
        ("quad", "seq_len"),
    ]  # the lone batch-8 row makes no family
    assert abs(fits["lin", "seq_len"].exponent - 1.0) < 1e-6
    assert abs(fits["quad", "seq_len"].exponent - 2.0) < 1e-6
    assert abs(fits["lin", "batch"].exponent - 0.5) < 1e-6
    assert fits["lin", "seq_len"].fixed == "batch 32, hidden 128"
    assert [t for t, _ in fits["lin", "seq_len"].points] == [64, 128, 256, 512, 1024, 2048]

    rs.write_markdown(rows, tmp_path / "r.md", ["header"], 100.0, "cpu", [])
    md = (tmp_path / "r.md").read_text()
    assert "## Scaling with length and batch" in md
    assert "| lstm | quad | float32 | fwdbwd | seq_len | batch 32, hidden 128 | 64 → 2048 |" in md
    rs.write_plot(rows, tmp_path / "r.png", "title")
    assert (tmp_path / "r.png").stat().st_size > 1000


def test_target_summary_reports_forward_only_and_bfloat16(tmp_path):
    """Synthetic rows at the three target shapes: the forward-only table compares the best
    seqclf-fused unroll with Flax (goal 1.0x), the bfloat16 table each mode against float32."""
    rs = _rnn_speed_module()
    rows = []
    for i, shape in enumerate(rs.TARGETS):
        for mode in ("fwd", "fwdbwd"):
            rows.append(rs.Row("lstm", "flax", "cpu", "float32", shape, mode, 10.0, "ok"))
            rows.append(rs.Row("lstm", "seqclf-fused", "cpu", "float32", shape, mode, 8.0, "ok"))
            slower = rs.Row("lstm", "seqclf-fused-u4", "cpu", "float32", shape, mode, 12.0, "ok")
            rows.append(slower)
            ms = 4.0 if i else 16.0  # bf16 twice as fast, except at the first shape
            rows.append(rs.Row("lstm", "seqclf-fused", "cpu", "bf16", shape, mode, ms, "ok"))
    lines = rs.target_summary(rows, "cpu")
    forward = [line for line in lines if line.startswith("| (") and "≥ 1.0x" in line]
    assert len(forward) == 2 + 3  # fwdbwd (shapes 2 and 3 have goal 1.0) and forward-only
    assert "| (32, 100, 64, 128) | 10.0 | seqclf-fused | 8.0 | 1.25x | ≥ 1.0x | yes |" in lines
    bf16 = [line for line in lines if "> 1.0x" in line]
    assert len(bf16) == 6  # 3 shapes x 2 modes
    assert "| (32, 100, 64, 128) | fwd | 8.00 | 16.00 | 0.50x | > 1.0x | no |" in bf16
    assert "| (64, 512, 256, 512) | fwdbwd | 8.00 | 4.00 | 2.00x | > 1.0x | yes |" in bf16
