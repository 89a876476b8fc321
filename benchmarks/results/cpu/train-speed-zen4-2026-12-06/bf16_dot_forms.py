"""Which of the LSTM's matmuls get faster with bfloat16 operands on XLA:CPU: the per-step ones
(forward h @ W, backward dg @ W^T), the input projection, and the weight gradient X^T @ dG whose
contraction runs over all B·T steps (in several forms, and split into chunks).

    python bf16_dot_forms.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from block_timing import seconds_per_call  # this folder's shared timing
from jax import lax

rng = np.random.default_rng(0)


def median_us(f, *args, n=200):
    return 1e6 * seconds_per_call(f, *args, n=n)


def both(f, a, b, n):
    t32 = median_us(f, jnp.asarray(a), jnp.asarray(b), n=n)
    t16 = median_us(f, jnp.asarray(a, jnp.bfloat16), jnp.asarray(b, jnp.bfloat16), n=n)
    return t32, t16


def dot(dims):
    return jax.jit(
        lambda a, b: lax.dot_general(a, b, (dims, ((), ())), preferred_element_type=jnp.float32)
    )


CASES = {
    "step fwd  h@W       (32,192)x(192,512) c=(1,0)": ((32, 192), (192, 512), ((1,), (0,))),
    "step bwd  dg@W^T    (32,512)x(192,512) c=(1,1)": ((32, 512), (192, 512), ((1,), (1,))),
    "dW  X^T@dG  (3200,192)x(3200,512) c=(0,0)": ((3200, 192), (3200, 512), ((0,), (0,))),
    "proj X@W  (3200,64)x(64,512) c=(1,0)": ((3200, 64), (64, 512), ((1,), (0,))),
}
for name, (sa, sb, dims) in CASES.items():
    a, b = rng.normal(size=sa).astype(np.float32), rng.normal(size=sb).astype(np.float32)
    t32, t16 = both(dot(dims), a, b, n=50 if sa[0] > 1000 else 300)
    print(f"{name:50s} f32 {t32:8.1f} us  bf16 {t16:8.1f} us  f32/bf16 {t32 / t16:5.2f}")

print("--- dW forms")
a = rng.normal(size=(3200, 192)).astype(np.float32)
b = rng.normal(size=(3200, 512)).astype(np.float32)
F32 = jnp.float32
FORMS = {
    "dot_general c=(0,0)": lambda a, b: lax.dot_general(
        a, b, (((0,), (0,)), ((), ())), preferred_element_type=F32
    ),
    "transpose(a) @ b": lambda a, b: lax.dot_general(
        jnp.transpose(a), b, (((1,), (0,)), ((), ())), preferred_element_type=F32
    ),
    "(b^T @ a)^T": lambda a, b: (
        lax.dot_general(b, a, (((0,), (0,)), ((), ())), preferred_element_type=F32).T
    ),
    "transpose(b)@a ^T": lambda a, b: (
        lax.dot_general(jnp.transpose(b), a, (((1,), (0,)), ((), ())), preferred_element_type=F32).T
    ),
}
for name, f in FORMS.items():
    t32, t16 = both(jax.jit(f), a, b, n=50)
    print(f"{name:25s} f32 {t32:8.1f} us  bf16 {t16:8.1f} us")

print("--- dW split into chunks of the contraction")
for chunks in (1, 4, 25, 100):

    def chunked(a, b, c=chunks):
        parts = lax.dot_general(
            a.reshape(c, -1, a.shape[1]),
            b.reshape(c, -1, b.shape[1]),
            (((1,), (1,)), ((0,), (0,))),
            preferred_element_type=F32,
        )
        return parts.sum(0)

    t32, t16 = both(jax.jit(chunked), a, b, n=50)
    print(f"chunks {chunks:4d}                f32 {t32:8.1f} us  bf16 {t16:8.1f} us")
