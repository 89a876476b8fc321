"""Why bfloat16 loses at small sizes on XLA:CPU: one matmul, float32 against bfloat16 operands
with float32 accumulation (preferred_element_type), at the LSTM step's shape and larger ones.

    python bf16_matmul.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from block_timing import seconds_per_call  # this folder's shared timing

rng = np.random.default_rng(0)


def median_us(f, *args, n):
    return 1e6 * seconds_per_call(f, *args, n=n)


f32 = jax.jit(lambda a, b: a @ b)
bf16 = jax.jit(lambda a, b: jnp.dot(a, b, preferred_element_type=jnp.float32))
# The recurrence's form: float32 state cast to bfloat16 for each step's matmul.
bf16_cast = jax.jit(
    lambda a, b: jnp.dot(a.astype(jnp.bfloat16), b, preferred_element_type=jnp.float32)
)
print(f"{'m x k x n':>22} {'f32 us':>9} {'bf16 us':>9} {'cast+bf16 us':>13} {'f32/bf16':>9}")
for m, k, n in [
    (32, 192, 512),
    (64, 384, 1024),
    (64, 768, 2048),
    (512, 512, 512),
    (2048, 2048, 2048),
]:
    a = rng.normal(size=(m, k)).astype(np.float32)
    b = rng.normal(size=(k, n)).astype(np.float32)
    a32, b32 = jnp.asarray(a), jnp.asarray(b)
    a16, b16 = a32.astype(jnp.bfloat16), b32.astype(jnp.bfloat16)
    reps = max(3, int(2e9 / (2 * m * k * n)))
    t32 = median_us(f32, a32, b32, n=reps)
    t16 = median_us(bf16, a16, b16, n=reps)
    tc = median_us(bf16_cast, a32, b16, n=reps)
    gf = 2 * m * k * n / 1e3
    print(
        f"{m:>6} x {k:>5} x {n:>5} {t32:9.1f} {t16:9.1f} {tc:13.1f} {t32 / t16:9.2f}"
        f"   ({gf / t32:.0f} / {gf / t16:.0f} GFLOP/s)"
    )
