"""Forward-only LSTM variants against Flax's nn.RNN(OptimizedLSTMCell), float32, CPU.

python forward_variants.py            # what forward_variants.txt records
python forward_variants.py --unroll   # also ops.lstm with scan unroll 2 and 4 (2026-12-03)
"""

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from rnn_speed import flax_params

from seqclf import ops
from seqclf.ops import fused
from seqclf.ops._driver import matmul, project


def variant(kind):
    def apply(p, xs):  # xs (B, T, F) -> (B, T, H)
        x = jnp.swapaxes(xs, 0, 1)
        b_, h_ = x.shape[1], p["w_hh"].shape[0]
        h0 = jnp.zeros((b_, h_))
        c0 = jnp.zeros((b_, h_))
        b = p["b_ih"] + p["b_hh"]
        if kind == "concat":
            w = jnp.concatenate([p["w_ih"], p["w_hh"]], 0)

            def step(carry, x_t):
                h, c = carry
                acts = fused._lstm_activations(matmul(jnp.concatenate([x_t, h], -1), w) + b)
                h, c = fused._lstm_update(acts, h, c, None)
                return (h, c), h

            _, ys = jax.lax.scan(step, (h0, c0), x)
        elif kind == "two":

            def step(carry, x_t):
                h, c = carry
                acts = fused._lstm_activations(matmul(x_t, p["w_ih"]) + matmul(h, p["w_hh"]) + b)
                h, c = fused._lstm_update(acts, h, c, None)
                return (h, c), h

            _, ys = jax.lax.scan(step, (h0, c0), x)
        elif kind == "proj":
            xw = project(x, p["w_ih"]) + b

            def step(carry, xw_t):
                h, c = carry
                acts = fused._lstm_activations(xw_t + matmul(h, p["w_hh"]))
                h, c = fused._lstm_update(acts, h, c, None)
                return (h, c), h

            _, ys = jax.lax.scan(step, (h0, c0), xw)
        return jnp.swapaxes(ys, 0, 1)

    return apply


shapes = [(32, 100, 64, 128), (64, 256, 128, 256), (64, 512, 256, 512)]
for B, T, F, H in shapes:
    rng = np.random.default_rng(0)
    p = {
        "w_ih": rng.normal(0, 0.1, (F, 4 * H)).astype(np.float32),
        "w_hh": rng.normal(0, 0.1, (H, 4 * H)).astype(np.float32),
        "b_ih": np.zeros(4 * H, np.float32),
        "b_hh": np.zeros(4 * H, np.float32),
    }
    xs = jnp.asarray(rng.normal(size=(B, T, F)).astype(np.float32))
    pj = jax.tree_util.tree_map(jnp.asarray, p)
    fns = {"seqclf ops.lstm": jax.jit(lambda p, x: ops.recurrence("lstm")(p, x)[0])}
    for u in (2, 4) if "--unroll" in sys.argv else ():
        fns[f"ops.lstm unroll {u}"] = jax.jit(lambda p, x, u=u: ops.lstm(p, x, unroll=u)[0])
    for k in ("concat", "two", "proj"):
        fns[k] = jax.jit(variant(k))
    model = nn.RNN(nn.OptimizedLSTMCell(H))
    fp = jax.tree_util.tree_map(jnp.asarray, flax_params("lstm", p))
    fns["flax"] = jax.jit(model.apply)
    args = {k: (fp if k == "flax" else pj) for k in fns}
    ref = np.asarray(fns["flax"](fp, xs))
    for k, f in fns.items():
        out = np.asarray(f(args[k], xs))
        assert np.allclose(out, ref, atol=2e-4), (k, abs(out - ref).max())
    times = {k: [] for k in fns}
    for _ in range(9):
        for k, f in fns.items():
            t = time.perf_counter()
            f(args[k], xs).block_until_ready()
            times[k].append(time.perf_counter() - t)
    fl = np.median(times["flax"])
    print(
        (B, T, F, H),
        "  ".join(
            f"{k} {np.median(v) * 1e3:.1f} ms ({fl / np.median(v):.2f}x)" for k, v in times.items()
        ),
        flush=True,
    )
