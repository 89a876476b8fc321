"""The NBSVM head's log-count ratios, counted from the training split (``seqclf.train.fit``).

For each hashed n-gram bucket and class: in how many training texts of the class it occurs (each
text counts a bucket once, as NBSVM's binarized features do); then
``seqclf.ops.log_count_ratios``. Counting runs in the model's own n-gram hashing
(``seqclf.ops.distinct_ngrams``), on the same truncated texts the model is trained on.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqclf import ops
from seqclf.data.batching import batches

COUNT_BATCH = 256  # texts hashed per device call


@functools.partial(jax.jit, static_argnums=(4, 5), donate_argnums=0)
def _add_counts(
    counts: jax.Array,
    tokens: jax.Array,
    lengths: jax.Array,
    labels: jax.Array,
    max_n: int,
    buckets: int,
) -> jax.Array:
    """counts (buckets, C) plus the distinct n-grams of one batch, one-hot by class."""
    ids, first, _ = ops.distinct_ngrams(tokens, lengths, max_n, buckets)
    by_class = jax.nn.one_hot(labels, counts.shape[1], dtype=counts.dtype)  # (B, C)
    contributions = first.astype(counts.dtype)[..., None] * by_class[:, None, :]
    return counts.at[jnp.minimum(ids, buckets - 1)].add(contributions)


def naive_bayes_ratios(
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray,
    num_classes: int,
    buckets: int,
    max_n: int,
    config: Any,
    alpha: float = 1.0,
) -> jax.Array:
    """(buckets, num_classes) NB log-count ratios of the training texts.

    Args:
      token_ids: N training sequences of token ids.
      labels: (N,) class ids.
      num_classes: C.
      buckets: the head's hash buckets.
      max_n: the head's longest n-gram.
      config: the run's ``TrainConfig`` (its ``max_len``, ``truncating`` and buckets, so the
        counts come from the texts as the model sees them).
      alpha: additive smoothing.
    """
    counts = jnp.zeros((buckets, num_classes), jnp.float32)
    for batch in batches(
        token_ids,
        labels,
        COUNT_BATCH,
        max_len=config.max_len,
        truncating=config.truncating,
        buckets=config.buckets,
    ):
        counts = _add_counts(
            counts, batch["tokens"], batch["lengths"], batch["labels"], max_n, buckets
        )
    return ops.log_count_ratios(counts, alpha)
