"""Bag of n-grams (fastText, Joulin et al. 2016): the mean of word and hashed-bigram embeddings.

A sentiment review is often decided by short phrases ("not good", "waste of"); a bag of bigram
embeddings averaged over the whole text is a strong, cheap, order-free summary of them that the
classifier can read beside its convolution and recurrence. Bigrams are hashed into a fixed number
of buckets, so no bigram vocabulary is built or saved.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqclf.ops._driver import sequence_mask

# Knuth's multiplicative hash constant; uint32 arithmetic wraps, which is what a hash wants.
_HASH_MULTIPLIER = 2654435761


def hashed_bigrams(tokens: jax.Array, buckets: int) -> jax.Array:
    """Bucket ids of the bigrams ending at each step.

    Args:
      tokens: (B, T) int token ids.
      buckets: number of hash buckets (> 0).

    Returns:
      (B, T) int32 in ``[0, buckets)``; step t holds the bigram (tokens[t-1], tokens[t]). Step 0
      has no bigram (its value is meaningless and must be masked, see ``ngram_bag``).
    """
    if buckets < 1:
        raise ValueError(f"buckets must be >= 1, got {buckets}")
    current = tokens.astype(jnp.uint32)
    previous = jnp.pad(current[:, :-1], ((0, 0), (1, 0)))
    ids = previous * jnp.uint32(_HASH_MULTIPLIER) + current
    return (ids % jnp.uint32(buckets)).astype(jnp.int32)


def ngram_bag(word_vectors: jax.Array, bigram_vectors: jax.Array, lengths: jax.Array) -> jax.Array:
    """Mean of the valid word and bigram vectors of each sequence.

    Args:
      word_vectors: (B, T, D) embeddings of the tokens.
      bigram_vectors: (B, T, D) embeddings of ``hashed_bigrams(tokens)``.
      lengths: (B,) valid lengths; a sequence of length n has n words and n - 1 bigrams.

    Returns:
      (B, D) float32: sum of the n word and n - 1 bigram vectors divided by 2n - 1 (0 when n = 0).
    """
    steps = word_vectors.shape[1]
    words = sequence_mask(lengths, steps)
    bigrams = words & (jnp.arange(steps)[None, :] >= 1)
    total = jnp.sum(
        jnp.where(words[..., None], word_vectors, 0.0), axis=1, dtype=jnp.float32
    ) + jnp.sum(jnp.where(bigrams[..., None], bigram_vectors, 0.0), axis=1, dtype=jnp.float32)
    count = jnp.maximum(2 * jnp.asarray(lengths) - 1, 1).astype(jnp.float32)
    return total / count[:, None]
