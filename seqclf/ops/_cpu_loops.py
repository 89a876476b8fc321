"""The fast LSTM's two training loops, with a platform trick on the CPU: one shared buffer.

Private to ``seqclf.ops.fused``; the math of each step is there, this module only decides how
the loops hold their (T, B, 4H) arrays.

On the CPU, with unroll=1, one (T, B, 4H) buffer serves the whole layer, as cuDNN's "reserve
space" does: it enters the forward loop holding the input projection xw and leaves it holding
the gate activations (step t overwrites the xw_t it has read), and the backward loop overwrites
those with the gate gradients, which then feed dW_ih and dx. On the CPU a fresh buffer that size
is page-faulted in anew on every call (malloc maps it, and unmaps it when it is freed), so three
such buffers cost more than their arithmetic: at B 64, T 512, H 512 this cut the page faults of
a forward + backward from ~240,000 to ~140,000 and its time by ~10 % (benchmarks/README.md).

Each step reads the row for the *next* step from the buffer it has just written (a different
row) and carries it. Reading row t and then writing row t of the same buffer would be as
correct, but XLA fuses that read into every kernel that uses it and then copies the whole buffer
each step so that the write cannot overtake the reads (~8x slower). With unroll > 1 it does the
same inside the unrolled body, so there the loops keep separate buffers. Other platforms keep
them too: their allocators reuse device memory (no page faults), and the separate-buffer loops
are the ones measured against cuDNN (benchmarks/README.md, GPU).
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp


def _write_row_read_next(buf, row, t, next_t):
    """``buf`` with ``row`` written at step t, and the row at ``next_t`` read from the result."""
    buf = jax.lax.dynamic_update_index_in_dim(buf, row, t, 0)
    return buf, jax.lax.dynamic_index_in_dim(buf, next_t, 0, False)


def _loop_form(unroll: int, steps: int, in_place: Callable, separate: Callable):
    """The shared-buffer loop where it pays (CPU, unroll=1), else the separate-buffer one."""
    if unroll > 1 or steps == 0:
        return separate()
    return jax.lax.platform_dependent(cpu=in_place, default=separate)


def forward_saving(step: Callable, xw, mask, h0, c0, unroll: int):
    """The forward loop for the backward pass.

    Args:
      step: ``(h, c, xw_t, m_t) -> (h_new, c_new, acts_t)``.
      xw: (T, B, 4H) the input projection; on the CPU its buffer becomes the activations.
      mask: (T, B, 1) bool or None.
      h0, c0: (B, H) initial states.
      unroll: steps per scan iteration.

    Returns:
      ``(h_n, c_n, hs, cs, acts)``: the final states, the states hs, cs (T, B, H) after every
      step and the gate activations acts (T, B, 4H).
    """
    steps = xw.shape[0]

    def separate():
        def body(carry, inputs):
            h, c, acts = step(*carry, *inputs)
            return (h, c), (h, c, acts)

        (h, c), (hs, cs, acts) = jax.lax.scan(body, (h0, c0), (xw, mask), unroll=unroll)
        return h, c, hs, cs, acts

    def in_place():
        def body(carry, inputs):
            h, c, buf, xw_t = carry
            t, m_t = inputs
            h, c, acts = step(h, c, xw_t, m_t)
            buf, xw_next = _write_row_read_next(buf, acts, t, jnp.minimum(t + 1, steps - 1))
            return (h, c, buf, xw_next), (h, c)

        carry = (h0, c0, xw, xw[0])
        (h, c, acts, _), (hs, cs) = jax.lax.scan(body, carry, (jnp.arange(steps), mask))
        return h, c, hs, cs, acts

    return _loop_form(unroll, steps, in_place, separate)


def backward(step: Callable, dh_n, dc_n, acts, inputs: tuple, unroll: int):
    """The reverse loop.

    Args:
      step: ``(dh, dc, dy_t, a_t, c_t, c_prev_t, m_t) -> (dh_prev, dc_prev, dgates_t)``.
      dh_n, dc_n: (B, H) cotangents of the final states.
      acts: (T, B, 4H) the saved activations; on the CPU its buffer becomes the gate gradients.
      inputs: ``(dys, cs, c_prev, mask)``, time-major.
      unroll: steps per scan iteration.

    Returns:
      ``(dh0, dc0, dgates)``: the initial states' gradients and dgates (T, B, 4H).
    """
    steps = acts.shape[0]
    dys, cs, c_prev, mask = inputs

    def separate():
        def body(carry, inputs):
            dh, dc, dgates = step(*carry, *inputs)
            return (dh, dc), dgates

        xs = (dys, acts, cs, c_prev, mask)
        (dh0, dc0), dgates = jax.lax.scan(body, (dh_n, dc_n), xs, reverse=True, unroll=unroll)
        return dh0, dc0, dgates

    def in_place():
        def body(carry, inputs):
            dh, dc, buf, a_t = carry  # buf: activations up to step t, gate gradients after it
            t, dy_t, c_t, c_prev_t, m_t = inputs
            dh, dc, dgates = step(dh, dc, dy_t, a_t, c_t, c_prev_t, m_t)
            buf, a_next = _write_row_read_next(buf, dgates, t, jnp.maximum(t - 1, 0))
            return (dh, dc, buf, a_next), None

        xs = (jnp.arange(steps), dys, cs, c_prev, mask)
        carry = (dh_n, dc_n, acts, acts[-1])
        (dh0, dc0, dgates, _), _ = jax.lax.scan(body, carry, xs, reverse=True)
        return dh0, dc0, dgates

    return _loop_form(unroll, steps, in_place, separate)
