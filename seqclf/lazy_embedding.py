"""Lazy Adam for the embedding table: each step updates only the rows of the words in the batch.

The gradient of an embedding lookup is zero outside the rows of the batch's token ids, yet a
dense Adam step reads and writes every row of the table, its two moments and its gradient: with
20,000 × 128 floats that is most of a small model's step on a CPU. Lazy Adam (TensorFlow
Addons' LazyAdam; PyTorch's ``nn.Embedding(sparse=True)`` with ``SparseAdam``) updates the rows
that occur and leaves the others as they are. This one also follows dense Adam's trajectory: a
row absent from a batch is *behind*, not forgotten.

Catching up. Dense Adam moves a row whose gradient is zero too: its moments decay (m ← b1·m,
v ← b2·v) and its momentum keeps moving it. Those skipped steps have a closed form. After k of
them from (p, m, v), with r = b1/√b2 and Adam's bias corrections c_j = √(1 − b2^j)/(1 − b1^j),

    m_k = b1^k m,   v_k = b2^k v,   p_k = p·D − m/(√v + eps) · S,
    S = Σ_j lr_j c_j r^j (each term times the weight decay of the steps after it),
    D = Π_j (1 − lr_j · weight_decay).

S and D are one number per row, so every step updates them for the whole table ((V,) work, not
(V, E): ``LazyAdam.advance``); a row a batch uses is first brought to its dense-Adam value from
them, then takes the step with its gradient (``LazyAdam.update_rows``). ``catch_up`` brings
every row up to date at once: the training loop calls it at the end of each epoch and every
``save_every`` steps, so validation, checkpoints and the trained model hold dense Adam's table.
The one difference from dense Adam: eps enters once, in the row's m/(√v + eps), instead of at
every skipped step, which matters only for components whose √v̂ is near eps (the probe in
benchmarks/results/accuracy/catch-up-lazy-adam-2026-12-03: mean difference 2.8e-6 after 600
steps; 1.5e-9 with eps → 0).

How the rows' gradient is obtained without the dense one: the model marks its looked-up vectors
with ``nn.Module.perturb`` (its ``HeadSpec.embedded``); ``value_and_row_grad`` differentiates the
loss with respect to that zero perturbation, which gives the gradient of every looked-up vector
(B, T, E), and sums them per distinct token id (``row_gradients``). The table itself is held
constant, so XLA never builds the dense (V, E) gradient.

The optimizer is an ordinary optax pipeline: ``lazy_adam`` is a ``GradientTransformation`` (with
extra args) whose gradient for the table is *row-sparse*: an (N, E) array of the rows named by
the extra argument ``embedding_rows`` (N,), not a (V, E) one. ``optax.clip_by_global_norm``
before it clips those rows and every dense gradient together, as for any other parameter; the
update it returns has the rows' layout too, and ``apply_row_updates`` adds it to the table's rows
in place. ``LazyAdam.update`` packs the real rows together and updates them a block at a time, as
many blocks as the batch has distinct words: the step's work follows the words, not the
vocabulary or the number of tokens.
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
# The optimizer label of the lazily updated table (``HeadSpec.param_labels(..., lazy=True)``).
LAZY = "lazy"
# Below this, r^k is taken as 0 (r^k < 1e-30 after ~650 steps away): no denormal arithmetic.
TINY = 1e-30


class RowsBehind(NamedTuple):
    """How far each row of a table is behind dense Adam (module docstring), all (V,).

    Attributes:
      steps: int32, k: steps since the row was last updated (0: up to date).
      drift: float32, S: the row's distance still to move, in units of its m/(√v + eps).
      decay: float32, D: the factor weight decay still has to apply to the row (1 without).
    """

    steps: jax.Array
    drift: jax.Array
    decay: jax.Array

    @classmethod
    def up_to_date(cls, vocab_size: int) -> RowsBehind:
        return cls(
            jnp.zeros((vocab_size,), jnp.int32),
            jnp.zeros((vocab_size,), jnp.float32),
            jnp.ones((vocab_size,), jnp.float32),
        )


class LazyAdamState(NamedTuple):
    """``lazy_adam``'s state.

    Attributes:
      count: () int32, steps taken.
      mu: Adam's first moments, (V, E) for the table (the params' tree, as optax's Adam), each
        row as of its last update.
      nu: Adam's second moments, likewise.
      behind: a ``RowsBehind`` per table (the params' tree): what each row still owes.
    """

    count: jax.Array
    mu: optax.Updates
    nu: optax.Updates
    behind: optax.Updates


@dataclasses.dataclass(frozen=True)
class LazyAdam:
    """Adam(W) on some rows of a table: the row arithmetic behind ``lazy_adam`` (optax's
    ``adamw`` defaults)."""

    learning_rate: Callable[[jax.Array], jax.Array]  # step -> rate (the common schedule)
    weight_decay: float = 0.0
    b1: float = 0.9
    b2: float = 0.999
    eps: float = 1e-8

    def brought_up(
        self, table: jax.Array, mu: jax.Array, nu: jax.Array, behind: RowsBehind
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """Rows (…, E) of a table and their moments as dense Adam has them now, from their
        values at their last update and how far they are ``behind`` (…,) (module docstring)."""
        ratio = mu / (jnp.sqrt(nu) + self.eps)  # 0 for a row never updated (mu = nu = 0)
        k = behind.steps.astype(jnp.float32)[..., None]
        table = table * behind.decay[..., None] - ratio * behind.drift[..., None]
        return table, mu * self.b1**k, nu * self.b2**k

    def update_rows(
        self,
        table: jax.Array,
        mu: jax.Array,
        nu: jax.Array,
        behind: RowsBehind,
        rows: jax.Array,
        grads: jax.Array,
        step: jax.Array,
    ) -> tuple[jax.Array, jax.Array, jax.Array]:
        """One Adam(W) step on the given rows of ``table``, each first brought up to date.

        Args:
          table, mu, nu: (V, E) the table and its moments.
          behind: the table's ``RowsBehind`` before this step.
          rows: (N,) distinct row ids; ids ≥ V are padding and are ignored.
          grads: (N, E) the gradient of each of those rows.
          step: the number of steps taken before this one (0 for the first).

        Returns:
          ``(updates, mu, nu)``: (N, E) what to add to each of those rows (0 for padding) and
          the new (V, E) moments (every other row's as they were).
        """
        count = (step + 1).astype(jnp.float32)
        old = table.at[rows].get(mode="fill", fill_value=0)
        lag = RowsBehind(
            behind.steps.at[rows].get(mode="fill", fill_value=0),
            behind.drift.at[rows].get(mode="fill", fill_value=0),
            behind.decay.at[rows].get(mode="fill", fill_value=1),
        )
        now, m, v = self.brought_up(
            old,
            mu.at[rows].get(mode="fill", fill_value=0),
            nu.at[rows].get(mode="fill", fill_value=0),
            lag,
        )
        m = self.b1 * m + (1 - self.b1) * grads
        v = self.b2 * v + (1 - self.b2) * grads**2
        m_hat = m / (1 - self.b1**count)
        v_hat = v / (1 - self.b2**count)
        step_taken = self.learning_rate(step) * (
            m_hat / (jnp.sqrt(v_hat) + self.eps) + self.weight_decay * now
        )
        # (now - old) is 0 for a row that was up to date: then old + update is old - step_taken.
        updates = (now - old) - step_taken
        return updates, mu.at[rows].set(m, mode="drop"), nu.at[rows].set(v, mode="drop")

    def advance(self, behind: RowsBehind, rows: jax.Array, step: jax.Array) -> RowsBehind:
        """``behind`` after this step: the rows ``rows`` (N,) (ids ≥ V ignored) took it and are
        up to date; every other row skipped it (its moments decay and it still owes the move
        dense Adam made: (V,) work)."""
        count = (step + 1).astype(jnp.float32)
        rate = self.learning_rate(step)
        correction = jnp.sqrt(1 - self.b2**count) / (1 - self.b1**count)
        steps = behind.steps + 1
        r_k = (self.b1 / jnp.sqrt(self.b2)) ** steps.astype(jnp.float32)
        r_k = jnp.where(r_k < TINY, 0.0, r_k)
        shrink = 1 - rate * self.weight_decay
        skipped = RowsBehind(
            steps, behind.drift * shrink + rate * correction * r_k, behind.decay * shrink
        )
        return RowsBehind(
            skipped.steps.at[rows].set(0, mode="drop"),
            skipped.drift.at[rows].set(0.0, mode="drop"),
            skipped.decay.at[rows].set(1.0, mode="drop"),
        )

    def update(
        self,
        table: jax.Array,
        mu: jax.Array,
        nu: jax.Array,
        behind: RowsBehind,
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
        The updates are written over ``grads``' places (a padding place keeps its gradient, 0),
        so no second (N, E) buffer is needed.

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

        def update_block(i: jax.Array, carry: tuple) -> tuple:
            out, mu, nu = carry
            at = jax.lax.dynamic_slice(places, (i * block,), (block,))
            block_rows = rows.at[at].get(mode="fill", fill_value=vocab_size)
            block_grads = out.at[at].get(mode="fill", fill_value=0)  # each place read once
            updates, mu, nu = self.update_rows(table, mu, nu, behind, block_rows, block_grads, step)
            return out.at[at].set(updates, mode="drop"), mu, nu

        blocks = (jnp.sum(real, dtype=jnp.int32) + block - 1) // block
        return jax.lax.fori_loop(0, blocks, update_block, (grads, mu, nu))


def lazy_adam(
    learning_rate: optax.ScalarOrSchedule,
    weight_decay: float = 0.0,
    block: int = UPDATE_BLOCK,
    *,
    b1: float = 0.9,
    b2: float = 0.999,
    eps: float = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """Lazy Adam(W) as an optax transformation over row-sparse gradients.

    ``update(updates, state, params, *, embedding_rows)``: each leaf of ``updates`` is (N, E),
    the gradient of the rows ``embedding_rows`` (N,) of the matching (V, E) leaf of ``params``
    (ids ≥ V are padding, from ``row_gradients``); the update returned has that (N, E) layout,
    for ``apply_row_updates``. Rows not named are not touched (table, mu and nu): the state
    records how far behind they fall (``RowsBehind``), and ``catch_up`` or their next use
    settles it.

    Args:
      learning_rate: a rate or a schedule of the step.
      weight_decay: AdamW's decoupled weight decay (every row's, absent ones settled later).
      block: rows per iteration of the update loop (``LazyAdam.update``).
      b1, b2, eps: Adam's (optax's defaults; ``catch_up`` assumes these unless given its own).

    Returns:
      An optax ``GradientTransformationExtraArgs``, to chain after ``optax.clip_by_global_norm``
      (it clips the rows with every other gradient) as any optax optimizer.

    References:
      Kingma & Ba, "Adam: A Method for Stochastic Optimization" (2015); TensorFlow Addons'
      ``LazyAdam``.
    """
    schedule = learning_rate if callable(learning_rate) else (lambda _: learning_rate)
    rows_adam = LazyAdam(schedule, weight_decay=weight_decay, b1=b1, b2=b2, eps=eps)

    def init_fn(params: optax.Params) -> LazyAdamState:
        zeros = jax.tree_util.tree_map(jnp.zeros_like, params)
        return LazyAdamState(
            jnp.zeros([], jnp.int32),
            zeros,
            jax.tree_util.tree_map(jnp.zeros_like, params),
            jax.tree_util.tree_map(lambda t: RowsBehind.up_to_date(t.shape[0]), params),
        )

    def update_fn(
        updates: optax.Updates,
        state: LazyAdamState,
        params: optax.Params | None = None,
        *,
        embedding_rows: jax.Array | None = None,
        **extra_args: Any,
    ) -> tuple[optax.Updates, LazyAdamState]:
        del extra_args
        if params is None or embedding_rows is None:
            raise ValueError("lazy_adam needs the params and the batch's embedding_rows")
        grads, treedef = jax.tree_util.tree_flatten(updates)
        leaves = zip(
            grads,
            jax.tree_util.tree_leaves(state.mu),
            jax.tree_util.tree_leaves(state.nu),
            _behind_leaves(state.behind),
            jax.tree_util.tree_leaves(params),
            strict=True,
        )
        out = [
            (
                *rows_adam.update(table, mu, nu, behind, embedding_rows, g, state.count, block),
                rows_adam.advance(behind, embedding_rows, state.count),
            )
            for g, mu, nu, behind, table in leaves
        ]
        if not out:  # none of the tree's leaves is this transform's
            return updates, state._replace(count=state.count + 1)
        new_updates, mu, nu, behind = (
            jax.tree_util.tree_unflatten(treedef, list(x)) for x in zip(*out, strict=True)
        )
        return new_updates, LazyAdamState(state.count + 1, mu, nu, behind)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


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


def split_embedding(params: dict[str, Any], name: str) -> tuple[jax.Array, dict[str, Any]]:
    """``params`` → (the table (V, E) of the embedding module ``name``, every other parameter)."""
    rest = {k: v for k, v in params.items() if k != name}
    return params[name]["embedding"], rest


def join_embedding(table: jax.Array, rest: dict[str, Any], name: str) -> dict[str, Any]:
    """Inverse of ``split_embedding``."""
    return {**rest, name: {"embedding": table}}


def value_and_row_grad(
    loss_fn: Callable[..., tuple[jax.Array, Any]],
    params: dict[str, Any],
    ids: jax.Array,
    name: str,
    embedded: str,
) -> tuple[tuple[jax.Array, Any], dict[str, Any], jax.Array]:
    """``jax.value_and_grad(loss_fn, has_aux=True)`` with a row-sparse gradient for the table.

    Args:
      loss_fn: ``loss_fn(params, perturbations) -> (loss, aux)``; the model must pass its
        looked-up vectors through ``perturb(embedded, ...)``.
      params: the parameters; ``params[name]["embedding"]`` is the (V, E) table.
      ids: (B, T) the token ids the model looks up.
      name, embedded: the embedding module's name and its perturbation's.

    Returns:
      ``((loss, aux), grads, rows)``: ``grads`` has params' tree with the table's leaf (N, E),
      the gradient of the rows ``rows`` (N,), N = B·T (``row_gradients``).
    """
    table, rest = split_embedding(params, name)
    vectors = jnp.zeros(ids.shape + table.shape[1:], table.dtype)

    def lazy_loss(rest, perturbations):
        return loss_fn(join_embedding(table, rest, name), perturbations)

    value, (rest_grads, vector_grads) = jax.value_and_grad(lazy_loss, argnums=(0, 1), has_aux=True)(
        rest, {embedded: vectors}
    )
    rows, row_grads = row_gradients(ids, vector_grads[embedded], table.shape[0])
    return value, join_embedding(row_grads, rest_grads, name), rows


def apply_row_updates(
    params: dict[str, Any], updates: dict[str, Any], rows: jax.Array, name: str
) -> dict[str, Any]:
    """``optax.apply_updates`` with the table's update row-sparse (``value_and_row_grad``'s
    layout): added to the rows ``rows`` in place (ids ≥ V dropped), every other row as it is."""
    table, rest = split_embedding(params, name)
    table_updates, rest_updates = split_embedding(updates, name)
    table = table.at[rows].add(table_updates.astype(table.dtype), mode="drop")
    return join_embedding(table, optax.apply_updates(rest, rest_updates), name)


def _behind_leaves(tree: Any) -> list[RowsBehind]:
    return jax.tree_util.tree_leaves(tree, is_leaf=lambda x: isinstance(x, RowsBehind))


def _lazy_state(opt_state: optax.OptState) -> LazyAdamState:
    found = [
        s
        for s in jax.tree_util.tree_leaves(
            opt_state, is_leaf=lambda x: isinstance(x, LazyAdamState)
        )
        if isinstance(s, LazyAdamState)
    ]
    if len(found) != 1 or len(jax.tree_util.tree_leaves(found[0].mu)) != 1:
        raise ValueError(f"expected one lazy Adam table in the optimizer state, found {found!r}")
    return found[0]


def table_moments(opt_state: optax.OptState) -> tuple[jax.Array, jax.Array]:
    """The (V, E) Adam moments ``(mu, nu)`` of the lazily updated table, found in the state of
    the whole optimizer (``make_optimizer``'s chain), each row as of its last update; for
    inspection and tests."""
    state = _lazy_state(opt_state)
    (mu,), (nu,) = jax.tree_util.tree_leaves(state.mu), jax.tree_util.tree_leaves(state.nu)
    return mu, nu


def catch_up(
    params: dict[str, Any], opt_state: optax.OptState, name: str, adam: LazyAdam | None = None
) -> tuple[dict[str, Any], optax.OptState]:
    """Every row of the table ``params[name]`` brought to the value and moments dense Adam
    would have given it by now (module docstring); every row is then up to date.

    The training loop calls this at the end of each epoch and every ``save_every`` steps, where
    checkpoints are saved (``TrainState.caught_up``), so what is validated, saved and served is
    dense Adam's table.
    Bringing a row up to date twice is the same as once: a second call changes nothing.

    Args:
      params: the parameters; ``params[name]["embedding"]`` is the (V, E) table.
      opt_state: the whole optimizer's state, holding one ``LazyAdamState``.
      name: the embedding module's name.
      adam: whose b1, b2 and eps (default: ``LazyAdam``'s, those ``lazy_adam`` uses).

    Returns:
      ``(params, opt_state)`` with the table, its moments and its ``RowsBehind`` replaced.
    """
    adam = adam or LazyAdam(learning_rate=lambda _: 0.0)
    table, rest = split_embedding(params, name)
    state = _lazy_state(opt_state)
    (mu,), (nu,) = jax.tree_util.tree_leaves(state.mu), jax.tree_util.tree_leaves(state.nu)
    (behind,) = _behind_leaves(state.behind)
    table, mu, nu = adam.brought_up(table, mu, nu, behind)
    caught = LazyAdamState(
        state.count,
        jax.tree_util.tree_map(lambda _: mu, state.mu),
        jax.tree_util.tree_map(lambda _: nu, state.nu),
        jax.tree_util.tree_map(
            lambda _: RowsBehind.up_to_date(table.shape[0]),
            state.behind,
            is_leaf=lambda x: isinstance(x, RowsBehind),
        ),
    )
    opt_state = jax.tree_util.tree_map(
        lambda s: caught if isinstance(s, LazyAdamState) else s,
        opt_state,
        is_leaf=lambda x: isinstance(x, LazyAdamState),
    )
    return join_embedding(table, rest, name), opt_state
