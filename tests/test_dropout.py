"""seqclf.ops.dropout: the 16-bit mask keeps what it should, scales exactly, and is random."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqclf import ops
from seqclf.ops.dropout import keep_threshold


@pytest.mark.parametrize("rate", [0.1, 0.25, 0.4, 0.5, 0.9])
def test_mask_keeps_the_expected_share_and_its_halves_are_independent(rate):
    shape = (64, 101, 33)  # odd size: the last word's second half is cut off
    mask = np.asarray(ops.keep_mask(jax.random.PRNGKey(0), rate, shape))
    assert mask.shape == shape and mask.dtype == np.bool_
    n = mask.size
    # Binomial: 5 standard deviations.
    assert abs(mask.mean() - (1 - rate)) < 5 * np.sqrt(rate * (1 - rate) / n)
    # The halves of one word land at i and i + ceil(n / 2): they must agree no more than chance.
    flat = mask.reshape(-1)
    half = (n + 1) // 2
    first, second = flat[: n - half], flat[half:]
    agree = (first == second).mean()
    expected = rate**2 + (1 - rate) ** 2
    assert abs(agree - expected) < 5 * np.sqrt(expected * (1 - expected) / first.size)


def test_dropout_is_unbiased_and_zeroes_the_rest():
    x = jnp.full((200, 300), 3.0)
    y = np.asarray(ops.dropout(x, 0.3, jax.random.PRNGKey(1)))
    kept = y != 0
    scale = 65536 / (65536 - keep_threshold(0.3))
    np.testing.assert_allclose(y[kept], 3.0 * scale, rtol=1e-6)
    assert abs(y.mean() - 3.0) < 0.03  # E[y] = x


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
