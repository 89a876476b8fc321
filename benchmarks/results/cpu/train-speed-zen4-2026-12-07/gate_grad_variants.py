"""Two rewrites of the fused LSTM's backward step, timed against the one in seqclf.ops.fused in
one process (issue 22, items 1 and 2). Neither was kept.

    python gate_grad_variants.py "32,100,64,128;30,24,64,70;64,256,128,256"

- ``one_expression``: the four gate gradients as one elementwise expression over the (B, 4, H)
  view (selects on the block index) instead of a concatenate of four (B, H) pieces;
- ``barrier``: the library's step with ``lax.optimization_barrier`` on (dh_new, dc_tot, tanh c),
  the terms every gate's gradient reads.

Each is patched into ``fused._lstm_step_grad`` before its own jit; forward + backward of
``ops.lstm`` with loss sum(ys^2), 9 interleaved blocks of 20 calls, median ms; "bitwise" compares
every gradient with the library's.
"""

import statistics
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

import seqclf.ops.fused as fused
from seqclf import ops
from seqclf.ops.recurrent import init_params

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common  # noqa: E402

library = fused._lstm_step_grad
_hold, _sigmoid_grad, matmul = fused._hold, fused._sigmoid_grad, fused.matmul


def _shared_terms(dh, dc, dy_t, a_t, c_t, m_t):
    """The library step's first lines: the gates, dh_new, dc_tot and tanh(c_t)."""
    i, f, g, o = jnp.split(a_t, 4, axis=-1)
    dh_new = _hold(m_t, dh + dy_t, jnp.zeros_like(dh))
    dc_new = _hold(m_t, dc, jnp.zeros_like(dc))
    tanh_c = jnp.tanh(c_t)
    dc_tot = dc_new + dh_new * o * (1.0 - tanh_c * tanh_c)
    return (i, f, g, o), dh_new, dc_tot, tanh_c


def one_expression(w_t, dh, dc, dy_t, a_t, c_t, c_prev, m_t):
    (i, f, g, o), dh_new, dc_tot, tanh_c = _shared_terms(dh, dc, dy_t, a_t, c_t, m_t)
    batch, hidden = a_t.shape[0], a_t.shape[-1] // 4
    gates = a_t.reshape(batch, 4, hidden)
    block = jax.lax.broadcasted_iota(jnp.int32, (1, 4, 1), 1)
    partner = jnp.where(
        block == 0,
        g[:, None],
        jnp.where(block == 1, c_prev[:, None], jnp.where(block == 2, i[:, None], tanh_c[:, None])),
    )
    outer = jnp.where(block == 3, dh_new[:, None], dc_tot[:, None])
    slope = jnp.where(block == 2, 1.0 - gates * gates, _sigmoid_grad(gates))
    dgates = (outer * partner * slope).reshape(batch, 4 * hidden)
    return _hold(m_t, matmul(dgates, w_t), dh), _hold(m_t, dc_tot * f, dc), dgates


def barrier(w_t, dh, dc, dy_t, a_t, c_t, c_prev, m_t):
    (i, f, g, o), dh_new, dc_tot, tanh_c = _shared_terms(dh, dc, dy_t, a_t, c_t, m_t)
    dh_new, dc_tot, tanh_c = jax.lax.optimization_barrier((dh_new, dc_tot, tanh_c))
    dgates = jnp.concatenate(
        [
            dc_tot * g * _sigmoid_grad(i),
            dc_tot * c_prev * _sigmoid_grad(f),
            dc_tot * i * (1.0 - g * g),
            dh_new * tanh_c * _sigmoid_grad(o),
        ],
        axis=-1,
    )
    return _hold(m_t, matmul(dgates, w_t), dh), _hold(m_t, dc_tot * f, dc), dgates


for shape in sys.argv[1].split(";"):
    B, T, F, H = map(int, shape.split(","))
    key = jax.random.key(0)
    params = init_params(key, "lstm", F, H)
    xs = jax.random.normal(key, (B, T, F))
    lengths = jnp.full((B,), T)

    def loss(p, xs, lengths=lengths):
        return jnp.sum(ops.lstm(p, xs, lengths)[0] ** 2)

    calls = {}
    for name, step in (("library", library), ("one_expression", one_expression),
                       ("barrier", barrier)):  # fmt: skip
        fused._lstm_step_grad = step
        calls[name] = jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))
        jax.block_until_ready(calls[name](params, xs))
    fused._lstm_step_grad = library
    reference = jax.tree.leaves(calls["library"](params, xs))
    thunks = {n: (lambda c=c, p=params, x=xs: c(p, x)) for n, c in calls.items()}
    times = common.block_ms(thunks, 20, 9, jax.block_until_ready)
    base = statistics.median(times["library"])
    line = f"B{B} T{T} F{F} H{H}: library {base:.2f} ms"
    for name in ("one_expression", "barrier"):
        same = all(
            bool(jnp.array_equal(a, b))
            for a, b in zip(reference, jax.tree.leaves(calls[name](params, xs)), strict=True)
        )
        ms = statistics.median(times[name])
        line += f"; {name} {ms:.2f} ms ({base / ms:.2f}x the speed, bitwise {same})"
    print(line, flush=True)
