"""The whole S train step with its gradient taken as two half-batch calls in two threads, against
the default step (issue 22, item 1): what using the second core that a batch of 30 leaves idle
in the recurrence would give the step, dispatch and the combining update included.

    python concurrent_step.py

The threaded step: each half (15 rows) returns the gradient of its *summed* weighted loss and of
its looked-up vectors, and its weight sum (``half_gradient``); a third call (``combine_and_update``,
state donated) divides by the total weight, sums the vectors' gradient per row over the whole
batch (``row_gradients``) and applies the lazy update, so the update equals the default step's
for the same dropout masks. The masks do differ (each half folds its own key), which is why this
is a probe and not the library's step. Median of 7 blocks of 30 steps on a fixed batch, ms.
"""

import functools
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import jax
import jax.numpy as jnp
import optax

# step_parts.py's set-up (its model, batch ``b`` and ``state_of``), without its timings.
SETUP = Path(__file__).resolve().parents[1] / "step-profile-S-lazy-2026-12-04" / "step_parts.py"
sys.argv = [str(SETUP)]
namespace = {"__file__": str(SETUP)}
exec(SETUP.read_text().split("def frozen")[0], namespace)

import common  # noqa: E402  (benchmarks/, on sys.path through step_parts.py)

from seqclf.lazy_embedding import (  # noqa: E402
    join_embedding,
    row_gradients,
    split_embedding,
    value_and_row_grad,
)
from seqclf.training.step import _weighted_cross_entropy, train_step_in_place  # noqa: E402

state_of, batch = namespace["state_of"], namespace["b"]
heads = state_of(None).heads
NAME, EMBEDDED = heads.embedding, heads.embedded


@functools.partial(jax.jit, static_argnames="train")
def half_gradient(state, half, index, train=True):
    key = jax.random.fold_in(jax.random.fold_in(state.dropout_key, state.step), index)
    table, rest = split_embedding(state.params, NAME)

    def summed_loss(rest, vectors):
        variables = {"params": join_embedding(table, rest, NAME), "perturbations": vectors}
        logits = state.apply_fn(
            variables, half["tokens"], half["lengths"], train=train, rngs={"dropout": key}
        )
        losses = optax.softmax_cross_entropy_with_integer_labels(logits, half["labels"])
        return jnp.sum(losses * half["weights"])

    vectors = {EMBEDDED: jnp.zeros(half["tokens"].shape + table.shape[1:], table.dtype)}
    loss, (rest_grads, vector_grads) = jax.value_and_grad(summed_loss, argnums=(0, 1))(
        rest, vectors
    )
    return loss, jnp.sum(half["weights"]), rest_grads, vector_grads[EMBEDDED]


def combined_gradient(state, tokens, parts):
    """The halves' ``half_gradient`` results -> the whole batch's (loss, grads, rows), in
    ``value_and_row_grad``'s layout."""
    total = jnp.maximum(sum(p[1] for p in parts), 1.0)
    rest = jax.tree_util.tree_map(lambda *g: sum(g) / total, *(p[2] for p in parts))
    vector_grads = jnp.concatenate([p[3] for p in parts]) / total
    table = split_embedding(state.params, NAME)[0]
    rows, row_grads = row_gradients(tokens, vector_grads, table.shape[0])
    return sum(p[0] for p in parts) / total, join_embedding(row_grads, rest, NAME), rows


def _combine_and_update(state, tokens, parts):
    loss, grads, rows = combined_gradient(state, tokens, parts)
    return state.apply_gradients(grads=grads, embedding_rows=rows), loss


combine_and_update = jax.jit(_combine_and_update, donate_argnums=0)
halves = [{k: v[:15] for k, v in batch.items()}, {k: v[15:] for k, v in batch.items()}]
threads = ThreadPoolExecutor(1)
states = {"default": state_of(None), "threaded": state_of(None)}


def default_step():
    states["default"], metrics = train_step_in_place(states["default"], batch)
    return metrics


def threaded_step():
    state = states["threaded"]
    other = threads.submit(lambda: jax.block_until_ready(half_gradient(state, halves[1], 1)))
    first = jax.block_until_ready(half_gradient(state, halves[0], 0))
    states["threaded"], loss = combine_and_update(state, batch["tokens"], [first, other.result()])
    return loss


def halves_in_turn_step():
    state = states["in turn"]
    parts = [half_gradient(state, h, i) for i, h in enumerate(halves)]
    states["in turn"], loss = combine_and_update(state, batch["tokens"], parts)
    return loss


states["in turn"] = state_of(None)
if __name__ == "__main__":
    # Without dropout both forms take the same gradient: check the combined one against the
    # whole batch's (value_and_row_grad, as the default step takes it), as dense tables.
    state = state_of(None)
    parts = [half_gradient(state, h, i, train=False) for i, h in enumerate(halves)]
    halves_loss, halves_grads, rows = combined_gradient(state, batch["tokens"], parts)
    vocab = split_embedding(state.params, NAME)[0].shape[0]

    def whole_loss(params, perturbations):
        variables = {"params": params, "perturbations": perturbations}
        logits = state.apply_fn(variables, batch["tokens"], batch["lengths"])
        return _weighted_cross_entropy(logits, batch), logits

    (loss, _), grads, rows_w = value_and_row_grad(
        whole_loss, state.params, batch["tokens"], NAME, EMBEDDED
    )
    dense = lambda r, g: jnp.zeros((vocab, g.shape[1])).at[r].add(g, mode="drop")  # noqa: E731
    table_grads, rest = split_embedding(halves_grads, NAME)
    rows_diff = jnp.max(jnp.abs(dense(rows, table_grads) - dense(rows_w, grads[NAME]["embedding"])))
    rest_diff = max(jax.tree_util.tree_leaves(jax.tree_util.tree_map(
        lambda a, b: jnp.max(jnp.abs(a - b)), rest, split_embedding(grads, NAME)[1])))  # fmt: skip
    print(
        f"loss {float(halves_loss):.6f} vs {float(loss):.6f}; max |grad "
        f"difference|: rows {float(rows_diff):.2e}, other parameters {float(rest_diff):.2e}"
    )
    times = common.block_ms(
        {"default step": default_step, "two halves in two threads + update": threaded_step,
         "two halves in turn + update": halves_in_turn_step},
        30, 7, jax.block_until_ready,
    )  # fmt: skip
    for name, t in times.items():
        print(f"{name:36s} {statistics.median(t):6.2f} ms (min {min(t):.2f})")
    ratio = statistics.median(times["two halves in two threads + update"])
    print(f"threaded / default: {ratio / statistics.median(times['default step']):.3f}")
