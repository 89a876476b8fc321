"""Dropout with a cheaper mask: one 32-bit random word decides two elements.

Why not ``flax.linen.Dropout``: it draws one 32-bit uniform number per element
(``jax.random.bernoulli``). On a CPU the threefry hash behind those numbers is the largest single
cost of the classifier's train step: the mask after the embedding is B·T·E numbers (64·400·128 =
3.3 M per step in the L benchmark), about half of the step (benchmarks/README.md). Each 32-bit word
holds two independent 16-bit numbers, so hashing half as many words gives the same mask at half
the cost. A 16-bit number can express the rate only to 1/65536; the survivors are scaled by the
exact keep probability that the threshold gives, so the expected output is still exactly ``x``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

_LEVELS = 1 << 16  # a 16-bit random number takes this many values


def keep_threshold(rate: float) -> int:
    """The 16-bit cut: an element is kept when its random number is >= this (0..65536)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
    return round(rate * _LEVELS)


def keep_mask(key: jax.Array, rate: float, shape: Sequence[int]) -> jax.Array:
    """A boolean mask of ``shape``, each element True with probability ~``1 - rate``.

    Args:
      key: a PRNG key.
      rate: the probability of dropping an element, in [0, 1] (resolved to 1/65536).
      shape: the mask's shape.

    Returns:
      (``*shape``) bool. Element i comes from the high or low half of random word i // 2 (of
      ceil(size / 2) words), so neighbouring elements are independent.
    """
    size = math.prod(shape)
    words = jax.random.bits(key, ((size + 1) // 2,), jnp.uint32)
    halves = jnp.concatenate([words >> 16, words & 0xFFFF])[:size]
    return (halves >= keep_threshold(rate)).reshape(tuple(shape))


def dropout(
    x: jax.Array, rate: float, key: jax.Array, broadcast_dims: Sequence[int] = ()
) -> jax.Array:
    """Inverted dropout: zero elements with probability ``rate`` and scale the rest up.

    Args:
      x: any shape, e.g. (B, T, E).
      rate: drop probability in [0, 1].
      key: a PRNG key.
      broadcast_dims: axes that share one decision (as in ``flax.linen.Dropout``): ``(2,)`` on
        (B, T, E) drops whole words, ``(1,)`` whole channels (Keras' SpatialDropout1D).

    Returns:
      x's shape and dtype; survivors multiplied by 1 / P(keep), so E[output] = x.
    """
    threshold = keep_threshold(rate)
    if threshold == 0:
        return x
    if threshold == _LEVELS:
        return jnp.zeros_like(x)
    axes = {d % x.ndim for d in broadcast_dims}
    mask_shape = [1 if d in axes else n for d, n in enumerate(x.shape)]
    mask = keep_mask(key, rate, mask_shape)
    scale = jnp.asarray(_LEVELS / (_LEVELS - threshold), x.dtype)
    return jnp.where(mask, x * scale, jnp.zeros((), x.dtype))
