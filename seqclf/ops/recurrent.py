"""Simple RNN, LSTM and GRU as pure functions over plain parameter pytrees.

Two implementations of each, with the same signature, weight layout, padding and dtype rules,
as ``jax.experimental.rnn`` has them:

* ``simple_rnn``, ``lstm``, ``gru``: the fast path, a cuDNN-style custom VJP
  (``seqclf.ops.fused``); what the model uses and what users should call.
* ``simple_rnn_reference``, ``lstm_reference``, ``gru_reference``: ``lax.scan`` over the cells
  below, differentiated by JAX. Short and obviously correct; the oracle the tests hold the fast
  path against, and the one to use for forward-mode autodiff (``jax.jvp``, ``jax.jacfwd``,
  Hessians), which a ``custom_vjp`` function does not support (JAX raises for it).

Weight layout (one layer, one direction), batch-major and ready for ``x @ W``:

    w_ih: (input_size, G * hidden)   # PyTorch's weight_ih_l{k}, transposed
    w_hh: (hidden, G * hidden)       # PyTorch's weight_hh_l{k}, transposed
    b_ih: (G * hidden,)
    b_hh: (G * hidden,)

with G = 1 (simple RNN), 4 (LSTM, gates in the order i, f, g, o) or 3 (GRU, gates r, z, n), the
same order as PyTorch and cuDNN, so ``seqclf.interop`` only has to transpose.

Speed comes from the structure cuDNN uses: the input projection ``x @ w_ih`` of every time step is
one large matmul before the scan, and the scan body holds only ``h @ w_hh`` (all gates in one
matmul) and the gate arithmetic. (The fast path without a gradient, for inference, instead
projects each step's input inside the loop and so writes no (T, B, G*H) buffer: see
``seqclf.ops.fused``.)

Padding: with ``lengths``, steps ``t >= lengths[b]`` leave the state unchanged and output zeros,
so the final state is each sequence's state at its own last valid step. ``reverse=True`` reads
each sequence from its own last valid step back to its first, while padding stays at the end.

Dtypes (``seqclf.ops._driver``): the compute dtype is ``xs.dtype``. Every matmul takes operands
in it and accumulates in float32 (float64 under float64); biases, the state (h, c) and the gate
arithmetic are float32 (at least); ``ys`` comes out in ``xs.dtype``, final states in float32 (at
least). So bfloat16 inputs with float32 parameters (master weights) run bfloat16 matmuls with a
float32 state and get float32 parameter gradients. Both implementations follow these rules.

(Longer than ~400 lines for one reason: each of the six public layers spells out its whole
docstring, because the API reference is read from the source without importing it.)
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from seqclf.ops import fused
from seqclf.ops._driver import (
    GATES,
    Params,
    accumulation_dtype,
    check_inputs,
    matmul,
    project,
    run_layer,
    start_state,
)

__all__ = [
    "GATES",
    "Params",
    "final_hidden",
    "gru",
    "gru_cell",
    "gru_reference",
    "init_params",
    "lstm",
    "lstm_cell",
    "lstm_reference",
    "recurrence",
    "recurrent_stack",
    "rnn_cell",
    "simple_rnn",
    "simple_rnn_reference",
]


def init_params(
    key: jax.Array, kind: str, input_size: int, hidden_size: int, dtype: Any = jnp.float32
) -> Params:
    """Parameters of one recurrent layer, initialised like PyTorch: uniform in ±1/√hidden.

    Args:
      key: a PRNG key.
      kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
      input_size: F, the size of each input vector.
      hidden_size: H.
      dtype: parameter dtype.

    Returns:
      ``{"w_ih": (F, G*H), "w_hh": (H, G*H), "b_ih": (G*H,), "b_hh": (G*H,)}``.
    """
    _check_kind(kind)
    if input_size <= 0 or hidden_size <= 0:
        raise ValueError(
            f"input_size and hidden_size must be positive, got {input_size} and {hidden_size}"
        )
    g = GATES[kind] * hidden_size
    bound = 1.0 / float(hidden_size) ** 0.5
    shapes = {"w_ih": (input_size, g), "w_hh": (hidden_size, g), "b_ih": (g,), "b_hh": (g,)}
    keys = jax.random.split(key, len(shapes))
    return {
        name: jax.random.uniform(k, shape, dtype, -bound, bound)
        for k, (name, shape) in zip(keys, shapes.items(), strict=True)
    }


def _check_kind(kind: str) -> None:
    if kind not in GATES:
        raise ValueError(f"kind must be one of {sorted(GATES)}, got {kind!r}")


# ---------------------------------------------------------------------------------------------
# Cells: one time step each, the equations. `xw` is the input projection x @ w_ih + b_ih;
# `matmul(h, w)` is `h @ w` under the dtype rules (operands in w's dtype, float32 accumulation).
# ---------------------------------------------------------------------------------------------


def rnn_cell(params: Params, h: jax.Array, xw: jax.Array) -> jax.Array:
    """Elman RNN step: h' = tanh(x W_ih + b_ih + h W_hh + b_hh).

    Args:
      params: layer parameters (see module docstring), G = 1.
      h: (B, H) previous hidden state.
      xw: (B, H) input projection ``x @ w_ih + b_ih`` of this step.

    Returns:
      (B, H) new hidden state.

    References: Elman, "Finding structure in time", Cognitive Science 1990.
    """
    return jnp.tanh(xw + matmul(h, params["w_hh"]) + params["b_hh"])


def lstm_cell(
    params: Params, state: tuple[jax.Array, jax.Array], xw: jax.Array
) -> tuple[jax.Array, jax.Array]:
    """LSTM step, PyTorch/cuDNN gate order (i, f, g, o).

        i, f, g, o = split(x W_ih + b_ih + h W_hh + b_hh, 4)
        c' = σ(f) * c + σ(i) * tanh(g)
        h' = σ(o) * tanh(c')

    Args:
      params: layer parameters, G = 4.
      state: ``(h, c)``, each (B, H): hidden state and cell state.
      xw: (B, 4H) input projection ``x @ w_ih + b_ih`` of this step.

    Returns:
      ``(h', c')``, each (B, H).

    References: Hochreiter & Schmidhuber, "Long short-term memory", Neural Computation 1997;
      the forget gate from Gers, Schmidhuber & Cummins 2000.
    """
    h, c = state
    i, f, g, o = jnp.split(xw + matmul(h, params["w_hh"]) + params["b_hh"], 4, axis=-1)
    c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
    h = jax.nn.sigmoid(o) * jnp.tanh(c)
    return h, c


def gru_cell(params: Params, h: jax.Array, xw: jax.Array) -> jax.Array:
    """GRU step, PyTorch/cuDNN gate order (r, z, n); the reset gate multiplies (W_hn h + b_hn).

        r = σ(x W_ir + b_ir + h W_hr + b_hr)
        z = σ(x W_iz + b_iz + h W_hz + b_hz)
        n = tanh(x W_in + b_in + r * (h W_hn + b_hn))
        h' = (1 - z) * n + z * h

    Args:
      params: layer parameters, G = 3.
      h: (B, H) previous hidden state.
      xw: (B, 3H) input projection ``x @ w_ih + b_ih`` of this step.

    Returns:
      (B, H) new hidden state.

    References: Cho et al., "Learning phrase representations using RNN encoder-decoder for
      statistical machine translation", EMNLP 2014.
    """
    x_r, x_z, x_n = jnp.split(xw, 3, axis=-1)
    h_r, h_z, h_n = jnp.split(matmul(h, params["w_hh"]) + params["b_hh"], 3, axis=-1)
    r = jax.nn.sigmoid(x_r + h_r)
    z = jax.nn.sigmoid(x_z + h_z)
    n = jnp.tanh(x_n + r * h_n)
    return (1.0 - z) * n + z * h


_CELLS = {"rnn": rnn_cell, "lstm": lstm_cell, "gru": gru_cell}


# ---------------------------------------------------------------------------------------------
# The two time-major recurrences the driver (seqclf.ops._driver.run_layer) runs
# ---------------------------------------------------------------------------------------------


def _reference_recurrence(kind: str):
    """``lax.scan`` of the cell over time-major inputs, differentiated by JAX."""
    cell = _CELLS[kind]

    def recurrence(params, xs, mask, state, unroll):
        d, c = xs.dtype, accumulation_dtype(xs.dtype)
        weights = {"w_hh": params["w_hh"].astype(d), "b_hh": params["b_hh"].astype(c)}
        xw = project(xs, params["w_ih"]) + params["b_ih"].astype(c)  # (T, B, G*H)
        carry = state if kind == "lstm" else state[0]

        def step(carry, inputs):
            xw_t, m_t = inputs
            new = cell(weights, carry, xw_t)
            y = final_hidden(kind, new)
            if m_t is not None:  # past a sequence's end its state is held, its output zero
                new = jax.tree_util.tree_map(lambda n, o: jnp.where(m_t, n, o), new, carry)
                y = jnp.where(m_t, y, 0.0)
            return new, y

        final, ys = jax.lax.scan(step, carry, (xw, mask), unroll=unroll)
        # ys leave the loop in float32 and are cast once: XLA:CPU would convert a whole
        # bfloat16 output buffer at every step (seqclf.ops.fused, _low_precision_outputs).
        return ys.astype(d), final if kind == "lstm" else (final,)

    return recurrence


_FAST = {"rnn": fused.rnn_recurrence, "lstm": fused.lstm_recurrence, "gru": fused.gru_recurrence}


def _fast_recurrence(kind: str):
    """The custom-VJP recurrence of ``seqclf.ops.fused``, in the driver's calling convention."""
    run = _FAST[kind]

    def recurrence(p, xs, mask, state, unroll):
        ys, *final = run(p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], xs, mask, *state, unroll)
        return ys, tuple(final)

    return recurrence


def _layer(kind, reference, params, xs, lengths, reverse, initial_state, unroll, remat):
    name = {"rnn": "simple_rnn", "lstm": "lstm", "gru": "gru"}[kind]
    check_inputs(name + ("_reference" if reference else ""), params, xs, lengths)
    state = start_state(xs, params, initial_state, 2 if kind == "lstm" else 1)
    recurrence = (_reference_recurrence if reference else _fast_recurrence)(kind)
    ys, final = run_layer(
        recurrence, params, xs, lengths, state, reverse=reverse, unroll=unroll, remat=remat
    )
    return ys, final if kind == "lstm" else final[0]


# ---------------------------------------------------------------------------------------------
# Public layers
# ---------------------------------------------------------------------------------------------


def simple_rnn(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: jax.Array | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Run a simple (tanh) RNN over a batch of sequences: ``rnn_cell`` at every step, the
    fast path: a cuDNN-style custom VJP (``seqclf.ops.fused.rnn_recurrence``).

    Args:
      params: from ``init_params(key, "rnn", F, H)``.
      xs: (B, T, F) inputs, batch-major; their dtype is the compute dtype.
      lengths: (B,) valid lengths; steps past them are padding. None means all T steps are valid.
      reverse: read each sequence backwards from its own last valid step.
      initial_state: (B, H) h_0; zeros when None.
      unroll: steps per scan iteration (``lax.scan``'s ``unroll``), in every pass.
      remat: keep nothing between the forward and the backward pass; recompute the forward in
        the backward (``jax.checkpoint``): less memory, one more forward of compute.

    Returns:
      ``(ys, h_n)``: ys (B, T, H) the hidden state at every step (zero at padded steps),
      h_n (B, H) the state after each sequence's last valid step.
    """
    return _layer("rnn", False, params, xs, lengths, reverse, initial_state, unroll, remat)


def lstm(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: tuple[jax.Array, jax.Array] | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """Run an LSTM over a batch of sequences: ``lstm_cell`` at every step, the fast path: a
    cuDNN-style custom VJP (``seqclf.ops.fused.lstm_recurrence``).

    Args:
      params: from ``init_params(key, "lstm", F, H)``.
      xs: (B, T, F) inputs, batch-major; their dtype is the compute dtype.
      lengths: (B,) valid lengths; steps past them are padding. None means all T steps are valid.
      reverse: read each sequence backwards from its own last valid step.
      initial_state: ``(h_0, c_0)``, each (B, H); zeros when None.
      unroll: steps per scan iteration (``lax.scan``'s ``unroll``), in every pass.
      remat: keep nothing between the forward and the backward pass; recompute the forward in
        the backward (``jax.checkpoint``): less memory, one more forward of compute.

    Returns:
      ``(ys, (h_n, c_n))``: ys (B, T, H) the hidden state h_t at every step (zero at padded
      steps); h_n and c_n (B, H) the hidden and cell state after each sequence's last valid step.
    """
    return _layer("lstm", False, params, xs, lengths, reverse, initial_state, unroll, remat)


def gru(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: jax.Array | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """Run a GRU over a batch of sequences: ``gru_cell`` at every step, the fast path: a
    cuDNN-style custom VJP (``seqclf.ops.fused.gru_recurrence``).

    Args:
      params: from ``init_params(key, "gru", F, H)``.
      xs: (B, T, F) inputs, batch-major; their dtype is the compute dtype.
      lengths: (B,) valid lengths; steps past them are padding. None means all T steps are valid.
      reverse: read each sequence backwards from its own last valid step.
      initial_state: (B, H) h_0; zeros when None.
      unroll: steps per scan iteration (``lax.scan``'s ``unroll``), in every pass.
      remat: keep nothing between the forward and the backward pass; recompute the forward in
        the backward (``jax.checkpoint``): less memory, one more forward of compute.

    Returns:
      ``(ys, h_n)``: ys (B, T, H) the hidden state at every step (zero at padded steps),
      h_n (B, H) the state after each sequence's last valid step.
    """
    return _layer("gru", False, params, xs, lengths, reverse, initial_state, unroll, remat)


def simple_rnn_reference(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: jax.Array | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``simple_rnn`` as a plain ``lax.scan`` of ``rnn_cell``, differentiated by JAX: the same
    arguments, results (within float rounding) and dtype rules; slower to train."""
    return _layer("rnn", True, params, xs, lengths, reverse, initial_state, unroll, remat)


def lstm_reference(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: tuple[jax.Array, jax.Array] | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    """``lstm`` as a plain ``lax.scan`` of ``lstm_cell``, differentiated by JAX: the same
    arguments, results (within float rounding) and dtype rules; slower to train."""
    return _layer("lstm", True, params, xs, lengths, reverse, initial_state, unroll, remat)


def gru_reference(
    params: Params,
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    reverse: bool = False,
    initial_state: jax.Array | None = None,
    unroll: int = 1,
    remat: bool = False,
) -> tuple[jax.Array, jax.Array]:
    """``gru`` as a plain ``lax.scan`` of ``gru_cell``, differentiated by JAX: the same
    arguments, results (within float rounding) and dtype rules; slower to train."""
    return _layer("gru", True, params, xs, lengths, reverse, initial_state, unroll, remat)


_LAYERS = {
    (False, "rnn"): simple_rnn,
    (False, "lstm"): lstm,
    (False, "gru"): gru,
    (True, "rnn"): simple_rnn_reference,
    (True, "lstm"): lstm_reference,
    (True, "gru"): gru_reference,
}


def recurrence(kind: str, *, reference: bool = False):
    """The layer function for ``kind`` (``"rnn"``, ``"lstm"`` or ``"gru"``): ``simple_rnn``,
    ``lstm`` or ``gru``, or with ``reference=True`` their ``*_reference`` twins."""
    _check_kind(kind)
    return _LAYERS[(bool(reference), kind)]


def final_hidden(kind: str, state: Any) -> jax.Array:
    """The (B, H) hidden state h_n out of a recurrence's final state (the LSTM's is ``(h, c)``)."""
    return state[0] if kind == "lstm" else state


def recurrent_stack(
    kind: str,
    layers: list[Params] | list[tuple[Params, Params]],
    xs: jax.Array,
    lengths: jax.Array | None = None,
    *,
    bidirectional: bool = False,
    unroll: int = 1,
    reference: bool = False,
    remat: bool = False,
) -> tuple[jax.Array, list[Any]]:
    """Stacked, optionally bidirectional, recurrent layers; each layer feeds the next.

    Args:
      kind: ``"rnn"``, ``"lstm"`` or ``"gru"``.
      layers: one params dict per layer, or a ``(forward, backward)`` pair per layer when
        ``bidirectional``. Layer k > 0 takes ``H`` (or ``2H`` bidirectional) input features.
      xs: (B, T, F) inputs.
      lengths: (B,) valid lengths or None.
      bidirectional: run each layer both ways and concatenate the outputs on the feature axis.
      unroll: passed to every scan.
      reference: use the ``*_reference`` scans (plain autodiff) instead of the fast path.
      remat: passed to every layer (``jax.checkpoint``).

    Returns:
      ``(ys, states)``: ys (B, T, H) or (B, T, 2H) the last layer's outputs; states, per layer,
      the final state (a ``(forward, backward)`` pair per layer when bidirectional).
    """
    run = recurrence(kind, reference=reference)
    states = []
    for layer in layers:
        if bidirectional:
            fwd, bwd = layer
            ys_f, s_f = run(fwd, xs, lengths, unroll=unroll, remat=remat)
            ys_b, s_b = run(bwd, xs, lengths, reverse=True, unroll=unroll, remat=remat)
            xs = jnp.concatenate([ys_f, ys_b], axis=-1)
            states.append((s_f, s_b))
        else:
            xs, s = run(layer, xs, lengths, unroll=unroll, remat=remat)
            states.append(s)
    return xs, states
