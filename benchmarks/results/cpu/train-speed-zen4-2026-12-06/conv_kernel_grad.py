"""XLA's Conv1D gradient against a custom VJP whose kernel gradient is K dot_generals over
shifted slices of the input (no transposed copy of it), the input made as in the train step
(embedding gather, dropout mask), Embedding 128 → Conv1D 64×5.

    python conv_kernel_grad.py
"""

import jax
import jax.numpy as jnp
import numpy as np
from block_timing import seconds_per_call  # this folder's shared timing

from seqclf.ops.conv import conv1d

rng = np.random.default_rng(0)


def with_kernel_grad(kernel_grad):
    """conv1d (stride 1, VALID) with XLA's input gradient and ``kernel_grad(x, dy, taps)``'s."""

    @jax.custom_vjp
    def conv(x, kernel):
        return conv1d(x, kernel)

    def forward(x, kernel):
        return conv1d(x, kernel), (x, kernel)

    def backward(res, dy):
        x, kernel = res
        dx = jax.vjp(lambda x: conv1d(x, kernel), x)[1](dy)[0]
        return dx, kernel_grad(x, dy, kernel.shape[0])

    conv.defvjp(forward, backward)
    return conv


def dots_kernel_grad(x, dy, taps):
    """K dot_generals, tap k contracting x shifted by k with dy over (B, T_out)."""
    steps = dy.shape[1]
    return jnp.stack([jnp.einsum("btc,btf->cf", x[:, k : k + steps], dy) for k in range(taps)])


def flipped_kernel_grad(x, dy, taps):
    """One XLA convolution in which the output gradient slides over the input (not the input
    over the output gradient), so XLA:CPU transposes dy and swaps x's first two axes instead of
    transposing all of x."""
    dy_padded = jnp.pad(dy, ((0, 0), (taps - 1, taps - 1), (0, 0)))
    out = jax.lax.conv_general_dilated(
        jnp.transpose(dy_padded, (2, 1, 0)),  # (F, T_out + 2(K - 1), B)
        jnp.transpose(x, (1, 0, 2)),  # (T, B, E)
        window_strides=(1,),
        padding="VALID",
        dimension_numbers=("NWC", "WIO", "NWC"),
    )  # (F, K, E), tap K - 1 - k at k
    return jnp.transpose(out[:, ::-1, :], (1, 2, 0))


conv_dw_dots = with_kernel_grad(dots_kernel_grad)
conv_dw_flipped = with_kernel_grad(flipped_kernel_grad)


def bench(B, T, E=128, F=64, K=5, V=20000):
    table = jnp.asarray(rng.normal(size=(V, E)).astype(np.float32))
    ids = jnp.asarray(rng.integers(0, V, (B, T)).astype(np.int32))
    mask = jnp.asarray(rng.random((B, T, E)) > 0.25)
    kernel = jnp.asarray(rng.normal(size=(K, E, F)).astype(np.float32) * 0.05)
    g = jnp.asarray(rng.normal(size=(B, T - K + 1, F)).astype(np.float32))
    pert = jnp.zeros((B, T, E))

    def make(conv):
        def loss(pert, kernel):
            x = jnp.where(mask, (table[ids] + pert) * 1.333, 0.0)
            return jnp.sum(jax.nn.relu(conv(x, kernel)) * g)

        return jax.jit(jax.grad(loss, argnums=(0, 1)))

    xla, dots, flipped = make(conv1d), make(conv_dw_dots), make(conv_dw_flipped)
    ra = xla(pert, kernel)
    for name, f in (("dots", dots), ("flipped", flipped)):
        rb = f(pert, kernel)
        dw_err = jnp.max(jnp.abs(ra[1] - rb[1])) / jnp.max(jnp.abs(ra[1]))
        print(name, "max diff dx", float(jnp.max(jnp.abs(ra[0] - rb[0]))), "dW", float(dw_err))

    def median_ms(f, n):
        return 1e3 * seconds_per_call(f, pert, kernel, n=n)

    n = 200 if T <= 100 else 20
    for _ in range(2):
        print(
            B,
            T,
            f"xla {median_ms(xla, n):.3f} ms   dots-dW {median_ms(dots, n):.3f} ms"
            f"   flipped-dW {median_ms(flipped, n):.3f} ms",
        )


bench(30, 100)
bench(64, 400)
bench(64, 600)
