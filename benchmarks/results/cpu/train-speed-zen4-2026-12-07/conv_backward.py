"""The S Conv1D (30 x 100 x 128 -> 64, kernel 5, VALID) alone: forward, XLA's backward, its
parts, and a backward written as two plain matmuls over K shifted copies of dy (issue 22, item 1).

    python conv_backward.py

The matmul form: dys (B*T, K*F) holds dy shifted by 0..K-1 steps (zero outside), so that
dx = dys @ W' (one (B*T, K*F) x (K*F, C) matmul) and dW = x^T @ dys (one (C, B*T) x (B*T, K*F)),
with no transposed copy of x. Exact to float32 rounding (printed). Median of 7 blocks of 50 calls.
"""

import statistics
import sys
from pathlib import Path

import jax
import jax.numpy as jnp
from jax import lax

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common  # noqa: E402

B, T, C, F, K = 30, 100, 128, 64, 5
T_OUT = T - K + 1
x = jax.random.normal(jax.random.key(0), (B, T, C))
w = jax.random.normal(jax.random.key(1), (K, C, F)) * 0.1
dy = jax.random.normal(jax.random.key(2), (B, T_OUT, F))


def conv(x, w):
    return lax.conv_general_dilated(x, w, (1,), "VALID", dimension_numbers=("NWC", "WIO", "NWC"))


def shifted(dy):  # (B, T, K, F): dys[:, t, k] = dy[:, t - k]
    padded = jnp.pad(dy, ((0, 0), (K - 1, K - 1), (0, 0)))
    return jnp.stack([padded[:, K - 1 - k : K - 1 - k + T] for k in range(K)], axis=2)


def backward_as_matmuls(x, w, dy):
    dys = shifted(dy).reshape(B * T, K * F)
    dx = (dys @ jnp.transpose(w, (0, 2, 1)).reshape(K * F, C)).reshape(B, T, C)
    dw = lax.dot_general(x.reshape(B * T, C), dys, (((0,), (0,)), ((), ())))
    return dx, dw.reshape(C, K, F).transpose(1, 0, 2)


def xla_backward(x, w, dy):
    return jax.vjp(conv, x, w)[1](dy)


calls = {
    "forward": jax.jit(lambda x, w, dy: conv(x, w)),
    "XLA backward (dx, dW)": jax.jit(xla_backward),
    "XLA forward + backward": jax.jit(lambda x, w, dy: (conv(x, w), xla_backward(x, w, dy))),
    "XLA dx only": jax.jit(lambda x, w, dy: jax.vjp(lambda x: conv(x, w), x)[1](dy)),
    "XLA dW only": jax.jit(lambda x, w, dy: jax.vjp(lambda w: conv(x, w), w)[1](dy)),
    "backward as two matmuls": jax.jit(backward_as_matmuls),
    "the shifted copy alone": jax.jit(lambda x, w, dy: shifted(dy)),
}
ref, alt = calls["XLA backward (dx, dW)"](x, w, dy), backward_as_matmuls(x, w, dy)
print("matmul form against XLA's: max |d dx|", float(jnp.max(jnp.abs(ref[0] - alt[0]))),
      " max |d dW|", float(jnp.max(jnp.abs(ref[1] - alt[1]))))  # fmt: skip
thunks = {name: (lambda call=call: call(x, w, dy)) for name, call in calls.items()}
times = common.block_ms(thunks, 50, 7, jax.block_until_ready)
mflop = 2 * B * T_OUT * K * C * F / 1e6
print(f"one convolution's matmul work: {mflop:.0f} MFLOP (forward; dx and dW the same each)")
for name, t in times.items():
    print(f"{name:26s} {statistics.median(t):6.2f} ms (min {min(t):.2f})")
