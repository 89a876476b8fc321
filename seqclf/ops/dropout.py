"""Dropout whose mask is cheap to draw on a CPU: one threefry hash per element, unrolled.

Why not ``flax.linen.Dropout``: it draws the mask with ``jax.random.bernoulli``, and on a CPU
JAX lowers the threefry hash behind it as a rolled loop (``jax/_src/random/threefry2x32.py``:
five passes over whole arrays in memory). The mask after the embedding is B·T·E numbers
(64·400·128 = 3.3 M per step in the L benchmark), and drawing it that way was the largest single
cost of the classifier's train step (benchmarks/README.md). Here the same generator — threefry-2x32
with 20 rounds, the hash behind JAX's default keys — is written out round by round in ``jnp``, so
XLA compiles it to one vectorised pass: each element hashes its own index under a key drawn from
the dropout rng, and the 32-bit word is compared with round(rate·2^32). The survivors are scaled
by the exact keep probability that threshold gives, so E[output] = x. (Taking several elements
from one hash costs less arithmetic, but splitting and concatenating the words was measured
slower.)

One more CPU detail: XLA fuses an elementwise producer into each of its consumers, and the mask
has three in a train step (the forward ``where``, the transposed copy of the dropout's output
that the convolution's kernel gradient reads, and the backward ``where``), so the hash ran three
times, once in transposed order. ``lax.optimization_barrier`` does not stop this on the CPU, a
loop does: there the mask of a large array is drawn row by row in a ``fori_loop`` and stored, and
the consumers read it. The bits are the same either way (tested).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import jax
import jax.numpy as jnp

_LEVELS = 1 << 32  # a 32-bit random word takes this many values
# Masks at least this large are drawn row by row on a CPU (see above); for small ones the loop's
# own overhead would cost more than the recomputation it saves.
_ROW_LOOP_MIN_SIZE = 1 << 16
# Threefry-2x32's rotation distances (Salmon et al. 2011, "Parallel random numbers: as easy as
# 1, 2, 3"), used four at a time, alternating; the key schedule's parity constant.
_ROTATIONS = ((13, 15, 26, 6), (17, 29, 16, 24))
_PARITY = 0x1BD11BDA


def threefry2x32(
    key0: jax.Array, key1: jax.Array, count0: jax.Array, count1: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """Threefry-2x32-20 of the counters (count0, count1) under the key (key0, key1).

    Args:
      key0, key1: uint32 scalars (or arrays broadcasting with the counters).
      count0, count1: uint32 arrays of one shape.

    Returns:
      Two uint32 arrays of the counters' shape: the hashed pair, bit for bit what JAX's threefry
      gives for the same key and counters.
    """
    keys = (key0, key1, key0 ^ key1 ^ jnp.uint32(_PARITY))
    x0, x1 = count0 + keys[0], count1 + keys[1]
    for block in range(5):  # 5 blocks of 4 rounds, a key injection after each
        for r in _ROTATIONS[block % 2]:
            x0 = x0 + x1
            x1 = (x1 << jnp.uint32(r)) | (x1 >> jnp.uint32(32 - r))
            x1 = x0 ^ x1
        x0 = x0 + keys[(block + 1) % 3]
        x1 = x1 + keys[(block + 2) % 3] + jnp.uint32(block + 1)
    return x0, x1


def keep_threshold(rate: float) -> int:
    """The 32-bit cut: an element is kept when its random word is >= this (0..2^32)."""
    if not 0.0 <= rate <= 1.0:
        raise ValueError(f"dropout rate must be in [0, 1], got {rate}")
    return round(rate * _LEVELS)


def keep_mask(key: jax.Array, rate: float, shape: Sequence[int]) -> jax.Array:
    """A boolean mask of ``shape``, each element True with probability ~``1 - rate``.

    Args:
      key: a PRNG key (raw uint32 or typed).
      rate: the probability of dropping an element, in [0, 1] (resolved to 2^-32).
      shape: the mask's shape, fewer than 2^32 elements.

    Returns:
      (``*shape``) bool: element i is ``threefry(k, (i, 0))[0] >= round(rate·2^32)``, with the key
      k drawn from ``key``.
    """
    threshold = keep_threshold(rate)
    shape = tuple(shape)
    size = math.prod(shape)
    if size >= _LEVELS:
        raise ValueError(f"a dropout mask must have fewer than 2^32 elements, got {size}")
    if threshold == _LEVELS:
        return jnp.zeros(shape, bool)
    key0, key1 = jax.random.bits(key, (2,), jnp.uint32)

    def keep(start: jax.Array, n: int) -> jax.Array:
        """(n,) bool: the decisions for flat indices start .. start + n - 1."""
        index = jax.lax.iota(jnp.uint32, n) + start
        word, _ = threefry2x32(key0, key1, index, jnp.zeros_like(index))
        return word >= jnp.uint32(threshold)

    def all_at_once() -> jax.Array:
        return keep(jnp.uint32(0), size).reshape(shape)

    if len(shape) < 2 or size < _ROW_LOOP_MIN_SIZE:
        return all_at_once()
    rows, row_size = shape[0], size // shape[0]

    def row_by_row() -> jax.Array:
        def draw_row(i: jax.Array, mask: jax.Array) -> jax.Array:
            row = keep(i.astype(jnp.uint32) * jnp.uint32(row_size), row_size)
            return jax.lax.dynamic_update_slice(mask, row[None], (i, 0))

        mask = jax.lax.fori_loop(0, rows, draw_row, jnp.zeros((rows, row_size), bool))
        return mask.reshape(shape)

    return jax.lax.platform_dependent(cpu=row_by_row, default=all_at_once)


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
