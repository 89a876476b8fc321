"""The fast recurrences behind ``seqclf.ops.lstm`` / ``gru`` / ``simple_rnn``: time-major loops
with a cuDNN-style hand-written backward pass (``jax.custom_vjp``).

The layer functions (``seqclf.ops.lstm`` ...) live in ``seqclf.ops.recurrent``, beside their
plain autodiff references (``lstm_reference`` ...); this module holds the time-major part they
call, with the input projection inside:

    rnn_recurrence(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll=1) -> (ys, h_n)
    lstm_recurrence(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, c0, unroll=1) -> (ys, h_n, c_n)
    gru_recurrence(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll=1) -> (ys, h_n)

Three paths, one per use:

* **forward only** (no gradient asked: the custom VJP's primal function, what inference runs):
  one scan whose step computes its own input projection, ``[x_t, h] @ [W_ih; W_hh]`` (the GRU:
  ``x_t @ W_ih`` and ``h @ W_hh``), and emits the masked outputs. Nothing is saved, and no
  (T, B, G*H) buffer is written or read.
* **forward for the gradient** (``jax.grad``, ``jax.vjp``): the input projection of every step is
  one large matmul before the loop, and the loop saves what the backward needs (gate
  activations, states).
* **backward**: one reverse scan whose carry is only the data gradient ``(dh, dc)`` and whose
  body has one small matmul ``dgates_t @ w_hh.T``; after it, ``dW_hh = H_prev^T @ dgates``,
  ``dW_ih = X^T @ dgates`` and ``dx = dgates @ W_ih^T`` are one large matmul each, and
  ``db = sum(dgates)``. Autodiff of ``lax.scan`` would do four small matmuls per step instead.

Dtypes follow ``seqclf.ops._driver``'s rules: D = ``xs.dtype`` for every matmul operand, float32
(at least) accumulation, state, biases and gate arithmetic, outputs in D, gradients in each
argument's dtype. So bfloat16 inputs with float32 master weights run bfloat16 matmuls with
float32 accumulation, forward and backward, and return float32 weight gradients.

Not supported here: forward-mode autodiff (``jax.jvp``, ``jax.jacfwd``, Hessians) of a
``custom_vjp`` function; JAX raises for it. Use the ``*_reference`` functions for that.

The arbitrary-mask contract: ``mask`` (T, B, 1) bool, True at valid steps; where False the state
is held and the output is zero (a prefix mask is what lengths give; any mask works).

References: Appleyard, Kocisky & Blunsom, "Optimizing performance of recurrent neural networks
on GPUs", arXiv:1604.01946, 2016 (the structure cuDNN's RNN kernels use).

(Longer than ~400 lines for one reason: each recurrence keeps its three paths and its
hand-written derivative together, so a reader checks the backward against the forward it
differentiates without leaving the page. The CPU's loop trick lives in ``_cpu_loops``.)
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from seqclf.ops import _cpu_loops
from seqclf.ops._driver import matmul, project

# ---------------------------------------------------------------------------------------------
# Helpers shared by the three recurrences
# ---------------------------------------------------------------------------------------------


def _hold(mask: jax.Array | None, new: jax.Array, old: jax.Array) -> jax.Array:
    """``new`` where the step is valid, ``old`` (the held state) where it is padding."""
    return new if mask is None else jnp.where(mask, new, old)


def _outputs(mask: jax.Array | None, hs: jax.Array) -> jax.Array:
    """Outputs from held states: the state where valid, zero at padding."""
    return hs if mask is None else jnp.where(mask, hs, jnp.zeros((), hs.dtype))


def _previous(h0: jax.Array, hs: jax.Array) -> jax.Array:
    """(T, B, H) the state entering each step: ``h0`` then ``hs[:-1]``."""
    return jnp.concatenate([h0[None], hs[:-1]], axis=0)[: hs.shape[0]]  # T = 0 stays empty


def _flat(a: jax.Array) -> jax.Array:
    return a.reshape(-1, a.shape[-1])


def _weight_grad(inputs: jax.Array, grads: jax.Array, dtype) -> jax.Array:
    """``inputs^T @ grads`` over every step: one (N, T*B) x (T*B, M) matmul, D operands."""
    return matmul(_flat(inputs).T, _flat(grads).astype(dtype))


def _input_grad(grads: jax.Array, w: jax.Array) -> jax.Array:
    """``grads @ w^T``: (T, B, M) -> (T, B, N), D operands (``w``'s dtype)."""
    return matmul(_flat(grads), w.T).reshape(*grads.shape[:2], w.shape[0])


# _low_precision_outputs: the loops read and write their (T, B, ...) arrays in float32 and cast
# them to bfloat16 outside, in one pass. XLA:CPU has no bfloat16 dynamic-update-slice: a loop
# stacking bfloat16 outputs converts the whole (T, B, H) buffer to float32 and back at every
# step (T passes over it instead of one; seen in the compiled HLO).


def _sigmoid_grad(s: jax.Array) -> jax.Array:
    return s * (1.0 - s)


def _like(grads: tuple, primals: tuple) -> tuple:
    """Each gradient in its primal's dtype (None stays None: the mask)."""
    return tuple(
        None if g is None else g.astype(p.dtype) for g, p in zip(grads, primals, strict=True)
    )


# ---------------------------------------------------------------------------------------------
# Simple RNN: h' = tanh(x W_ih + b_ih + h W_hh + b_hh)
# ---------------------------------------------------------------------------------------------


@functools.partial(jax.custom_vjp, nondiff_argnums=(7,))
def _rnn(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll):
    """Forward only: one matmul ``[x_t, h] @ [W_ih; W_hh]`` per step, outputs only."""
    d = xs.dtype
    w = jnp.concatenate([w_ih, w_hh], axis=0).astype(d)
    b = b_ih + b_hh

    def step(h, inputs):
        x_t, m_t = inputs
        new = jnp.tanh(matmul(jnp.concatenate([x_t, h.astype(d)], axis=-1), w) + b)
        return _hold(m_t, new, h), _outputs(m_t, new)

    h, ys = jax.lax.scan(step, h0, (xs, mask), unroll=unroll)
    return ys.astype(d), h  # (cast after the loop: see _low_precision_outputs)


def _rnn_fwd(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll):
    w_d = w_hh.astype(xs.dtype)

    def step(h, inputs):
        xw_t, m_t = inputs
        h = _hold(m_t, jnp.tanh(xw_t + matmul(h, w_d)), h)
        return h, h

    xw = project(xs, w_ih) + (b_ih + b_hh)
    h, hs = jax.lax.scan(step, h0, (xw, mask), unroll=unroll)
    residuals = (w_ih, w_hh, b_ih, b_hh, xs, mask, h0, hs)
    return (_outputs(mask, hs).astype(xs.dtype), h), residuals


def _rnn_bwd(unroll, residuals, cotangents):
    w_ih, w_hh, b_ih, b_hh, xs, mask, h0, hs = residuals
    dys, dh_n = cotangents
    d = xs.dtype
    dys = dys.astype(dh_n.dtype)  # C before the loop (see _low_precision_outputs)
    w_t = w_hh.astype(d).T

    def step(dh, inputs):
        dy_t, h_t, m_t = inputs  # h_t: the new state, where the step is valid
        dh_new = _hold(m_t, dh + dy_t, jnp.zeros_like(dh))
        dpre = dh_new * (1.0 - h_t * h_t)
        return _hold(m_t, matmul(dpre, w_t), dh), dpre

    dh0, dpre = jax.lax.scan(step, dh_n, (dys, hs, mask), reverse=True, unroll=unroll)
    db = jnp.sum(dpre, axis=(0, 1))
    grads = (
        _weight_grad(xs, dpre, d),
        _weight_grad(_previous(h0, hs), dpre, d),
        db,
        db,
        _input_grad(dpre, w_ih.astype(d)),
        None,
        dh0,
    )
    return _like(grads, (w_ih, w_hh, b_ih, b_hh, xs, mask, h0))


_rnn.defvjp(_rnn_fwd, _rnn_bwd)


def rnn_recurrence(
    w_ih: jax.Array,
    w_hh: jax.Array,
    b_ih: jax.Array,
    b_hh: jax.Array,
    xs: jax.Array,
    mask: jax.Array | None,
    h0: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """A simple RNN over time-major inputs, with a hand-written backward pass.

    Args:
      w_ih, w_hh: (F, H), (H, H) weights; b_ih, b_hh: (H,) biases.
      xs: (T, B, F) time-major inputs, compute dtype D.
      mask: (T, B, 1) bool, True at valid steps (state held and output zero elsewhere), or None.
      h0: (B, H) initial state, float32 (at least).
      unroll: steps per scan iteration, in every pass.

    Returns:
      ``(ys, h_n)``: ys (T, B, H) in D, h_n (B, H) the final (held) state.
    """
    return _rnn(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll)


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


def _lstm_update(acts, h, c, m_t):
    """The state update from the gate activations: ``(h_new, c_new)``, held at padding."""
    i, f, g, o = jnp.split(acts, 4, axis=-1)
    c_new = _hold(m_t, f * c + i * g, c)
    return _hold(m_t, o * jnp.tanh(c_new), h), c_new


def _lstm_step(w_hh, b, h, c, xw_t, m_t):
    """One forward step from the projection xw_t: ``(h_new, c_new, acts)``; w_hh in D."""
    acts = _lstm_activations(xw_t + matmul(h, w_hh) + b)
    return *_lstm_update(acts, h, c, m_t), acts


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
    dh_prev = _hold(m_t, matmul(dgates, w_t), dh)
    dc_prev = _hold(m_t, dc_tot * f, dc)
    return dh_prev, dc_prev, dgates


@functools.partial(jax.custom_vjp, nondiff_argnums=(8,))
def _lstm(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, c0, unroll):
    """Forward only: one matmul ``[x_t, h] @ [W_ih; W_hh]`` per step, outputs only."""
    d = xs.dtype
    w = jnp.concatenate([w_ih, w_hh], axis=0).astype(d)
    b = b_ih + b_hh

    def step(carry, inputs):
        h, c = carry
        x_t, m_t = inputs
        acts = _lstm_activations(matmul(jnp.concatenate([x_t, h.astype(d)], axis=-1), w) + b)
        h, c = _lstm_update(acts, h, c, m_t)
        return (h, c), _outputs(m_t, h)

    (h, c), ys = jax.lax.scan(step, (h0, c0), (xs, mask), unroll=unroll)
    return ys.astype(d), h, c  # (cast after the loop: see _low_precision_outputs)


def _lstm_fwd(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, c0, unroll):
    step = functools.partial(_lstm_step, w_hh.astype(xs.dtype), b_ih + b_hh)
    xw = project(xs, w_ih)  # (T, B, 4H), C; the biases join inside the loop's kernel
    h, c, hs, cs, acts = _cpu_loops.forward_saving(step, xw, mask, h0, c0, unroll)
    residuals = (w_ih, w_hh, b_ih, b_hh, xs, mask, h0, c0, hs, cs, acts)
    return (_outputs(mask, hs).astype(xs.dtype), h, c), residuals


def _lstm_bwd(unroll, residuals, cotangents):
    w_ih, w_hh, b_ih, b_hh, xs, mask, h0, c0, hs, cs, acts = residuals
    dys, dh_n, dc_n = cotangents
    d = xs.dtype
    dys = dys.astype(dh_n.dtype)  # C before the loop (see _low_precision_outputs)
    step = functools.partial(_lstm_step_grad, w_hh.astype(d).T)
    inputs = (dys, cs, _previous(c0, cs), mask)
    dh0, dc0, dgates = _cpu_loops.backward(step, dh_n, dc_n, acts, inputs, unroll)
    db = jnp.sum(dgates, axis=(0, 1))
    grads = (
        _weight_grad(xs, dgates, d),
        _weight_grad(_previous(h0, hs), dgates, d),
        db,
        db,
        _input_grad(dgates, w_ih.astype(d)),
        None,
        dh0,
        dc0,
    )
    return _like(grads, (w_ih, w_hh, b_ih, b_hh, xs, mask, h0, c0))


_lstm.defvjp(_lstm_fwd, _lstm_bwd)


def lstm_recurrence(
    w_ih: jax.Array,
    w_hh: jax.Array,
    b_ih: jax.Array,
    b_hh: jax.Array,
    xs: jax.Array,
    mask: jax.Array | None,
    h0: jax.Array,
    c0: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array, jax.Array]:
    """An LSTM over time-major inputs, with a hand-written (cuDNN-style) backward pass.

        i, f, g, o = split(x_t W_ih + b_ih + h_{t-1} W_hh + b_hh, 4)
        c_t = σ(f) * c_{t-1} + σ(i) * tanh(g);  h_t = σ(o) * tanh(c_t)

    For the gradient, the forward scan saves the gate activations (T, B, 4H) and the states
    h_t, c_t (T, B, H); the backward scan carries only (dh, dc) and writes the gate gradients
    (on the CPU over the activations, in one shared buffer: ``seqclf.ops._cpu_loops``).

    Args:
      w_ih, w_hh: (F, 4H), (H, 4H) weights; b_ih, b_hh: (4H,) biases.
      xs: (T, B, F) time-major inputs, compute dtype D.
      mask: (T, B, 1) bool, True at valid steps (state held and output zero elsewhere), or None.
      h0, c0: (B, H) initial hidden and cell state, float32 (at least).
      unroll: steps per scan iteration, in every pass.

    Returns:
      ``(ys, h_n, c_n)``: ys (T, B, H) in D; h_n, c_n (B, H) the final (held) states.

    References: Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 1997.
    """
    return _lstm(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, c0, unroll)


# ---------------------------------------------------------------------------------------------
# GRU, gates (r, z, n); the reset gate multiplies (h W_hn + b_hn)
# ---------------------------------------------------------------------------------------------


def _gru_gates(xw_t, hw_t, h, m_t):
    """``(h_new, r, z, n)`` from ``x W_ih + b_ih`` and ``h W_hh + b_hh`` (each (B, 3H))."""
    x_r, x_z, x_n = jnp.split(xw_t, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(hw_t, 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return _hold(m_t, (1.0 - z) * n + z * h, h), r, z, n


@functools.partial(jax.custom_vjp, nondiff_argnums=(7,))
def _gru(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll):
    """Forward only: ``x_t @ W_ih`` and ``h @ W_hh`` per step, outputs only."""
    d = xs.dtype
    w_i, w_h = w_ih.astype(d), w_hh.astype(d)

    def step(h, inputs):
        x_t, m_t = inputs
        h, *_ = _gru_gates(matmul(x_t, w_i) + b_ih, matmul(h, w_h) + b_hh, h, m_t)
        return h, _outputs(m_t, h)

    h, ys = jax.lax.scan(step, h0, (xs, mask), unroll=unroll)
    return ys.astype(d), h  # (cast after the loop: see _low_precision_outputs)


def _gru_fwd(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll):
    w_d = w_hh.astype(xs.dtype)

    def step(h, inputs):
        xw_t, m_t = inputs
        hw_t = matmul(h, w_d) + b_hh
        h, r, z, n = _gru_gates(xw_t, hw_t, h, m_t)
        _, _, h_n = jnp.split(hw_t, 3, axis=-1)
        return h, (h, jnp.concatenate([r, z, n, h_n], axis=-1))

    xw = project(xs, w_ih) + b_ih
    h, (hs, acts) = jax.lax.scan(step, h0, (xw, mask), unroll=unroll)
    residuals = (w_ih, w_hh, b_ih, b_hh, xs, mask, h0, hs, acts)
    return (_outputs(mask, hs).astype(xs.dtype), h), residuals


def _gru_bwd(unroll, residuals, cotangents):
    w_ih, w_hh, b_ih, b_hh, xs, mask, h0, hs, acts = residuals
    dys, dh_n = cotangents
    d = xs.dtype
    dys = dys.astype(dh_n.dtype)  # C before the loop (see _low_precision_outputs)
    w_t = w_hh.astype(d).T
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
        dh_prev = _hold(m_t, dh_new * z + matmul(dhw_t, w_t), dh)
        return dh_prev, (dxw_t, dhw_t)

    inputs = (dys, acts, h_prev, mask)
    dh0, (dxw, dhw) = jax.lax.scan(step, dh_n, inputs, reverse=True, unroll=unroll)
    grads = (
        _weight_grad(xs, dxw, d),
        _weight_grad(h_prev, dhw, d),
        jnp.sum(dxw, axis=(0, 1)),
        jnp.sum(dhw, axis=(0, 1)),
        _input_grad(dxw, w_ih.astype(d)),
        None,
        dh0,
    )
    return _like(grads, (w_ih, w_hh, b_ih, b_hh, xs, mask, h0))


_gru.defvjp(_gru_fwd, _gru_bwd)


def gru_recurrence(
    w_ih: jax.Array,
    w_hh: jax.Array,
    b_ih: jax.Array,
    b_hh: jax.Array,
    xs: jax.Array,
    mask: jax.Array | None,
    h0: jax.Array,
    unroll: int = 1,
) -> tuple[jax.Array, jax.Array]:
    """A GRU over time-major inputs, with a hand-written (cuDNN-style) backward pass.

        r = σ(x W_ir + b_ir + h W_hr + b_hr);  z = σ(x W_iz + b_iz + h W_hz + b_hz)
        n = tanh(x W_in + b_in + r * (h W_hn + b_hn));  h' = (1 - z) * n + z * h

    For the gradient, the forward scan saves r, z, n and ``h W_hn + b_hn`` (T, B, 4H) and the
    states (T, B, H).

    Args:
      w_ih, w_hh: (F, 3H), (H, 3H) weights; b_ih, b_hh: (3H,) biases.
      xs: (T, B, F) time-major inputs, compute dtype D.
      mask: (T, B, 1) bool, True at valid steps (state held and output zero elsewhere), or None.
      h0: (B, H) initial state, float32 (at least).
      unroll: steps per scan iteration, in every pass.

    Returns:
      ``(ys, h_n)``: ys (T, B, H) in D, h_n (B, H) the final (held) state.

    References: Cho et al., "Learning phrase representations using RNN encoder-decoder for
      statistical machine translation", EMNLP 2014.
    """
    return _gru(w_ih, w_hh, b_ih, b_hh, xs, mask, h0, unroll)
