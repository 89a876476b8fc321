"""The jitted steps: ``train_step`` (one optimizer step), ``eval_step``, ``head_log_probs_step``.

``train_step`` is pure and compiled once per padded length (the batches come in a few length
buckets). Randomness is explicit: the dropout key of a step is the run's key folded with the step
number, so a resumed run draws exactly the keys an uninterrupted one would. There is one train
step for every model and optimizer: what differs (which heads' losses are summed, a row-sparse
embedding gradient under lazy Adam) is asked of the state's ``HeadSpec`` and optimizer.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from seqclf.lazy_embedding import value_and_row_grad
from seqclf.training.state import TrainState

TRAIN_KEYS = ("tokens", "lengths", "labels", "weights")  # what a training batch holds


def _weighted_cross_entropy(logits: jax.Array, batch: dict[str, jax.Array]) -> jax.Array:
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
    return jnp.sum(losses * batch["weights"]) / jnp.maximum(jnp.sum(batch["weights"]), 1.0)


def _train_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, jax.Array]:
    """One optimizer step on one batch; returns the new state and a (2,) [loss, accuracy].

    ``batch`` holds tokens (B, T), lengths (B,), labels (B,) and weights (B,): 1 for real rows,
    0 for the rows that pad the last batch to B (so every step has one of a few shapes).

    Data parallel without pmap: with ``state`` replicated over a mesh (``create_train_state``)
    and ``batch`` split along it (``DataParallel.shard``), this same function is compiled for
    the shardings of its inputs; each device takes B / devices rows and XLA sums the gradients
    across devices, so the step equals the one-device step on the same B rows.
    """
    dropout_key = jax.random.fold_in(state.dropout_key, state.step)
    heads = state.heads

    def loss_fn(params, perturbations=None):
        variables = {"params": params}
        if perturbations is not None:
            variables["perturbations"] = perturbations
        logits, sown = state.apply_fn(
            variables,
            batch["tokens"],
            batch["lengths"],
            train=True,
            rngs={"dropout": dropout_key},
            mutable=[heads.logits_collection],
        )
        # A model with several heads (ClassifierConfig.ngram_buckets) trains each on its own loss.
        losses = [_weighted_cross_entropy(h, batch) for h in heads.trained_logits(logits, sown)]
        return sum(losses), logits

    if not state.lazy_embedding:
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        new_state = state.apply_gradients(grads=grads)
    else:  # the table's gradient is row-sparse (seqclf.lazy_embedding); the rest as above
        (loss, logits), grads, rows = value_and_row_grad(
            loss_fn, state.params, batch["tokens"], heads.embedding, heads.embedded
        )
        new_state = state.apply_gradients(grads=grads, embedding_rows=rows)
    hits = (jnp.argmax(logits, -1) == batch["labels"]).astype(jnp.float32)
    real = (batch["weights"] > 0).astype(jnp.float32)  # weights may also weigh the classes
    accuracy = jnp.sum(hits * real) / jnp.maximum(jnp.sum(real), 1.0)
    return new_state, jnp.stack([loss, accuracy])


train_step = jax.jit(_train_step)
# train_epoch's step: the old state's buffers are donated, so the new parameters and moments are
# written over them (its caller must not reuse the state it passed in). Without it, XLA:CPU
# allocates every output afresh: the dense Adam update of the (V, E) table and its two moments
# then pays for three new tables a step (S config: 14.5 -> 11.6 ms a step), and the lazy update,
# which writes a few rows, first copies all three whole.
train_step_in_place = jax.jit(_train_step, donate_argnums=0)
# The lazily updated table's rows brought up to date (TrainState.caught_up), in place; train_epoch
# calls it at its end and every save_every batches (before a checkpoint may be saved): points the
# config fixes, the same in a run and its resumption, so a resumed run ends bitwise as the other.
caught_up_in_place = jax.jit(TrainState.caught_up, donate_argnums=0)


@jax.jit
def eval_step(state: TrainState, batch: dict[str, jax.Array]) -> jax.Array:
    """Class probabilities (B, C) of one batch, dropout off."""
    logits = state.apply_fn({"params": state.params}, batch["tokens"], batch["lengths"])
    return jax.nn.softmax(logits, axis=-1)


@jax.jit
def head_log_probs_step(state: TrainState, batch: dict[str, jax.Array]) -> jax.Array:
    """Each head's log-probabilities (B, K, C) of one batch (K heads, in the order of the
    model's head weights, ``HeadSpec.heads``), dropout off."""
    heads = state.heads
    _, sown = state.apply_fn(
        {"params": state.params},
        batch["tokens"],
        batch["lengths"],
        mutable=[heads.logits_collection],
    )
    return heads.head_log_probs(sown)
