"""Lazy Adam for the embedding table: each step updates only the rows of the words in the batch.

The gradient of an embedding lookup is zero outside the rows of the batch's token ids, yet a
dense Adam step reads and writes every row of the table, its two moments and its gradient: with
20,000 × 128 floats that is most of a small model's step on a CPU. Lazy Adam (TensorFlow
Addons' LazyAdam; PyTorch's ``nn.Embedding(sparse=True)`` with ``SparseAdam``) updates the rows
that occur and leaves the others exactly as they are. For those rows the step is Adam's (AdamW's
with weight decay); the difference from dense Adam is only that an absent row's moments do not
decay and its momentum does not keep moving it.

How the rows' gradient is obtained without the dense one: the model marks its looked-up vectors
with ``nn.Module.perturb`` (``EMBEDDED``); the train step differentiates the loss with respect to
that zero perturbation, which gives the gradient of every looked-up vector (B, T, E), and sums
them per distinct token id (``row_gradients``). The table itself is held constant, so XLA never
builds the dense (V, E) gradient. ``LazyAdam.update`` then packs those rows together and updates
them a block at a time, as many blocks as the batch has distinct words: the step's work follows
the words, not the vocabulary or the number of tokens.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

# Rows updated per iteration of ``LazyAdam.update``'s loop (a config-S batch has ~1,000 distinct
# words, config L ~3,000-5,000; measured in benchmarks/README.md).
UPDATE_BLOCK = 1024
# The model's embedding module (and parameter) name, and the name of its perturbation.
EMBEDDING = "embedding"
EMBEDDED = "embedded"


class LazyEmbeddingState(NamedTuple):
    """Optimizer state when the embedding is updated lazily.

    Attributes:
      rest: the optax state of every parameter but the embedding table.
      mu: (V, E) Adam's first moment of the table's rows.
      nu: (V, E) Adam's second moment of the table's rows.
    """

    rest: optax.OptState
    mu: jax.Array
    nu: jax.Array


@dataclasses.dataclass(frozen=True)
class LazyAdam:
    """Adam(W) hyper-parameters of the table (optax's ``adamw`` defaults).

    ``clip_norm`` (0 for none) is the global norm that the train step clips all gradients to,
    the table's rows and every other parameter's together.
    """

    learning_rate: Callable[[jax.Array], jax.Array]  # step -> rate (the common schedule)
    weight_decay: float = 0.0
    clip_norm: float = 0.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def init(self, table: jax.Array) -> tuple[jax.Array, jax.Array]:
        return jnp.zeros_like(table), jnp.zeros_like(table)

    def update_rows(
        self,
        table: jax.Array,
        mu: jax.Array,
        nu: jax.Array,
        rows: jax.Array,
        grads: jax.Array,
        step: jax.Array,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One Adam(W) step on the given rows of ``table``; every other row is left as it is.

        Args:
          table, mu, nu: (V, E) the table and its moments.
          rows: (N,) distinct row ids; ids ≥ V are padding and are ignored.
          grads: (N, E) the gradient of each of those rows.
          step: the number of steps taken before this one (0 for the first).

        Returns:
          The new ``(table, mu, nu)``.
        """
        count = (step + 1).astype(jnp.float32)
        m = self.b1 * mu.at[rows].get(mode="fill", fill_value=0) + (1 - self.b1) * grads
        v = self.b2 * nu.at[rows].get(mode="fill", fill_value=0) + (1 - self.b2) * grads**2
        m_hat = m / (1 - self.b1**count)
        v_hat = v / (1 - self.b2**count)
        old = table.at[rows].get(mode="fill", fill_value=0)
        new = old - self.learning_rate(step) * (
            m_hat / (jnp.sqrt(v_hat) + self.eps) + self.weight_decay * old
        )
        return (
            table.at[rows].set(new, mode="drop"),
            mu.at[rows].set(m, mode="drop"),
            nu.at[rows].set(v, mode="drop"),
        )

    def update(
        self,
        table: jax.Array,
        mu: jax.Array,
        nu: jax.Array,
        rows: jax.Array,
        grads: jax.Array,
        step: jax.Array,
        block: int = UPDATE_BLOCK,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """``update_rows`` on the real rows among ``rows``, ``block`` of them at a time.

        ``rows`` (from ``row_gradients``) has one place per looked-up token, most of them padding
        when words repeat (a 64 × 400 IMDB batch: ~25,600 places, ~3,000 distinct words). The
        real rows are packed to the front and updated in a loop that runs only as many blocks as
        there are real rows, so the work follows the number of distinct words, not of tokens.

        Args and returns: as ``update_rows``.
        """
        vocab_size, n = table.shape[0], rows.shape[0]
        real = rows < vocab_size
        padded = -(-n // block) * block  # whole blocks: a clamped dynamic_slice would repeat rows
        # places[k] = the place of the k-th real row; n (out of range) after the last one.
        slot = jnp.where(real, jnp.cumsum(real, dtype=jnp.int32) - 1, padded)
        places = (
            jnp.full((padded,), n, jnp.int32)
            .at[slot]
            .set(jnp.arange(n, dtype=jnp.int32), mode="drop")
        )

        def update_block(i: jax.Array, state: tuple) -> tuple:
            at = jax.lax.dynamic_slice(places, (i * block,), (block,))
            block_rows = rows.at[at].get(mode="fill", fill_value=vocab_size)
            block_grads = grads.at[at].get(mode="fill", fill_value=0)
            return self.update_rows(*state, block_rows, block_grads, step)

        blocks = (jnp.sum(real, dtype=jnp.int32) + block - 1) // block
        return jax.lax.fori_loop(0, blocks, update_block, (table, mu, nu))


def row_gradients(
    ids: jax.Array, vector_grads: jax.Array, vocab_size: int
) -> tuple[jax.Array, jax.Array]:
    """The gradient of each distinct looked-up row.

    No sort: each id's last place in the batch stands for it (found with one scatter-max of the
    places into a (V,) table), and every other occurrence adds its gradient into that place. A
    sort-based ``jnp.unique`` plus ``segment_sum`` did the same with an O(N log N) sort and a
    fresh zeroed (N, E) buffer: ~0.6 ms more a step at config S (~15 ms), ~15 ms more at L (~238)
    (benchmarks/README.md).

    Args:
      ids: (...) token ids that were looked up, each in [0, V).
      vector_grads: (..., E) the gradient of each looked-up vector.
      vocab_size: V; used as the id of padding rows.

    Returns:
      ``rows`` (N,) and ``grads`` (N, E), N = ids.size: at the last place of each distinct id,
      that id and the sum of the gradients of all its occurrences; V and 0 at every other place.
    """
    flat = ids.reshape(-1)
    n = flat.shape[0]
    places = jnp.arange(n, dtype=jnp.int32)
    last = jnp.full((vocab_size,), -1, jnp.int32).at[flat].max(places)[flat]  # (N,)
    stands_for_its_id = last == places
    vector_grads = vector_grads.reshape(n, -1)
    # Every other occurrence adds into the id's last place (the last places themselves are sent
    # out of range and dropped); the other places' rows are then zeroed.
    into = jnp.where(stands_for_its_id, n, last)
    summed = vector_grads.at[into].add(vector_grads, mode="drop")
    rows = jnp.where(stands_for_its_id, flat, vocab_size)
    grads = jnp.where(stands_for_its_id[:, None], summed, 0.0)
    return rows, grads


def split_embedding(params: dict[str, Any]) -> tuple[jax.Array, dict[str, Any]]:
    """``params`` → (the embedding table (V, E), every other parameter)."""
    rest = {k: v for k, v in params.items() if k != EMBEDDING}
    return params[EMBEDDING][EMBEDDING], rest


def join_embedding(table: jax.Array, rest: dict[str, Any]) -> dict[str, Any]:
    """Inverse of ``split_embedding``."""
    return {**rest, EMBEDDING: {EMBEDDING: table}}
