"""The fastText bag of n-grams: hashing and the masked mean, against a plain NumPy reading."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqclf import ops


def test_hashed_bigrams_depend_on_the_two_words_only():
    tokens = jnp.array([[5, 6, 7, 5, 6], [9, 5, 6, 0, 0]])
    ids = np.asarray(ops.hashed_bigrams(tokens, 1000))
    assert ids.dtype == np.int32 and ids.shape == (2, 5)
    assert ((0 <= ids) & (ids < 1000)).all()
    # (5, 6) occurs three times, in both rows, at different positions: one bucket.
    assert ids[0, 1] == ids[0, 4] == ids[1, 2]
    # Order matters: (6, 7) and (7, 6) are different bigrams.
    swapped = np.asarray(ops.hashed_bigrams(jnp.array([[7, 6]]), 1000))
    assert ids[0, 2] != swapped[0, 1]
    # Large ids do not overflow into negative buckets.
    big = np.asarray(ops.hashed_bigrams(jnp.array([[2**31 - 1, 2**31 - 2]]), 7))
    assert ((0 <= big) & (big < 7)).all()
    with pytest.raises(ValueError, match="buckets must be >= 1"):
        ops.hashed_bigrams(tokens, 0)


def test_ngram_bag_is_the_mean_of_valid_words_and_bigrams():
    rng = np.random.default_rng(0)
    words = rng.normal(size=(3, 6, 4)).astype(np.float32)
    bigrams = rng.normal(size=(3, 6, 4)).astype(np.float32)
    lengths = np.array([6, 2, 0])
    got = np.asarray(ops.ngram_bag(jnp.asarray(words), jnp.asarray(bigrams), jnp.asarray(lengths)))
    for b, n in enumerate(lengths):
        if n == 0:
            np.testing.assert_array_equal(got[b], 0.0)
            continue
        # n words (steps 0..n-1) and n - 1 bigrams (steps 1..n-1).
        expected = (words[b, :n].sum(0) + bigrams[b, 1:n].sum(0)) / (2 * n - 1)
        np.testing.assert_allclose(got[b], expected, rtol=1e-6)
    # Padding never matters, even when it is not finite.
    words[1, 2:] = np.inf
    bigrams[1, 2:] = np.nan
    again = ops.ngram_bag(jnp.asarray(words), jnp.asarray(bigrams), jnp.asarray(lengths))
    np.testing.assert_allclose(np.asarray(again)[1], got[1], rtol=1e-6)


def test_ngram_bag_gradient_reaches_only_valid_steps():
    words = jnp.ones((1, 5, 2))
    bigrams = jnp.ones((1, 5, 2))
    gw, gb = jax.grad(lambda w, b: ops.ngram_bag(w, b, jnp.array([3])).sum(), (0, 1))(
        words, bigrams
    )
    np.testing.assert_allclose(np.asarray(gw)[0, :, 0], [0.2, 0.2, 0.2, 0, 0])
    np.testing.assert_allclose(np.asarray(gb)[0, :, 0], [0, 0.2, 0.2, 0, 0])
