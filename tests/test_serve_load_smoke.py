"""benchmarks/serve_load.py end to end on a tiny model and a handful of requests.

No timing is asserted: only that both servers answered every request, stopped with status 0 on
SIGTERM, that memory was sampled, and that the CSV, Markdown and PNG were written in the
documented format.
"""

from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "serve_load.py"
TINY = [
    "embed_dim=8",
    "hidden_size=8",
    "conv_filters=(4,)",
    "ngram_buckets=64",
    "ngram_dim=8",
    "nb_buckets=256",
    "max_len=64",
    "num_buckets=2",
    "max_words=500",
    "batch_size=32",
]


def test_serve_load_smoke(tmp_path, imdb_data_dir):
    pytest.importorskip("uvicorn")
    cmd = [sys.executable, str(SCRIPT), "--train-quick", "--quick-train-size", "200"]
    cmd += [x for item in TINY for x in ("--set", item)]
    cmd += ["--data-dir", str(imdb_data_dir), "--texts", "20", "--clients", "1,3"]
    cmd += ["--requests", "6", "--soak", "9", "--soak-clients", "3", "--batch-size", "8"]
    cmd += ["--fasttext-train", "200", "--offline-repeats", "1", "--rss-interval", "0.1"]
    cmd += ["--out", str(tmp_path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "JAX_PLATFORMS": "cpu"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]

    with (tmp_path / "serve_load.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    served = [r for r in rows if r["clients"]]
    assert [(r["mode"], r["clients"]) for r in served] == [
        ("batching", "1"),
        ("batching", "3"),
        ("batching soak", "3"),
        ("no-batching", "1"),
        ("no-batching", "3"),
    ]
    for r in served:
        expected = "9" if r["mode"] == "batching soak" else "6"
        assert (r["requests"], r["texts"], r["errors"]) == (expected, expected, "0"), r
        assert float(r["texts_per_s"]) > 0
        assert 0 < float(r["p50_ms"]) <= float(r["p95_ms"]) <= float(r["p99_ms"])
        assert float(r["texts_per_call"]) >= 1
        # A level of 6 requests may take less than the server's 10 ms CPU clock tick.
        assert float(r["server_cpu_ms"]) >= 0 and float(r["client_cpu_ms"]) > 0
    offline = {r["mode"]: r for r in rows if not r["clients"]}
    assert float(offline["offline seqclf predict_proba"]["texts_per_s"]) > 0
    for peer in ("fasttext", "keras", "torch"):
        row = offline[f"offline {peer}"]
        installed = __import__("importlib.util").util.find_spec(peer) is not None
        assert (float(row["texts_per_s"]) > 0) if installed else "not installed" in row["note"]

    with (tmp_path / "serve_load_rss.csv").open() as fh:
        rss = list(csv.DictReader(fh))
    assert {r["mode"] for r in rss} == {"batching", "no-batching"}
    assert all(float(r["rss_mib"]) > 10 for r in rss)
    assert any(r["phase"] == "soak" for r in rss)

    md = (tmp_path / "serve_load.md").read_text()
    assert "Command: `" in md and "--train-quick" in md and "jax" in md
    assert md.count("exited with status 0 after SIGTERM") == 2
    assert "soak of 9 requests: 0 errors" in md
    assert (tmp_path / "serve_load.png").stat().st_size > 10_000
    assert (tmp_path / "quick-run" / "checkpoints").is_dir()
