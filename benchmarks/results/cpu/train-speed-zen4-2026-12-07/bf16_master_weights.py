"""One LSTM layer's forward + backward at B 32, T 100, F 64, H 128: bfloat16 against float32, with
bfloat16 parameters (as ``rnn_speed.py --targets`` runs it) and with float32 master weights (as
the classifier's ``dtype="bfloat16"`` does), lengths given or not; all six interleaved, 9 blocks
of 20 calls, median ms (issue 22, item 2).

    python bf16_master_weights.py
"""

import statistics
import sys
from pathlib import Path

import jax
import jax.numpy as jnp

from seqclf import ops
from seqclf.ops.recurrent import init_params

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import common  # noqa: E402

B, T, F, H = 32, 100, 64, 128
key = jax.random.key(0)
params32 = init_params(key, "lstm", F, H)
xs32 = jax.random.normal(key, (B, T, F))
full_lengths = jnp.full((B,), T)


def case(dtype, params_dtype, lengths):
    params = jax.tree.map(lambda a: a.astype(params_dtype), params32)
    xs = xs32.astype(dtype)

    def loss(p, x):
        return jnp.sum(ops.lstm(p, x, lengths)[0].astype(jnp.float32))

    grad = jax.jit(jax.grad(loss, (0, 1)))
    return lambda: grad(params, xs)


forms = {"float32": (jnp.float32, jnp.float32), "bf16, bf16 params": (jnp.bfloat16, jnp.bfloat16),
         "bf16, f32 master weights": (jnp.bfloat16, jnp.float32)}  # fmt: skip
calls = {}
for given in (False, True):
    for name, (dtype, params_dtype) in forms.items():
        calls[(given, name)] = case(dtype, params_dtype, full_lengths if given else None)
times = common.block_ms(calls, 20, 9, jax.block_until_ready)
for given in (False, True):
    base = statistics.median(times[(given, "float32")])
    line = f"lengths {'given' if given else 'None '}: float32 {base:.2f} ms"
    for name in list(forms)[1:]:
        ms = statistics.median(times[(given, name)])
        line += f"; {name} {ms:.2f} ms ({base / ms:.2f}x float32's speed)"
    print(line)
