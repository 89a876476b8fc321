"""Lazy Adam for the embedding: dense Adam's step on the rows in the batch, nothing elsewhere
until a row is used again or the table is caught up, and then dense Adam's values.

It is an optax transformation in the one train step: the same ``train_step`` trains a lazy and a
dense state, with the same clipping (``optax.clip_by_global_norm`` over every gradient).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import seqclf
from seqclf import training
from seqclf.lazy_embedding import (
    LazyAdam,
    LazyAdamState,
    RowsBehind,
    apply_row_updates,
    catch_up,
    lazy_adam,
    row_gradients,
    table_moments,
)
from seqclf.training import step as step_module

VOCAB = 12
MODEL = seqclf.build_classifier(
    vocab_size=VOCAB, embed_dim=8, hidden_size=6, conv_filters=(), embed_dropout=0.0
)


def _batch(tokens, rng):
    tokens = np.asarray(tokens, np.int32)
    return {
        "tokens": jnp.asarray(tokens),
        "lengths": jnp.full(len(tokens), tokens.shape[1], jnp.int32),
        "labels": jnp.asarray(rng.integers(0, 2, len(tokens)).astype(np.int32)),
        "weights": jnp.ones(len(tokens), jnp.float32),
    }


def _states(**options):
    example = {"tokens": np.ones((2, VOCAB), np.int32), "lengths": np.full(2, VOCAB, np.int32)}
    common = dict(batch_size=4, warmup_fraction=0.2, **options)
    dense = training.create_train_state(
        MODEL, seqclf.TrainConfig(lazy_embedding=False, **common), 10, example
    )
    lazy = training.create_train_state(
        MODEL, seqclf.TrainConfig(lazy_embedding=True, **common), 10, example
    )
    return dense, lazy


@pytest.mark.parametrize("clip_norm", [1.0, 1e-3])
def test_with_every_row_in_every_batch_it_is_dense_adam(clip_norm):
    # 1e-3 makes the clipping act on every step: the rows and the rest are clipped together.
    rng = np.random.default_rng(0)
    dense, lazy = _states(clip_norm=clip_norm, weight_decay=0.1)
    for _ in range(4):
        batch = _batch([rng.permutation(VOCAB) for _ in range(4)], rng)
        dense, dense_metrics = step_module.train_step(dense, batch)
        lazy, lazy_metrics = step_module.train_step(lazy, batch)
        np.testing.assert_allclose(lazy_metrics, dense_metrics, rtol=1e-6)
    jax.tree_util.tree_map(
        lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-7),
        lazy.params,
        dense.params,
    )
    assert int(lazy.step) == 4


def test_rows_not_in_the_batch_wait_and_then_catch_up_with_dense_adam():
    rng = np.random.default_rng(1)
    dense, lazy = _states()
    before = np.asarray(lazy.params["embedding"]["embedding"])
    every, first = [2, 3, 5, 7], [8, 9]  # rows in every batch; rows in the first batch only
    lazy, _ = step_module.train_step(lazy, _batch(rng.choice(every + first, (4, VOCAB)), rng))
    after_first = np.asarray(lazy.params["embedding"]["embedding"])
    mu_first = np.asarray(table_moments(lazy.opt_state)[0])
    for _ in range(3):
        lazy, _ = step_module.train_step(lazy, _batch(rng.choice(every, (4, VOCAB)), rng))
    rng = np.random.default_rng(1)  # the same batches for dense Adam
    dense, _ = step_module.train_step(dense, _batch(rng.choice(every + first, (4, VOCAB)), rng))
    for _ in range(3):
        dense, _ = step_module.train_step(dense, _batch(rng.choice(every, (4, VOCAB)), rng))

    after = np.asarray(lazy.params["embedding"]["embedding"])
    never = [i for i in range(VOCAB) if i not in every + first]
    np.testing.assert_array_equal(after[never], before[never])
    # Rows away from the batch are not touched: neither the table nor their moments.
    np.testing.assert_array_equal(after[first], after_first[first])
    np.testing.assert_array_equal(
        np.asarray(table_moments(lazy.opt_state)[0])[first], mu_first[first]
    )
    dense_table = np.asarray(dense.params["embedding"]["embedding"])
    np.testing.assert_allclose(after[every], dense_table[every], rtol=1e-5, atol=1e-7)
    assert np.abs(after[first] - dense_table[first]).max() > 1e-4  # dense Adam kept moving them

    caught = lazy.caught_up()
    table = np.asarray(caught.params["embedding"]["embedding"])
    np.testing.assert_allclose(table, dense_table, rtol=1e-5, atol=1e-6)
    again = caught.caught_up()  # every row is up to date: nothing changes, to the bit
    for a, b in zip(
        jax.tree_util.tree_leaves(again), jax.tree_util.tree_leaves(caught), strict=True
    ):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


@pytest.mark.parametrize("weight_decay", [0.0, 0.1])
def test_caught_up_it_is_optax_adamw_on_row_sparse_gradients(weight_decay):
    # Rows come and go for 80 steps of a warm-up + cosine schedule; with eps far below the
    # gradients' scale, catching up is exact up to float32 rounding (module docstring).
    rng = np.random.default_rng(4)
    vocab, dim, steps = 40, 6, 80
    schedule = optax.warmup_cosine_decay_schedule(0.0, 0.05, 8, steps, 0.005)
    start = jnp.asarray(rng.normal(size=(vocab, dim)), jnp.float32)
    dense_tx = optax.adamw(schedule, eps=1e-12, weight_decay=weight_decay)
    lazy_tx = lazy_adam(schedule, weight_decay=weight_decay, eps=1e-12, block=8)
    dense, dense_state = start, dense_tx.init(start)
    lazy, lazy_state = start, lazy_tx.init(start)
    popularity = 1.0 / np.arange(1, vocab + 1)  # a few rows often, most rarely
    for _ in range(steps):
        rows = np.unique(rng.choice(vocab, size=10, p=popularity / popularity.sum()))
        grads = rng.normal(size=(len(rows), dim)).astype(np.float32)
        dense_grads = jnp.zeros((vocab, dim)).at[rows].set(grads)
        updates, dense_state = dense_tx.update(dense_grads, dense_state, dense)
        dense = optax.apply_updates(dense, updates)
        padded = np.full(16, vocab)  # row_gradients' layout: distinct ids, padding = V
        padded[: len(rows)] = rows
        row_grads = np.zeros((16, dim), np.float32)
        row_grads[: len(rows)] = grads
        updates, lazy_state = lazy_tx.update(
            jnp.asarray(row_grads), lazy_state, lazy, embedding_rows=jnp.asarray(padded)
        )
        lazy = lazy.at[padded].add(updates, mode="drop")
    params, caught_state = catch_up(
        {"embedding": {"embedding": lazy}}, lazy_state, "embedding", LazyAdam(schedule, eps=1e-12)
    )
    np.testing.assert_allclose(params["embedding"]["embedding"], dense, rtol=2e-5, atol=2e-6)
    assert np.abs(np.asarray(lazy) - np.asarray(dense)).max() > 1e-3  # before: rows behind
    mu, nu = table_moments(caught_state)
    np.testing.assert_allclose(mu, dense_state[0].mu, rtol=1e-4, atol=1e-9)
    np.testing.assert_allclose(nu, dense_state[0].nu, rtol=1e-4, atol=1e-12)


def test_row_gradients_are_the_rows_of_the_dense_gradient():
    rng = np.random.default_rng(2)
    table = jnp.asarray(rng.normal(size=(VOCAB, 3)), jnp.float32)
    ids = jnp.asarray(rng.integers(0, VOCAB, size=(5, 7)))
    weights = jnp.asarray(rng.normal(size=(5, 7, 3)), jnp.float32)

    def loss(t):
        return jnp.sum(jnp.tanh(t[ids]) * weights)

    dense = np.asarray(jax.grad(loss)(table))
    vectors = jnp.tanh(table[ids])
    rows, grads = row_gradients(ids, weights * (1 - vectors**2), VOCAB)
    rows, grads = np.asarray(rows), np.asarray(grads)
    real = rows < VOCAB
    assert sorted(rows[real]) == sorted(set(np.asarray(ids).ravel().tolist()))
    np.testing.assert_allclose(grads[real], dense[rows[real]], rtol=1e-5, atol=1e-6)
    assert np.abs(grads[~real]).max() == 0.0
    untouched = sorted(set(range(VOCAB)) - set(rows[real].tolist()))
    assert np.abs(dense[untouched]).max(initial=0.0) == 0.0


@pytest.mark.parametrize(
    "ids, block",
    [
        (np.arange(40) % 12, 3),  # 12 words repeated: four whole blocks
        (np.arange(40) % 12, 5),  # the last block part-full
        (np.arange(40) % 12, 64),  # one block
        (np.arange(10), 4),  # every place a distinct word: the last block runs past the end
        (np.array([], np.int64), 4),  # no words at all
    ],
)
def test_the_block_loop_updates_each_real_row_once_as_one_big_update_would(ids, block):
    rng = np.random.default_rng(3)
    vocab, dim = 30, 5
    table, mu, nu = (jnp.asarray(rng.normal(size=(vocab, dim)), jnp.float32) for _ in range(3))
    nu = jnp.abs(nu)
    if ids.size:
        vector_grads = jnp.asarray(rng.normal(size=(ids.size, dim)), jnp.float32)
        rows, grads = row_gradients(jnp.asarray(ids), vector_grads, vocab)
    else:  # only padding places
        rows, grads = jnp.full(8, vocab), jnp.zeros((8, dim))
    behind = RowsBehind(  # rows behind by 0-5 steps: each is brought up to date first
        jnp.asarray(rng.integers(0, 6, vocab), jnp.int32),
        jnp.asarray(rng.uniform(0, 0.3, vocab), jnp.float32),
        jnp.asarray(rng.uniform(0.9, 1.0, vocab), jnp.float32),
    )
    lazy = LazyAdam(learning_rate=lambda step: 0.1, weight_decay=0.01)
    step = jnp.asarray(2)
    expected = lazy.update_rows(table, mu, nu, behind, rows, grads, step)
    got = lazy.update(table, mu, nu, behind, rows, grads, step, block=block)
    for e, g in zip(expected, got, strict=True):
        np.testing.assert_allclose(np.asarray(g), np.asarray(e), rtol=1e-6, atol=1e-7)
    new_table = apply_row_updates(
        {"embedding": {"embedding": table}}, {"embedding": {"embedding": got[0]}}, rows, "embedding"
    )["embedding"]["embedding"]
    changed = np.flatnonzero(np.abs(np.asarray(new_table) - np.asarray(table)).max(axis=1) > 0)
    assert changed.tolist() == sorted(set(ids.tolist()))
    changed_moments = np.flatnonzero(np.abs(np.asarray(got[1]) - np.asarray(mu)).max(axis=1) > 0)
    assert changed_moments.tolist() == sorted(set(ids.tolist()))


def test_a_model_without_a_marked_embedding_is_rejected():
    class Plain(nn.Module):
        @nn.compact
        def __call__(self, tokens, lengths, train=False):
            return nn.Dense(2)(nn.Embed(VOCAB, 4)(tokens).mean(1))

    example = {"tokens": np.ones((2, 4), np.int32), "lengths": np.full(2, 4, np.int32)}
    with pytest.raises(ValueError, match="lazy_embedding needs seqclf"):
        training.create_train_state(Plain(), seqclf.TrainConfig(lazy_embedding=True), 10, example)
    # The default (None) is not refused: such a model gets dense Adam.
    state = training.create_train_state(Plain(), seqclf.TrainConfig(), 10, example)
    assert state.lazy_embedding is False


def test_the_default_is_lazy_adam_for_build_classifier_and_dense_when_asked():
    example = {"tokens": np.ones((2, VOCAB), np.int32), "lengths": np.full(2, VOCAB, np.int32)}
    default = training.create_train_state(MODEL, seqclf.TrainConfig(), 10, example)
    dense_config = seqclf.TrainConfig(lazy_embedding=False)
    dense = training.create_train_state(MODEL, dense_config, 10, example)
    assert (default.lazy_embedding, dense.lazy_embedding) == (True, False)

    # The optimizer follows: only the default state holds lazy Adam's state for the table.
    def lazy_states(state):
        def is_lazy(x):
            return isinstance(x, LazyAdamState)

        return [x for x in jax.tree.leaves(state.opt_state, is_leaf=is_lazy) if is_lazy(x)]

    assert (len(lazy_states(default)), len(lazy_states(dense))) == (1, 0)


def test_a_lazy_run_checkpoints_and_restores_its_moments(tmp_path):
    rng = np.random.default_rng(3)
    tokens = [rng.integers(2, VOCAB, size=rng.integers(3, 10)).astype(np.int32) for _ in range(48)]
    labels = np.array([int(5 in x) for x in tokens])
    config = seqclf.TrainConfig(epochs=2, batch_size=8, lazy_embedding=True)
    store = seqclf.checkpoint.CheckpointStore(tmp_path)
    result = training.fit(
        MODEL,
        (tokens[:40], labels[:40]),
        (tokens[40:], labels[40:]),
        config,
        text=seqclf.TextConfig(vocab_size=VOCAB, max_len=10, num_buckets=1),
        store=store,
        meta={},
        progress=False,
    )
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]
    fresh = training.create_train_state(
        MODEL, config, 10, {"tokens": np.ones((2, 10), np.int32), "lengths": np.full(2, 10)}
    )
    target = {"params": fresh.params, "opt_state": fresh.opt_state, "step": fresh.step}
    restored = store.restore_state(target, store.latest_step())
    for saved, trained in zip(
        table_moments(restored["opt_state"]), table_moments(result.state.opt_state), strict=True
    ):
        np.testing.assert_array_equal(saved, trained)
    np.testing.assert_array_equal(
        restored["params"]["embedding"]["embedding"],
        result.state.params["embedding"]["embedding"],
    )
    store.close()
