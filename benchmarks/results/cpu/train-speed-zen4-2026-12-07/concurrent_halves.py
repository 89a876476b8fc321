"""The S model's loss gradient (with the rows' gradient, as the default step takes it) for the
full (30, 100) batch against its two halves of 15 rows, in turn and in two threads at once
(issue 22, item 1): whether two concurrent XLA calls would use the second core that a batch of 30
leaves idle in the recurrence. Median of 7 blocks of 30, in ms.

    python concurrent_halves.py
"""

import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax

# step_parts.py's set-up (its model, batch ``b`` and ``state_of``), without its timings.
SETUP = Path(__file__).resolve().parents[1] / "step-profile-S-lazy-2026-12-04" / "step_parts.py"
sys.argv = [str(SETUP)]
namespace = {"__file__": str(SETUP)}
exec(SETUP.read_text().split("def frozen")[0], namespace)

import common  # noqa: E402  (benchmarks/, on sys.path through step_parts.py)

from seqclf.lazy_embedding import value_and_row_grad  # noqa: E402
from seqclf.training.step import _weighted_cross_entropy  # noqa: E402

state, batch = namespace["state_of"](None), namespace["b"]
key = jax.random.PRNGKey(0)


def gradient(params, batch):
    def loss_fn(params, perturbations=None):
        variables = {"params": params}
        if perturbations is not None:
            variables["perturbations"] = perturbations
        logits = state.apply_fn(
            variables, batch["tokens"], batch["lengths"], train=True, rngs={"dropout": key}
        )
        return _weighted_cross_entropy(logits, batch), logits

    return value_and_row_grad(loss_fn, params, batch["tokens"], "embedding", state.heads.embedded)


compiled = jax.jit(gradient)
halves = [{k: v[:15] for k, v in batch.items()}, {k: v[15:] for k, v in batch.items()}]
threads = ThreadPoolExecutor(2)


def full():
    return jax.block_until_ready(compiled(state.params, batch))


def halves_in_turn():
    return jax.block_until_ready([compiled(state.params, h) for h in halves])


def halves_at_once():
    calls = [threads.submit(lambda h=h: jax.block_until_ready(compiled(state.params, h)))
             for h in halves]  # fmt: skip
    return [c.result() for c in calls]


forms = {"full batch of 30": full, "two halves in turn": halves_in_turn,
         "two halves in two threads": halves_at_once}  # fmt: skip
times = common.block_ms(forms, 30, 7, jax.block_until_ready)
for name, t in times.items():
    print(f"{name:28s} {statistics.median(t):6.2f} ms (min {min(t):.2f})")
