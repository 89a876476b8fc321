"""seqclf.ops.dropout: the hash is threefry, the mask keeps what it should, scales exactly, and is
the same whether drawn at once or row by row."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqclf import ops
from seqclf.ops.dropout import keep_threshold, threefry2x32


@pytest.mark.parametrize(
    "key, count, expected",
    [  # Random123's known answers for threefry-2x32-20 (kat_vectors), as JAX's tests use them.
        ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
        ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
        ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
    ],
)
def test_threefry_matches_the_known_answers(key, count, expected):
    out = threefry2x32(
        jnp.uint32(key[0]), jnp.uint32(key[1]), jnp.uint32([count[0]]), jnp.uint32([count[1]])
    )
    assert tuple(int(word[0]) for word in out) == expected


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.4, 0.5, 0.9])
def test_mask_keeps_the_expected_share_and_neighbours_are_independent(rate):
    shape = (64, 101, 33)
    mask = np.asarray(ops.keep_mask(jax.random.PRNGKey(0), rate, shape))
    assert mask.shape == shape and mask.dtype == np.bool_
    n = mask.size
    # Binomial: 5 standard deviations.
    assert abs(mask.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    # Consecutive indices hash to independent words: neighbours agree no more than chance.
    flat = mask.reshape(-1)
    agree = (flat[:-1] == flat[1:]).mean()
    expected = rate**2 + (1 - rate) ** 2
    assert abs(agree - expected) < 5 * np.sqrt(expected * (1 - expected) / (n - 1))


def test_row_by_row_mask_equals_the_mask_drawn_at_once():
    key = jax.random.PRNGKey(4)
    shape = (24, 50, 70)  # 84,000 elements: drawn row by row on a CPU
    rows = np.asarray(jax.jit(lambda k: ops.keep_mask(k, 0.3, shape))(key))
    flat = np.asarray(ops.keep_mask(key, 0.3, (24 * 50 * 70,)))  # 1-D: drawn at once
    np.testing.assert_array_equal(rows.reshape(-1), flat)
    assert 0.6 < rows.mean() < 0.8


def test_dropout_is_unbiased_and_zeroes_the_rest():
    x = jnp.full((200, 300), 3.0)
    y = np.asarray(ops.dropout(x, 0.3, jax.random.PRNGKey(1)))
    kept = y != 0
    scale = 2**32 / (2**32 - keep_threshold(0.3))
    np.testing.assert_allclose(y[kept], 3.0 * scale, rtol=1e-6)
    assert abs(y.mean() - 3.0) < 0.03  # E[y] = x
    # Gradient: the kept elements pass it on, scaled; the dropped ones block it.
    grad = np.asarray(jax.grad(lambda v: ops.dropout(v, 0.3, jax.random.PRNGKey(1)).sum())(x))
    np.testing.assert_allclose(grad, np.where(kept, scale, 0.0), rtol=1e-6)


def test_broadcast_dims_share_one_decision_and_edges():
    x = jnp.ones((4, 50, 16))
    key = jax.random.PRNGKey(2)
    words = np.asarray(ops.dropout(x, 0.5, key, broadcast_dims=(2,)))
    assert ((words == 0).all(axis=2) | (words != 0).all(axis=2)).all()
    assert 0.2 < (words == 0).mean() < 0.8
    channels = np.asarray(ops.dropout(x, 0.5, key, broadcast_dims=(-2,)))
    assert ((channels == 0).all(axis=1) | (channels != 0).all(axis=1)).all()
    assert ops.dropout(x, 0.0, key) is x
    np.testing.assert_array_equal(ops.dropout(x, 1.0, key), 0.0)
    assert ops.dropout(x.astype(jnp.bfloat16), 0.5, key).dtype == jnp.bfloat16
    different = np.asarray(ops.dropout(x, 0.5, jax.random.PRNGKey(3)))
    assert (different != np.asarray(ops.dropout(x, 0.5, key))).any()
    with pytest.raises(ValueError, match="dropout rate"):
        ops.dropout(x, 1.5, key)
