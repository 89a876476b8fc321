"""Lazy Adam for the embedding: dense Adam's step on the rows in the batch, nothing elsewhere.

It is an optax transformation in the one train step: the same ``train_step`` trains a lazy and a
dense state, with the same clipping (``optax.clip_by_global_norm`` over every gradient).
"""

from __future__ import annotations

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqclf
from seqclf import training
from seqclf.lazy_embedding import LazyAdam, apply_row_updates, row_gradients, table_moments
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
    dense = training.create_train_state(MODEL, seqclf.TrainConfig(**common), 10, example)
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


def test_rows_not_in_the_batch_are_left_exactly_as_they_are():
    rng = np.random.default_rng(1)
    dense, lazy = _states()
    before = np.asarray(lazy.params["embedding"]["embedding"])
    seen = [2, 3, 5, 7]
    batch = _batch(rng.choice(seen, size=(4, VOCAB)), rng)
    for _ in range(3):
        lazy, _ = step_module.train_step(lazy, batch)
        dense, _ = step_module.train_step(dense, batch)
    after = np.asarray(lazy.params["embedding"]["embedding"])
    unseen = [i for i in range(VOCAB) if i not in seen]
    np.testing.assert_array_equal(after[unseen], before[unseen])
    mu, nu = table_moments(lazy.opt_state)
    assert np.abs(np.asarray(mu)[unseen]).max() == 0.0
    assert np.abs(np.asarray(nu)[unseen]).max() == 0.0
    assert (np.abs(np.asarray(mu)[seen]).max(axis=1) > 0).all()
    assert (np.abs(after[seen] - before[seen]).max(axis=1) > 0).all()
    # The rows that were in every batch took dense Adam's steps.
    dense_table = np.asarray(dense.params["embedding"]["embedding"])
    np.testing.assert_allclose(after[seen], dense_table[seen], rtol=1e-5, atol=1e-7)


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
    lazy = LazyAdam(learning_rate=lambda step: 0.1, weight_decay=0.01)
    step = jnp.asarray(2)
    expected = lazy.update_rows(table, mu, nu, rows, grads, step)
    got = lazy.update(table, mu, nu, rows, grads, step, block=block)
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
