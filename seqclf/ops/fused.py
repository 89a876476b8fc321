"""Simple RNN, LSTM and GRU with a cuDNN-style hand-written backward pass (``jax.custom_vjp``).

Same API, weight layout and padding semantics as ``seqclf.ops.recurrent`` (``lstm_fused`` is a
drop-in for ``lstm``, and so on), and the same numbers up to float rounding; ``recurrent.py``
stays the slow, obviously-correct reference the tests hold these against.

What differs is the backward pass. Autodiff of ``lax.scan`` carries the weight gradients through
the reverse loop and does four small matmuls per step (dh, dx, dW_hh, dW_ih). Here, as in cuDNN,
only the recurrent part ``h_t = cell(h_{t-1}, xw_t)`` is a custom VJP:

* forward: one scan that also saves what the backward needs (gate activations, states);
* backward: one reverse scan whose carry is only the data gradient ``(dh, dc)`` and whose body has
  one small matmul ``dgates_t @ w_hh.T``; it emits the gate gradients ``dgates`` (T, B, G*H);
* after the loop, ``dW_hh = H_prev^T @ dgates`` is one (H, T*B) x (T*B, G*H) matmul,
  ``db_hh = sum(dgates)`` and ``dxw = dgates``.

The input projection ``x @ w_ih`` stays an ordinary matmul outside, differentiated by JAX, so
``dW_ih`` and ``dx`` are one large matmul each as well. (For the simple RNN and the LSTM, ``b_ih``
is added to ``b_hh`` and enters in the loop's elementwise kernel, which saves a pass over the
(T, B, G*H) projection; the GRU's ``b_in`` sits outside its reset gate, so it stays in ``xw``.)

``unroll`` applies to both loops; ``remat=True`` wraps the layer in ``jax.checkpoint`` (nothing
kept between the passes, one more forward in the backward pass), for stacks of long sequences.

Recurrence functions (time-major, the input projection already applied):

    rnn_recurrence(w_hh, b_hh, xw, mask, h0, unroll=1) -> (ys, h_n)
    lstm_recurrence(w_hh, b_hh, xw, mask, h0, c0, unroll=1) -> (ys, h_n, c_n)
    gru_recurrence(w_hh, b_hh, xw, mask, h0, unroll=1) -> (ys, h_n)

References: Appleyard, Kocisky & Blunsom, "Optimizing performance of recurrent neural networks
on GPUs", arXiv:1604.01946, 2016 (the structure cuDNN's RNN kernels use).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from seqclf.ops.recurrent import (
    Params,
    _check_inputs,
    _zero_padding,
    _zeros,
    project_inputs,
    reverse_padded,
    sequence_mask,
)

# ---------------------------------------------------------------------------------------------
# Helpers shared by the three recurrences
# ---------------------------------------------------------------------------------------------


def _hold(mask: jax.Array | None, new: jax.Array, old: jax.Array) -> jax.Array:
    """``new`` where the step is valid, ``old`` (the held state) where it is padding."""
    return new if mask is None else jnp.where(mask, new, old)


def _outputs(mask: jax.Array | None, hs: jax.Array) -> jax.Array:
    """Outputs from the (T, B, H) held states: the state where valid, zero at padding."""
    return hs if mask is None else jnp.where(mask, hs, jnp.zeros((), hs.dtype))


def _previous(h0: jax.Array, hs: jax.Array) -> jax.Array:
    """(T, B, H) the state entering each step: ``h0`` then ``hs[:-1]``."""
    return jnp.concatenate([h0[None], hs[:-1]], axis=0)[: hs.shape[0]]  # T = 0 stays empty


def _weight_grads(h_prev: jax.Array, dgates: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``dW = H_prev^T @ dgates`` as one (H, T*B) x (T*B, G*H) matmul, and ``db = sum(dgates)``."""
    t, b, h = h_prev.shape
    dw = h_prev.reshape(t * b, h).T @ dgates.reshape(t * b, dgates.shape[-1])
    return dw, jnp.sum(dgates, axis=(0, 1))


def _sigmoid_grad(s: jax.Array) -> jax.Array:
    return s * (1.0 - s)


# ---------------------------------------------------------------------------------------------
# Simple RNN: h' = tanh(xw + h W_hh + b_hh)
# ---------------------------------------------------------------------------------------------


def _rnn_scan(w_hh, b_hh, xw, mask, h0, unroll):
    def step(h, inputs):
        xw_t, m_t = inputs
        h = _hold(m_t, jnp.tanh(xw_t + h @ w_hh + b_hh), h)
        return h, h

    return jax.lax.scan(step, h0, (xw, mask), unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _rnn(w_hh, b_hh, xw, mask, h0, unroll):
    h, hs = _rnn_scan(w_hh, b_hh, xw, mask, h0, unroll)
    return _outputs(mask, hs), h


def _rnn_fwd(w_hh, b_hh, xw, mask, h0, unroll):
    h, hs = _rnn_scan(w_hh, b_hh, xw, mask, h0, unroll)
    return (_outputs(mask, hs), h), (w_hh, mask, h0, hs)


def _rnn_bwd(unroll, residuals, cotangents):
    w_hh, mask, h0, hs = residuals
    dys, dh_n = cotangents
    w_t = w_hh.T

    def step(dh, inputs):
        dy_t, h_t, m_t = inputs  # h_t: the new state, where the step is valid
        dh_new = _hold(m_t, dh + dy_t, jnp.zeros_like(dh))
        dpre = dh_new * (1.0 - h_t * h_t)
        return _hold(m_t, dpre @ w_t, dh), dpre

    dh0, dpre = jax.lax.scan(step, dh_n, (dys, hs, mask), reverse=True, unroll=unroll)
    dw, db = _weight_grads(_previous(h0, hs), dpre)
    return dw, db, dpre, None, dh0


_rnn.defvjp(_rnn_fwd, _rnn_bwd)


def rnn_recurrence(
    w_hh: jax.Array,
    b_hh: jax.Array,
    xw: jax.Array,
    mask: jax.Array | None,
    h0: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """The recurrent part of a simple RNN, with a hand-written backward pass.

    Args:
      w_hh: (H, H) recurrent weights.
      b_hh: (H,) recurrent bias.
      xw: (T, B, H) time-major input projection ``x @ w_ih`` (plus ``b_ih``, or fold it into b_hh).
      mask: (T, B, 1) bool, True at valid steps (state held and output zero elsewhere), or None.
      h0: (B, H) initial state.
      unroll: steps per scan iteration, in both passes.

    Returns:
      ``(ys, h_n)``: ys (T, B, H) outputs, h_n (B, H) final (held) state.
    """
    return _rnn(w_hh, b_hh, xw, mask, h0, unroll)


# ---------------------------------------------------------------------------------------------
# LSTM, gates (i, f, g, o)
# ---------------------------------------------------------------------------------------------


def _lstm_activations(z: jax.Array) -> jax.Array:
    """(B, 4H) pre-activations to (σ(i), σ(f), tanh(g), σ(o)) in one elementwise pass.

    tanh(x) = 2σ(2x) - 1, so all four gates are ``a * σ(a * z) - (a - 1)`` with a = 2 on the g
    block and 1 elsewhere: one kernel writes the whole (B, 4H) block, with no concatenate.
    """
    hidden = z.shape[-1] // 4
    a = jnp.ones((4, hidden), z.dtype).at[2].set(2.0).reshape(-1)
    return a * jax.nn.sigmoid(a * z) - (a - 1.0)


def _lstm_step(w_hh, b_hh, h, c, xw_t, m_t):
    """One forward step: ``(h_new, c_new, acts)``, acts the (B, 4H) gate activations."""
    acts = _lstm_activations(xw_t + h @ w_hh + b_hh)
    i, f, g, o = jnp.split(acts, 4, axis=-1)
    c_new = _hold(m_t, f * c + i * g, c)
    h_new = _hold(m_t, o * jnp.tanh(c_new), h)
    return h_new, c_new, acts


def _lstm_step_grad(w_t, dh, dc, dy_t, a_t, c_t, c_prev, m_t):
    """One backward step: ``(dh_prev, dc_prev, dgates)``, dgates w.r.t. the (B, 4H)
    pre-activations; ``dh``, ``dc`` are the gradients w.r.t. this step's outgoing state."""
    i, f, g, o = jnp.split(a_t, 4, axis=-1)
    # Gradients w.r.t. this step's new h and c (zero at padded steps).
    dh_new = _hold(m_t, dh + dy_t, jnp.zeros_like(dh))
    dc_new = _hold(m_t, dc, jnp.zeros_like(dc))
    tanh_c = jnp.tanh(c_t)
    dc_tot = dc_new + dh_new * o * (1.0 - tanh_c * tanh_c)
    dgates = jnp.concatenate(
        [
            dc_tot * g * _sigmoid_grad(i),
            dc_tot * c_prev * _sigmoid_grad(f),
            dc_tot * i * (1.0 - g * g),
            dh_new * tanh_c * _sigmoid_grad(o),
        ],
        axis=-1,
    )
    dh_prev = _hold(m_t, dgates @ w_t, dh)
    dc_prev = _hold(m_t, dc_tot * f, dc)
    return dh_prev, dc_prev, dgates


def _lstm_scan(w_hh, b_hh, xw, mask, h0, c0, unroll):
    """The forward loop alone (no gradient needed): ``(h_n, c_n, hs)``."""

    def step(carry, inputs):
        h, c, _ = _lstm_step(w_hh, b_hh, *carry, *inputs)
        return (h, c), h

    (h, c), hs = jax.lax.scan(step, (h0, c0), (xw, mask), unroll=unroll)
    return h, c, hs


# On the CPU, with unroll=1, one (T, B, 4H) buffer serves the whole layer, as cuDNN's "reserve
# space" does: it enters the forward loop holding the input projection xw and leaves it holding
# the gate activations (step t overwrites the xw_t it has read), and the backward loop overwrites
# those with the gate gradients, which are then dxw. On the CPU a fresh buffer that size is
# page-faulted in anew on every call (malloc maps it, and unmaps it when it is freed), so three
# such buffers cost more than their arithmetic: at B 64, T 512, H 512 this cut the page faults
# of a forward + backward from ~240,000 to ~140,000 and its time by ~10 % (benchmarks/README.md).
#
# Each step reads the row for the *next* step from the buffer it has just written (a different
# row) and carries it. Reading row t and then writing row t of the same buffer would be as
# correct, but XLA fuses that read into every kernel that uses it and then copies the whole
# buffer each step so that the write cannot overtake the reads (~8x slower). With unroll > 1 it
# does the same inside the unrolled body, so there the loops keep separate buffers. Other
# platforms keep them too: their allocators reuse device memory (no page faults), and the
# separate-buffer loops are the ones measured against cuDNN (benchmarks/README.md, GPU).


def _write_row_read_next(buf, row, t, next_t):
    """``buf`` with ``row`` written at step t, and the row at ``next_t`` read from the result."""
    buf = jax.lax.dynamic_update_index_in_dim(buf, row, t, 0)
    return buf, jax.lax.dynamic_index_in_dim(buf, next_t, 0, False)


def _loop_form(unroll, steps, in_place, separate):
    """The shared-buffer loop where it pays (CPU, unroll=1), else the separate-buffer one."""
    if unroll > 1 or steps == 0:
        return separate()
    return jax.lax.platform_dependent(cpu=in_place, default=separate)


def _lstm_scan_saving(w_hh, b_hh, xw, mask, h0, c0, unroll):
    """The forward loop for the backward pass: ``(h_n, c_n, hs, cs, acts)``, with the states
    hs, cs (T, B, H) and the gate activations acts (T, B, 4H) (in xw's buffer on the CPU)."""
    steps = xw.shape[0]

    def separate():
        def step(carry, inputs):
            h, c, acts = _lstm_step(w_hh, b_hh, *carry, *inputs)
            return (h, c), (h, c, acts)

        (h, c), (hs, cs, acts) = jax.lax.scan(step, (h0, c0), (xw, mask), unroll=unroll)
        return h, c, hs, cs, acts

    def in_place():
        def step(carry, inputs):
            h, c, buf, xw_t = carry
            t, m_t = inputs
            h, c, acts = _lstm_step(w_hh, b_hh, h, c, xw_t, m_t)
            buf, xw_next = _write_row_read_next(buf, acts, t, jnp.minimum(t + 1, steps - 1))
            return (h, c, buf, xw_next), (h, c)

        carry = (h0, c0, xw, xw[0])
        (h, c, acts, _), (hs, cs) = jax.lax.scan(step, carry, (jnp.arange(steps), mask))
        return h, c, hs, cs, acts

    return _loop_form(unroll, steps, in_place, separate)


@functools.partial(jax.custom_vjp, nondiff_argnums=(6,))
def _lstm(w_hh, b_hh, xw, mask, h0, c0, unroll):
    h, c, hs = _lstm_scan(w_hh, b_hh, xw, mask, h0, c0, unroll)
    return _outputs(mask, hs), h, c


def _lstm_fwd(w_hh, b_hh, xw, mask, h0, c0, unroll):
    h, c, hs, cs, acts = _lstm_scan_saving(w_hh, b_hh, xw, mask, h0, c0, unroll)
    return (_outputs(mask, hs), h, c), (w_hh, mask, h0, c0, hs, cs, acts)


def _lstm_bwd(unroll, residuals, cotangents):
    w_hh, mask, h0, c0, hs, cs, acts = residuals
    dys, dh_n, dc_n = cotangents
    w_t = w_hh.T
    steps = acts.shape[0]
    c_prev = _previous(c0, cs)

    def separate():
        def step(carry, inputs):
            dh, dc, dgates = _lstm_step_grad(w_t, *carry, *inputs)
            return (dh, dc), dgates

        inputs = (dys, acts, cs, c_prev, mask)
        (dh0, dc0), dgates = jax.lax.scan(step, (dh_n, dc_n), inputs, reverse=True, unroll=unroll)
        return dh0, dc0, dgates

    def in_place():
        def step(carry, inputs):
            dh, dc, buf, a_t = carry  # buf: activations up to step t, gate gradients after it
            t, dy_t, c_t, c_prev_t, m_t = inputs
            dh, dc, dgates = _lstm_step_grad(w_t, dh, dc, dy_t, a_t, c_t, c_prev_t, m_t)
            buf, a_next = _write_row_read_next(buf, dgates, t, jnp.maximum(t - 1, 0))
            return (dh, dc, buf, a_next), None

        inputs = (jnp.arange(steps), dys, cs, c_prev, mask)
        carry = (dh_n, dc_n, acts, acts[-1])
        (dh0, dc0, dgates, _), _ = jax.lax.scan(step, carry, inputs, reverse=True)
        return dh0, dc0, dgates

    dh0, dc0, dgates = _loop_form(unroll, steps, in_place, separate)
    dw, db = _weight_grads(_previous(h0, hs), dgates)
    return dw, db, dgates, None, dh0, dc0


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_recurrence(
    w_hh: jax.Array,
    b_hh: jax.Array,
    xw: jax.Array,
    mask: jax.Array | None,
    h0: jax.Array,
    c0: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The recurrent part of an LSTM, with a hand-written (cuDNN-style) backward pass.

        i, f, g, o = split(xw_t + h_{t-1} W_hh + b_hh, 4)
        c_t = σ(f) * c_{t-1} + σ(i) * tanh(g);  h_t = σ(o) * tanh(c_t)

    The forward scan saves the gate activations (T, B, 4H), in the buffer of ``xw``, and the
    states h_t, c_t (T, B, H); the backward scan carries only (dh, dc) and writes the gate
    gradients over the activations; ``dW_hh`` is one matmul after it.

    Args:
      w_hh: (H, 4H) recurrent weights.
      b_hh: (4H,) recurrent bias.
      xw: (T, B, 4H) time-major input projection ``x @ w_ih`` (plus ``b_ih``, or fold it in b_hh).
      mask: (T, B, 1) bool, True at valid steps (state held and output zero elsewhere), or None.
      h0, c0: (B, H) initial hidden and cell state.
      unroll: steps per scan iteration, in both passes.

    Returns:
      ``(ys, h_n, c_n)``: ys (T, B, H) outputs; h_n, c_n (B, H) final (held) states.

    References: Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 1997.
    """
    return _lstm(w_hh, b_hh, xw, mask, h0, c0, unroll)


# ---------------------------------------------------------------------------------------------
# GRU, gates (r, z, n); the reset gate multiplies (h W_hn + b_hn)
# ---------------------------------------------------------------------------------------------


def _gru_scan(w_hh, b_hh, xw, mask, h0, unroll, save):
    def step(h, inputs):
        xw_t, m_t = inputs
        x_r, x_z, x_n = jnp.split(xw_t, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(h @ w_hh + b_hh, 3, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * h_n)
        h_new = _hold(m_t, (1.0 - z) * n + z * h, h)
        saved = (h_new, jnp.concatenate([r, z, n, h_n], axis=-1)) if save else h_new
        return h_new, saved

    return jax.lax.scan(step, h0, (xw, mask), unroll=unroll)


@functools.partial(jax.custom_vjp, nondiff_argnums=(5,))
def _gru(w_hh, b_hh, xw, mask, h0, unroll):
    h, hs = _gru_scan(w_hh, b_hh, xw, mask, h0, unroll, save=False)
    return _outputs(mask, hs), h


def _gru_fwd(w_hh, b_hh, xw, mask, h0, unroll):
    h, (hs, acts) = _gru_scan(w_hh, b_hh, xw, mask, h0, unroll, save=True)
    return (_outputs(mask, hs), h), (w_hh, mask, h0, hs, acts)


def _gru_bwd(unroll, residuals, cotangents):
    w_hh, mask, h0, hs, acts = residuals
    dys, dh_n = cotangents
    w_t = w_hh.T
    h_prev = _previous(h0, hs)

    def step(dh, inputs):
        dy_t, a_t, hp_t, m_t = inputs
        r, z, n, h_n = jnp.split(a_t, 4, axis=-1)
        dh_new = _hold(m_t, dh + dy_t, jnp.zeros_like(dh))
        d_n = dh_new * (1.0 - z) * (1.0 - n * n)  # w.r.t. n's pre-activation
        d_r = d_n * h_n * _sigmoid_grad(r)
        d_z = dh_new * (hp_t - n) * _sigmoid_grad(z)
        dxw_t = jnp.concatenate([d_r, d_z, d_n], axis=-1)
        dhw_t = jnp.concatenate([d_r, d_z, d_n * r], axis=-1)  # w.r.t. h W_hh + b_hh
        dh_prev = _hold(m_t, dh_new * z + dhw_t @ w_t, dh)
        return dh_prev, (dxw_t, dhw_t)

    inputs = (dys, acts, h_prev, mask)
    dh0, (dxw, dhw) = jax.lax.scan(step, dh_n, inputs, reverse=True, unroll=unroll)
    dw, db = _weight_grads(h_prev, dhw)
    return dw, db, dxw, None, dh0


_gru.defvjp(_gru_fwd, _gru_bwd)


def gru_recurrence(
    w_hh: jax.Array,
    b_hh: jax.Array,
    xw: jax.Array,
    mask: jax.Array | None,
    h0: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """The recurrent part of a GRU, with a hand-written (cuDNN-style) backward pass.

        r = σ(xw_r + h W_hr + b_hr);  z = σ(xw_z + h W_hz + b_hz)
        n = tanh(xw_n + r * (h W_hn + b_hn));  h' = (1 - z) * n + z * h

    The forward scan saves r, z, n and ``h W_hn + b_hn`` (T, B, 4H) and the states (T, B, H).

    Args:
      w_hh: (H, 3H) recurrent weights.
      b_hh: (3H,) recurrent bias.
      xw: (T, B, 3H) time-major input projection ``x @ w_ih + b_ih``.
      mask: (T, B, 1) bool, True at valid steps (state held and output zero elsewhere), or None.
      h0: (B, H) initial state.
      unroll: steps per scan iteration, in both passes.

    Returns:
      ``(ys, h_n)``: ys (T, B, H) outputs, h_n (B, H) final (held) state.

    References: Cho et al., "Learning phrase representations using RNN encoder-decoder for
      statistical machine translation", EMNLP 2014.
    """
    return _gru(w_hh, b_hh, xw, mask, h0, unroll)


# ---------------------------------------------------------------------------------------------
# Public layers: the same signature as seqclf.ops.simple_rnn / lstm / gru
# ---------------------------------------------------------------------------------------------


def _layer(recurrence, params, xs, lengths, reverse, state, unroll, remat, fold_bias):
    """Shared driver: projection, masking, direction, and the recurrence (optionally remat).

    With ``fold_bias`` (simple RNN, LSTM: both biases add to the same pre-activation) ``b_ih``
    joins ``b_hh`` inside the loop's elementwise kernel instead of costing a pass over the
    (T, B, G*H) projection; the GRU's ``b_in`` sits outside the reset gate, so it cannot.
    """

    def run(params, xs, state):
        steps = xs.shape[1]
        if lengths is not None:
            # As in recurrent.py: padding (even inf or NaN) never meets a weight, so it reaches
            # neither the outputs nor, through 0 * inf, the gradients.
            xs = _zero_padding(xs, lengths)
        if reverse:
            xs = reverse_padded(xs, lengths)
        xw = project_inputs(xs, params["w_ih"])
        if fold_bias:
            bias = params["b_ih"] + params["b_hh"]
        else:
            xw, bias = xw + params["b_ih"], params["b_hh"]
        mask = None if lengths is None else sequence_mask(lengths, steps).T[:, :, None]
        ys, *final = recurrence(params["w_hh"], bias, xw, mask, *state, unroll)
        ys = jnp.swapaxes(ys, 0, 1).astype(xs.dtype)  # back to (B, T, H)
        if reverse:
            ys = reverse_padded(ys, lengths)
        return ys, tuple(final)

    if remat:
        run = jax.checkpoint(run)
    return run(params, xs, tuple(state))


def simple_rnn_fused(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: jax.Array | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``seqclf.ops.simple_rnn`` with the cuDNN-style backward pass of ``rnn_recurrence``.

    Args:
      params: from ``init_params(key, "rnn", F, H)``.
      xs: (B, T, F) inputs, batch-major.
      lengths: (B,) valid lengths; steps past them are padding. None means all T steps are valid.
      reverse: read each sequence backwards from its own last valid step.
      initial_state: (B, H) h_0; zeros when None.
      unroll: steps per scan iteration, forward and backward.
      remat: keep no activations from the forward pass; recompute them in the backward pass
        (``jax.checkpoint``): less memory held between passes, one more forward of compute.

    Returns:
      ``(ys, h_n)``: ys (B, T, H) (zero at padded steps), h_n (B, H) the state after each
      sequence's last valid step.
    """
    _check_inputs("simple_rnn_fused", params, xs, lengths)
    h0 = _zeros(xs, params) if initial_state is None else initial_state
    ys, (h,) = _layer(rnn_recurrence, params, xs, lengths, reverse, (h0,), unroll, remat, True)
    return ys, h


def lstm_fused(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: tuple[jax.Array, jax.Array] | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """``seqclf.ops.lstm`` with the cuDNN-style backward pass of ``lstm_recurrence``.

    Args:
      params: from ``init_params(key, "lstm", F, H)``.
      xs: (B, T, F) inputs, batch-major.
      lengths: (B,) valid lengths; steps past them are padding. None means all T steps are valid.
      reverse: read each sequence backwards from its own last valid step.
      initial_state: ``(h_0, c_0)``, each (B, H); zeros when None.
      unroll: steps per scan iteration, forward and backward.
      remat: keep no activations from the forward pass; recompute them in the backward pass
        (``jax.checkpoint``): less memory held between passes, one more forward of compute.

    Returns:
      ``(ys, (h_n, c_n))``: ys (B, T, H) (zero at padded steps); h_n, c_n (B, H) the states after
      each sequence's last valid step.
    """
    _check_inputs("lstm_fused", params, xs, lengths)
    if initial_state is None:
        initial_state = (_zeros(xs, params), _zeros(xs, params))
    ys, (h, c) = _layer(
        lstm_recurrence, params, xs, lengths, reverse, initial_state, unroll, remat, True
    )
    return ys, (h, c)


def gru_fused(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: jax.Array | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``seqclf.ops.gru`` with the cuDNN-style backward pass of ``gru_recurrence``.

    Args:
      params: from ``init_params(key, "gru", F, H)``.
      xs: (B, T, F) inputs, batch-major.
      lengths: (B,) valid lengths; steps past them are padding. None means all T steps are valid.
      reverse: read each sequence backwards from its own last valid step.
      initial_state: (B, H) h_0; zeros when None.
      unroll: steps per scan iteration, forward and backward.
      remat: keep no activations from the forward pass; recompute them in the backward pass
        (``jax.checkpoint``): less memory held between passes, one more forward of compute.

    Returns:
      ``(ys, h_n)``: ys (B, T, H) (zero at padded steps), h_n (B, H) the state after each
      sequence's last valid step.
    """
    _check_inputs("gru_fused", params, xs, lengths)
    h0 = _zeros(xs, params) if initial_state is None else initial_state
    ys, (h,) = _layer(gru_recurrence, params, xs, lengths, reverse, (h0,), unroll, remat, False)
    return ys, h


FUSED = {"rnn": simple_rnn_fused, "lstm": lstm_fused, "gru": gru_fused}
