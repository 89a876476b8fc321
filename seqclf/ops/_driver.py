"""What every recurrence in ``seqclf.ops`` shares: masks, direction, input checks, dtype rules and
the layer driver (pad -> reverse -> time-major -> recurrence -> batch-major -> reverse back).

Private to ``seqclf.ops``: users reach ``sequence_mask`` and ``reverse_padded`` through
``seqclf.ops``. Both recurrence families, the fast ``seqclf.ops.fused`` one and the reference
scans in ``seqclf.ops.recurrent``, import this module and nothing of each other's internals.

Dtype rules (the same for both families). The compute dtype D is ``xs.dtype``; C is
``promote_types(D, float32)`` (float32 for bfloat16, float16 and float32, float64 for float64):

* every matmul takes D operands (weights, inputs and the state are cast to D for it) and
  accumulates in C (``preferred_element_type``), so bfloat16 matmuls run on bfloat16 hardware;
* biases, the carried state (h, and the LSTM's c, which sums over every step) and all the gate
  arithmetic are C;
* outputs ``ys`` are D, final states C;
* gradients come back in each argument's own dtype: float32 master weights under bfloat16
  compute get float32 gradients.

In float32 and float64 every cast is a no-op.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp

Params = dict[str, jax.Array]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}

# recurrence(params, xs (T, B, F) time-major, mask (T, B, 1) | None, state tuple, unroll)
#   -> (ys (T, B, H), final state tuple)
Recurrence = Callable[[Params, jax.Array, Any, tuple, int], tuple[jax.Array, tuple]]


def sequence_mask(lengths: jax.Array, max_len: int) -> jax.Array:
    """(B, T) boolean mask, True at the valid steps ``t < lengths[b]``."""
    return jnp.arange(max_len)[None, :] < jnp.asarray(lengths)[:, None]


def zero_padding(xs: jax.Array, lengths: jax.Array) -> jax.Array:
    """xs (B, T, ...) with the padded steps ``t >= lengths[b]`` set to zero."""
    mask = sequence_mask(lengths, xs.shape[1]).reshape(xs.shape[:2] + (1,) * (xs.ndim - 2))
    return jnp.where(mask, xs, jnp.zeros((), xs.dtype))


def reverse_padded(xs: jax.Array, lengths: jax.Array | None) -> jax.Array:
    """Reverse each sequence within its own length, leaving padding at the end.

    Args:
      xs: (B, T, ...) batch-major sequences.
      lengths: (B,) valid lengths, or None for full-length sequences.

    Returns:
      (B, T, ...) with ``out[b, t] = xs[b, lengths[b] - 1 - t]`` for ``t < lengths[b]`` and
      ``xs[b, t]`` elsewhere. Applying it twice gives ``xs`` back.
    """
    if lengths is None:
        return jnp.flip(xs, axis=1)
    t = jnp.arange(xs.shape[1])[None, :]
    lengths = jnp.asarray(lengths)[:, None]
    index = jnp.where(t < lengths, lengths - 1 - t, t)
    return jnp.take_along_axis(xs, index.reshape(index.shape + (1,) * (xs.ndim - 2)), axis=1)


def check_inputs(name: str, params: Params, xs: jax.Array, lengths: jax.Array | None) -> None:
    """One-line ValueErrors for a wrong rank, feature count or lengths shape."""
    if xs.ndim != 3:
        raise ValueError(f"{name}: xs must be (batch, time, features), got shape {xs.shape}")
    if xs.shape[-1] != params["w_ih"].shape[0]:
        raise ValueError(
            f"{name}: xs has {xs.shape[-1]} features but w_ih expects {params['w_ih'].shape[0]}"
        )
    if lengths is not None and jnp.shape(lengths) != (xs.shape[0],):
        raise ValueError(
            f"{name}: lengths must have shape (batch,) = ({xs.shape[0]},), got {jnp.shape(lengths)}"
        )


# ---------------------------------------------------------------------------------------------
# Dtype rules
# ---------------------------------------------------------------------------------------------


def accumulation_dtype(dtype: Any) -> jnp.dtype:
    """C: the dtype of the state, biases, gate arithmetic and matmul accumulation."""
    return jnp.promote_types(dtype, jnp.float32)


def matmul(a: jax.Array, w: jax.Array) -> jax.Array:
    """``a @ w`` with ``a`` cast to ``w``'s dtype, accumulated in (and returned as) at least
    float32: under bfloat16 the operands are bfloat16 and the result float32."""
    return jnp.matmul(a.astype(w.dtype), w, preferred_element_type=accumulation_dtype(w.dtype))


def project(xs: jax.Array, w: jax.Array) -> jax.Array:
    """The input projection of every step at once: (T, B, F) @ (F, N) -> (T, B, N), in C.

    One (T*B, F) x (F, N) matmul over the time-major input. (Time-major first, then a plain
    row-major matmul: XLA:CPU runs that ~3x faster than a dot writing a transposed output.)
    """
    t, b, f = xs.shape
    return matmul(xs.reshape(t * b, f), w.astype(xs.dtype)).reshape(t, b, w.shape[1])


def start_state(xs: jax.Array, params: Params, given: Any, count: int) -> tuple[jax.Array, ...]:
    """The initial state as a tuple of ``count`` (B, H) arrays in C: zeros, or ``given`` (one
    array, or a tuple of ``count``) cast to C."""
    dtype = accumulation_dtype(xs.dtype)
    if given is None:
        zeros = jnp.zeros((xs.shape[0], params["w_hh"].shape[0]), dtype)
        return (zeros,) * count
    given = tuple(given) if count > 1 else (given,)
    return tuple(jnp.asarray(s).astype(dtype) for s in given)


# ---------------------------------------------------------------------------------------------
# The layer driver
# ---------------------------------------------------------------------------------------------


def run_layer(
    recurrence: Recurrence,
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None,
    state: tuple,
    *,
    reverse: bool,
    unroll: int,
    remat: bool,
) -> tuple[jax.Array, tuple]:
    """One layer, one direction: padding, direction and layout around a time-major recurrence.

    Args:
      recurrence: see ``Recurrence`` above; it does the input projection itself.
      params: the layer's weights (``seqclf.ops.recurrent``'s layout).
      xs: (B, T, F) inputs, compute dtype D.
      lengths: (B,) valid lengths or None.
      state: the initial state tuple, from ``start_state``.
      reverse: read each sequence backwards from its own last valid step.
      unroll: passed to the recurrence.
      remat: wrap the layer in ``jax.checkpoint`` (keep nothing between the passes).

    Returns:
      ``(ys, final)``: ys (B, T, H) in D (zero at padded steps), final the state tuple.
    """

    def run(params: Params, xs: jax.Array, state: tuple) -> tuple[jax.Array, tuple]:
        if lengths is not None:
            # Zero the padding before it meets a weight: whatever it holds (even inf or NaN) then
            # reaches neither the outputs nor, through 0 * inf, the gradients.
            xs = zero_padding(xs, lengths)
        if reverse:
            xs = reverse_padded(xs, lengths)
        mask = None if lengths is None else sequence_mask(lengths, xs.shape[1]).T[:, :, None]
        ys, final = recurrence(params, jnp.swapaxes(xs, 0, 1), mask, state, unroll)
        ys = jnp.swapaxes(ys, 0, 1).astype(xs.dtype)  # back to (B, T, H)
        if reverse:
            ys = reverse_padded(ys, lengths)
        return ys, tuple(final)

    if remat:
        run = jax.checkpoint(run)
    return run(params, xs, tuple(state))
