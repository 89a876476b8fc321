"""Slow, obviously-correct float64 NumPy references for the ops in ``seqclf.ops``.

Written from the equations and the documented conventions, not from seqclf's code: plain Python
loops over sequences and time steps, one sequence at a time. Every function takes and returns
NumPy arrays and computes in float64.

Conventions (the documented ones in ``seqclf/ops/recurrent.py`` and ``seqclf/ops/conv.py``):

* Recurrences: weights ``w_ih (F, G*H)``, ``w_hh (H, G*H)``, biases ``(G*H,)``; gate order as
  PyTorch (LSTM i, f, g, o; GRU r, z, n, with the reset gate applied to ``W_hn h + b_hn``).
  With ``lengths``, sequence b is ``xs[b, :lengths[b]]`` alone: outputs past its end are zero and
  its final state is the state after its last valid step. ``reverse`` reads it from its last valid
  step back to its first and writes each output at the step it read.
* conv1d: cross-correlation, kernel ``(K, C_in, C_out)``; ``K_eff = dilation * (K - 1) + 1``;
  SAME pads ``(K_eff - 1) // 2`` zeros on the left and the rest on the right, giving
  ``ceil(T / stride)`` outputs; VALID gives ``max(0, (T - K_eff) // stride + 1)``.
* max_pool1d: stride defaults to the size; SAME pads ``(size - 1) // 2`` on the left; padding
  never wins a max. With ``lengths``, sequence b is pooled as ``x[b, :lengths[b]]`` alone and the
  outputs past its own output length are zero.
"""

from __future__ import annotations

import numpy as np


def _f64(a) -> np.ndarray:
    return np.asarray(a, dtype=np.float64)


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def _params64(params: dict) -> dict[str, np.ndarray]:
    return {name: _f64(value) for name, value in params.items()}


def rnn_step(p: dict[str, np.ndarray], h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Elman step for one sequence: x (F,), h (H,) -> (H,)."""
    return np.tanh(x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"])


def lstm_step(
    p: dict[str, np.ndarray], state: tuple[np.ndarray, np.ndarray], x: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """LSTM step for one sequence (PyTorch equations): x (F,), (h, c) each (H,)."""
    h, c = state
    hidden = h.shape[0]
    pre = x @ p["w_ih"] + p["b_ih"] + h @ p["w_hh"] + p["b_hh"]
    i = _sigmoid(pre[0 * hidden : 1 * hidden])
    f = _sigmoid(pre[1 * hidden : 2 * hidden])
    g = np.tanh(pre[2 * hidden : 3 * hidden])
    o = _sigmoid(pre[3 * hidden : 4 * hidden])
    c_new = f * c + i * g
    return o * np.tanh(c_new), c_new


def gru_step(p: dict[str, np.ndarray], h: np.ndarray, x: np.ndarray) -> np.ndarray:
    """GRU step for one sequence (PyTorch equations): x (F,), h (H,) -> (H,)."""
    hidden = h.shape[0]
    gi = x @ p["w_ih"] + p["b_ih"]
    gh = h @ p["w_hh"] + p["b_hh"]
    r = _sigmoid(gi[:hidden] + gh[:hidden])
    z = _sigmoid(gi[hidden : 2 * hidden] + gh[hidden : 2 * hidden])
    n = np.tanh(gi[2 * hidden :] + r * gh[2 * hidden :])
    return (1.0 - z) * n + z * h


_STEPS = {"rnn": rnn_step, "lstm": lstm_step, "gru": gru_step}


def recurrence(
    kind: str,
    params: dict,
    xs,
    lengths=None,
    *,
    reverse: bool = False,
    initial_state=None,
):
    """Reference RNN / LSTM / GRU over a batch, one sequence and one step at a time.

    Args:
      kind: "rnn", "lstm" or "gru".
      params: ``{"w_ih": (F, G*H), "w_hh": (H, G*H), "b_ih": (G*H,), "b_hh": (G*H,)}``.
      xs: (B, T, F).
      lengths: (B,) valid lengths or None (all T valid).
      reverse: read each sequence from its last valid step back to its first.
      initial_state: (B, H), or ``(h0, c0)`` each (B, H) for the LSTM; zeros when None.

    Returns:
      ``(ys, state)``: ys (B, T, H) float64, zero past each sequence's end; state (B, H) or
      ``(h, c)`` for the LSTM, the state after each sequence's last valid step.
    """
    p = _params64(params)
    xs = _f64(xs)
    batch, steps, _ = xs.shape
    hidden = p["w_hh"].shape[0]
    lengths = np.full(batch, steps) if lengths is None else np.asarray(lengths)
    step = _STEPS[kind]
    ys = np.zeros((batch, steps, hidden))
    final_h = np.zeros((batch, hidden))
    final_c = np.zeros((batch, hidden))
    for b in range(batch):
        if initial_state is None:
            h, c = np.zeros(hidden), np.zeros(hidden)
        elif kind == "lstm":
            h, c = _f64(initial_state[0])[b], _f64(initial_state[1])[b]
        else:
            h, c = _f64(initial_state)[b], None
        order = range(int(lengths[b]))
        for t in reversed(order) if reverse else order:
            if kind == "lstm":
                h, c = step(p, (h, c), xs[b, t])
            else:
                h = step(p, h, xs[b, t])
            ys[b, t] = h
        final_h[b] = h
        if kind == "lstm":
            final_c[b] = c
    return ys, ((final_h, final_c) if kind == "lstm" else final_h)


def conv_output_length(length: int, size: int, stride: int, padding: str, dilation: int) -> int:
    """Output length of a window of ``size`` taps over ``length`` steps."""
    effective = dilation * (size - 1) + 1
    if padding == "SAME":
        return -(-length // stride)
    return max(0, (length - effective) // stride + 1)


def conv1d(x, kernel, bias=None, *, stride: int = 1, padding: str = "VALID", dilation: int = 1):
    """Reference 1-D cross-correlation.

    Args:
      x: (B, T, C_in).
      kernel: (K, C_in, C_out).
      bias: (C_out,) or None.
      stride, padding ("VALID"/"SAME"), dilation: see the module docstring.

    Returns:
      (B, T_out, C_out) float64, with ``out[b, o] = bias + sum_k x[b, o*stride - left + k*dilation]
      @ kernel[k]``, taps outside ``[0, T)`` reading zero.
    """
    x, kernel = _f64(x), _f64(kernel)
    batch, steps, _ = x.shape
    size, _, c_out = kernel.shape
    effective = dilation * (size - 1) + 1
    left = (effective - 1) // 2 if padding == "SAME" else 0
    n_out = conv_output_length(steps, size, stride, padding, dilation)
    out = np.zeros((batch, n_out, c_out))
    for b in range(batch):
        for o in range(n_out):
            acc = np.zeros(c_out) if bias is None else _f64(bias).copy()
            for k in range(size):
                t = o * stride - left + k * dilation
                if 0 <= t < steps:
                    acc += x[b, t] @ kernel[k]
            out[b, o] = acc
    return out


def max_pool1d(x, size: int, stride: int | None = None, padding: str = "VALID", *, lengths=None):
    """Reference max pooling over time.

    Args:
      x: (B, T, C).
      size: window length; stride defaults to it.
      padding: "VALID" or "SAME" (``(size - 1) // 2`` on the left).
      lengths: (B,) or None. With lengths, sequence b is pooled as ``x[b, :lengths[b]]`` alone and
        the outputs past its own output length are zero.

    Returns:
      (B, T_out, C) float64, T_out computed from T.
    """
    x = _f64(x)
    stride = size if stride is None else stride
    batch, steps, channels = x.shape
    left = (size - 1) // 2 if padding == "SAME" else 0
    n_out = conv_output_length(steps, size, stride, padding, 1)
    out = np.zeros((batch, n_out, channels))
    for b in range(batch):
        valid = steps if lengths is None else int(lengths[b])
        for o in range(conv_output_length(valid, size, stride, padding, 1)):
            taps = [o * stride - left + k for k in range(size)]
            taps = [t for t in taps if 0 <= t < valid]
            out[b, o] = np.max(x[b, taps], axis=0)
    return out
