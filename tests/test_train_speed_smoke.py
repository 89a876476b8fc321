"""benchmarks/train_speed.py runs end to end on 200 IMDB reviews and writes its CSV, Markdown, PNG.

seqclf and Flax always run; Keras and PyTorch only where they are installed (they are not in CI).
No timing is asserted: only that every implementation trained, was evaluated and was written out
in the documented format.
"""

from __future__ import annotations

import csv
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "train_speed.py"


def test_train_speed_smoke(tmp_path, imdb_data_dir):
    impls = ["seqclf", "seqclf-lazy", "flax"]
    impls += [name for name in ("keras", "torch") if importlib.util.find_spec(name) is not None]
    cmd = [sys.executable, str(SCRIPT), "--limit", "200", "--epochs", "1", "--configs", "S"]
    cmd += ["--impls", ",".join(impls), "--data-dir", str(imdb_data_dir), "--out", str(tmp_path)]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=900)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]

    with (tmp_path / "train_speed.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["impl", "config", "device", "epoch", "seconds", "test_acc"]
    body = rows[1:]
    assert sorted(r[0] for r in body) == sorted(impls)  # one epoch each, none failed
    for impl, config, device, epoch, seconds, test_acc in body:
        assert (config, epoch) == ("S", "1"), impl
        assert device and float(seconds) > 0
        assert 0.0 <= float(test_acc) <= 1.0

    md = (tmp_path / "train_speed.md").read_text()
    assert "--limit 200" in md and "seqclf / peer" in md and "jax" in md
    assert "failed" not in md
    assert (tmp_path / "train_speed.png").stat().st_size > 1000
