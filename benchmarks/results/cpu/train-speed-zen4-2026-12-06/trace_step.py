"""Which XLA ops the default S train step spends its time in: a jax.profiler trace of 100 steps.

    python trace_step.py   # prints ms per step by op name, the 45 largest

Caution: ops that XLA:CPU runs on its thread pool (the convolutions) are under-counted in such
a trace; time them alone (conv.txt).
"""

import collections
import glob
import gzip
import json
import sys
import tempfile
from pathlib import Path

import jax

# step_parts.py's set-up (its model, batch ``b`` and ``state_of``), without its timings.
SETUP = Path(__file__).resolve().parents[1] / "step-profile-S-lazy-2026-12-04" / "step_parts.py"
sys.argv = [str(SETUP)]
namespace = {"__file__": str(SETUP)}
exec(SETUP.read_text().split("def frozen")[0], namespace)

from seqclf.training.step import train_step_in_place  # noqa: E402

state, batch = namespace["state_of"](None), namespace["b"]
for _ in range(20):
    state, metrics = train_step_in_place(state, batch)
jax.block_until_ready(metrics)
trace_dir = tempfile.mkdtemp()
jax.profiler.start_trace(trace_dir)
for _ in range(100):
    state, metrics = train_step_in_place(state, batch)
jax.block_until_ready(metrics)
jax.profiler.stop_trace()
trace = sorted(glob.glob(f"{trace_dir}/**/*.trace.json.gz", recursive=True))[-1]
events = json.load(gzip.open(trace))["traceEvents"]
total, count = collections.Counter(), collections.Counter()
for e in events:
    if e.get("ph") == "X":
        total[e["name"]] += e["dur"]
        count[e["name"]] += 1
for name, us in total.most_common(45):
    print(f"{us / 100 / 1000:8.3f} ms/step  n={count[name] / 100:5.1f}  {name[:110]}")
