"""NBSVM's features (Wang & Manning 2012): distinct hashed n-grams, scaled by NB log-count ratios.

A linear model over which n-grams (1 to N words) a text contains is the strongest cheap text
classifier on most sentence and review sets. Wang & Manning scale each binary feature by its
naive-Bayes log-count ratio ``r = log((p / |p|_1) / (q / |q|_1))`` (p, q: smoothed counts of the
feature in this class's and the other classes' texts) before fitting the linear model: the NB
evidence sets the scale of each feature, and the trained weights only correct it.

N-grams are hashed into a fixed number of buckets (as fastText does), so no n-gram vocabulary is
built or saved; the hash is of the token ids, so it is fixed by the vocabulary.

References:
  Wang & Manning (2012), "Baselines and Bigrams: Simple, Good Sentiment and Topic
  Classification", ACL.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from seqclf.ops._driver import sequence_mask

# Multiplier of the rolling n-gram hash and of the final mix (Knuth's and a 32-bit odd constant);
# uint32 arithmetic wraps, which is what a hash wants.
_ROLL = 2654435761
_MIX = 0x45D9F3B


def _mix(h: jax.Array) -> jax.Array:
    """A 32-bit integer finaliser: spreads nearby ids over all buckets."""
    h = (h ^ (h >> 16)) * jnp.uint32(_MIX)
    h = (h ^ (h >> 16)) * jnp.uint32(_MIX)
    return h ^ (h >> 16)


def hashed_ngrams(tokens: jax.Array, lengths: jax.Array, max_n: int, buckets: int):
    """Bucket ids of the n-grams (n = 1..max_n) ending at each step.

    Args:
      tokens: (B, T) int token ids.
      lengths: (B,) valid lengths.
      max_n: longest n-gram.
      buckets: number of hash buckets (> 0).

    Returns:
      ``(ids, valid)``, both (B, T, max_n): ``ids[b, t, n-1]`` is the bucket of the n-gram
      ``tokens[b, t-n+1 : t+1]`` (int32 in ``[0, buckets)``), ``valid`` says whether that n-gram
      lies inside the text.
    """
    if buckets < 1 or max_n < 1:
        raise ValueError(f"buckets and max_n must be >= 1, got {buckets}, {max_n}")
    steps = tokens.shape[1]
    current = tokens.astype(jnp.uint32)
    inside = sequence_mask(lengths, steps)
    positions = jnp.arange(steps)[None, :]
    rolling = jnp.zeros_like(current)
    ids, valid = [], []
    for n in range(1, max_n + 1):
        # rolling(t) = hash of tokens[t-n+1 .. t]: the (n-1)-gram ending at t-1, then tokens[t].
        shifted = jnp.pad(rolling[:, :-1], ((0, 0), (1, 0))) if n > 1 else rolling
        rolling = shifted * jnp.uint32(_ROLL) + current + jnp.uint32(1)
        ids.append((_mix(rolling + jnp.uint32(n)) % jnp.uint32(buckets)).astype(jnp.int32))
        valid.append(inside & (positions >= n - 1))
    return jnp.stack(ids, axis=-1), jnp.stack(valid, axis=-1)


def _flat_ngram_ids(tokens: jax.Array, lengths: jax.Array, max_n: int, buckets: int):
    """(B, T * max_n) bucket ids of ``hashed_ngrams``; ``buckets`` (past the end) where absent."""
    ids, valid = hashed_ngrams(tokens, lengths, max_n, buckets)
    batch, steps = tokens.shape
    return jnp.where(valid, ids, buckets).reshape(batch, steps * max_n)


def _first_occurrences(sorted_ids: jax.Array, buckets: int) -> jax.Array:
    """True at the first of each run of equal ids in each sorted row (absent ones left out)."""
    batch = sorted_ids.shape[0]
    new = jnp.concatenate(
        [jnp.ones((batch, 1), bool), sorted_ids[:, 1:] != sorted_ids[:, :-1]], axis=1
    )
    return new & (sorted_ids < buckets)


def distinct_ngram_ids(
    tokens: jax.Array, lengths: jax.Array, max_n: int, buckets: int
) -> tuple[jax.Array, jax.Array]:
    """``distinct_ngrams`` without ``where``: ``(ids, first)``, each (B, T * max_n).

    The same two arrays, from a sort of the ids alone. What a prediction needs: XLA:CPU sorts
    one operand about 5x faster than it argsorts (B 64, T 600, max_n 3: 5.4 against 26 ms on
    2 cores), because an argsort sorts (id, position) pairs through a comparator call each.
    """
    ids = jnp.sort(_flat_ngram_ids(tokens, lengths, max_n, buckets), axis=1)
    return ids, _first_occurrences(ids, buckets)


def distinct_ngrams(
    tokens: jax.Array, lengths: jax.Array, max_n: int, buckets: int
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Each text's distinct n-gram buckets: the binarized bag of NBSVM.

    Args:
      tokens: (B, T) int token ids.
      lengths: (B,) valid lengths.
      max_n: longest n-gram.
      buckets: number of hash buckets.

    Returns:
      ``(ids, first, where)``, each (B, T * max_n): bucket ids sorted within each row, a mask
      that is True at the first occurrence of each bucket present in the text (so each counts
      once), and where each entry came from in the (T, max_n) grid of ``hashed_ngrams``
      flattened (step ``where // max_n``, n-gram length ``where % max_n + 1``). Without the
      need for ``where``, ``distinct_ngram_ids`` gives the first two faster.
    """
    flat = _flat_ngram_ids(tokens, lengths, max_n, buckets)
    order = jnp.argsort(flat, axis=1, stable=True)
    ids = jnp.take_along_axis(flat, order, axis=1)
    return ids, _first_occurrences(ids, buckets), order


def ngram_token_weights(token_weights: jax.Array, max_n: int) -> jax.Array:
    """(B, T) per-token weights → (B, T, max_n): an n-gram's weight is the product of its words'.

    With every weight at α this is α^n: scaling all tokens from 0 to 1 fades each n-gram in.
    """
    out, running = [], jnp.ones_like(token_weights)
    steps = token_weights.shape[1]
    for n in range(max_n):
        previous = jnp.pad(token_weights, ((0, 0), (n, 0)))[:, :steps]  # w[t - n], 0 before 0
        running = running * previous
        out.append(running)
    return jnp.stack(out, axis=-1)


# Rows of the count table summed at a time by ``class_totals``.
_TOTALS_ROWS = 512


def class_totals(counts: jax.Array) -> jax.Array:
    """(buckets, C) counts -> (C,) their column sums (the norms of the log-count ratios).

    The same sums as ``counts.sum(axis=0)``, read as rows of ``512 * C`` numbers: XLA:CPU sums a
    (2^22, 2) table down its long axis at a quarter of the memory's speed (6.6 ms on 2 cores,
    against 1.3 ms this way), and a prediction with the NBSVM head pays this on every call.
    """
    counts = jnp.asarray(counts, jnp.float32)
    rows, classes = counts.shape
    if rows % _TOTALS_ROWS:
        return counts.sum(axis=0)
    wide = counts.reshape(rows // _TOTALS_ROWS, _TOTALS_ROWS * classes).sum(axis=0)
    return wide.reshape(_TOTALS_ROWS, classes).sum(axis=0)


def log_count_ratios(counts: jax.Array, alpha: float = 1.0) -> jax.Array:
    """NB log-count ratios of every bucket, one class against the rest.

    Args:
      counts: (buckets, C) in how many training texts of each class each bucket occurs.
      alpha: additive smoothing (Wang & Manning use 1).

    Returns:
      (buckets, C) float32: ``r[:, c] = log(p / |p|_1) - log(q / |q|_1)`` with
      ``p = alpha + counts[:, c]`` and ``q = alpha + (counts summed over the other classes)``.
    """
    counts = jnp.asarray(counts, jnp.float32)
    return selected_log_count_ratios(counts, class_totals(counts), counts.shape[0], alpha)


def selected_log_count_ratios(
    selected: jax.Array, class_totals: jax.Array, buckets: int, alpha: float = 1.0
) -> jax.Array:
    """``log_count_ratios`` of some buckets only, from their counts and the table's totals.

    Args:
      selected: (..., C) counts of the buckets wanted (rows of the (buckets, C) table).
      class_totals: (C,) the table's column sums.
      buckets: the table's number of rows (for the smoothing's share of the norms).
      alpha: additive smoothing.

    Returns:
      (..., C) float32 log-count ratios.
    """
    selected = jnp.asarray(selected, jnp.float32)
    p = alpha + selected
    q = alpha + (selected.sum(axis=-1, keepdims=True) - selected)
    total = class_totals.sum()
    p_norm = alpha * buckets + class_totals
    q_norm = alpha * buckets + (total - class_totals)
    return (jnp.log(p / p_norm) - jnp.log(q / q_norm)).astype(jnp.float32)
