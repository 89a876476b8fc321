"""Winograd's minimal filtering F(m, r): a VALID, stride-1 Conv1D in fewer multiplications.

Why: on a CPU, the Conv1D of the classic IMDB model (30 x 100 x 128 -> 64, kernel 5) is more
than half of the training step, and XLA:CPU's convolution already runs at 65-88 % of the
host's float32 matmul peak. Fewer multiplications are the only way left to make it faster.

The idea (Winograd 1980; Lavin & Gray, "Fast Algorithms for Convolutional Neural Networks",
2016): cut the output into tiles of m steps. Each tile needs n = m + r - 1 input steps, and

    y_tile = Aᵀ [ (G w) ⊙ (Bᵀ d_tile) ]          Aᵀ: (m, n), G: (n, r), Bᵀ: (n, n)

computes its m outputs of an r-tap filter with n products instead of m·r. With channels, the
elementwise product becomes n matmuls (C_in -> C_out), one per transform point, and the
transforms Bᵀ, Aᵀ are short sums of time steps that XLA fuses into elementwise loops. With
n = 8 (m = 9 - r), kernel 5 takes 8 matmuls per 4 outputs instead of 20: 2.5x fewer FLOPs.

The matrices come from polynomial multiplication by evaluation at n - 1 points and infinity
(Cook-Toom): the filter is the transpose of a linear convolution, so Aᵀ = V_mᵀ, G = V_r and
Bᵀ = V_n⁻ᵀ, V_k being the (n, k) matrix that evaluates a polynomial of k coefficients at the
points. The points 0, ±1, ±2, ±1/2 keep float32's error near 2e-6 relative to XLA's conv.

The backward is written by hand (a custom VJP) in the same transformed space: dW from the n
matmuls Uᵀ dM, dx from dM Wᵀ and the transposed input transform (an overlap-add). JAX's own
derivative of the strided slices was slower than XLA's conv backward.

Used by ``seqclf.ops.conv1d`` for float32 on a CPU; see that module for when.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

TILE = 8  # n: input steps per tile; 8 keeps float32 accurate for kernels up to 7
_POINTS = (0.0, 1.0, -1.0, 2.0, -2.0, 0.5, -0.5)  # the finite points; infinity is the last


def supports(taps: int) -> bool:
    """Whether a kernel of ``taps`` steps gains from F(TILE - taps + 1, taps)."""
    return 2 <= taps <= TILE - 1


@functools.cache
def transform_matrices(outputs: int, taps: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Aᵀ (m, n), G (n, r), Bᵀ (n, n) of F(m = outputs, r = taps), n = m + r - 1 (float64).

    Each row j of Bᵀ is scaled to a largest entry of 1 and row j of G by the inverse, which
    keeps the transforms of the inputs (done in float32) small and exact in their integers.
    """
    n = outputs + taps - 1
    if n - 1 > len(_POINTS):
        raise ValueError(f"F({outputs}, {taps}) needs {n - 1} points; {len(_POINTS)} are defined")

    def evaluation(coefficients: int) -> np.ndarray:  # (n, coefficients)
        v = np.zeros((n, coefficients))
        for j, point in enumerate(_POINTS[: n - 1]):
            v[j] = point ** np.arange(coefficients)
        v[n - 1, coefficients - 1] = 1.0  # "infinity": the leading coefficient
        return v

    a_t = evaluation(outputs).T
    b_t = np.linalg.inv(evaluation(n)).T
    scale = np.abs(b_t).max(axis=1, keepdims=True)
    return a_t, evaluation(taps) * scale, b_t / scale


def _weighted_sum(weights: np.ndarray, terms: list[jax.Array]) -> jax.Array:
    """Σ_i weights[i] · terms[i], skipping zeros (the transforms are sparse)."""
    total = None
    for weight, term in zip(weights.tolist(), terms, strict=True):
        if weight == 0:
            continue
        part = term if weight == 1 else -term if weight == -1 else weight * term
        total = part if total is None else total + part
    return jnp.zeros_like(terms[0]) if total is None else total


def _geometry(x: jax.Array, kernel: jax.Array) -> tuple[int, int, int]:
    """(m, tiles, padded length) for x (B, T, C) and an r-tap kernel."""
    taps = kernel.shape[0]
    outputs = TILE - taps + 1
    tiles = -(-(x.shape[1] - taps + 1) // outputs)
    return outputs, tiles, tiles * outputs + taps - 1


def _input_transform(x: jax.Array, b_t: np.ndarray, outputs: int, tiles: int) -> jax.Array:
    """(B, tiles·m + r - 1, C) -> U (n, B·tiles, C): U[j, (b, t)] = Σ_s Bᵀ[j, s] x[b, t·m + s]."""
    steps = [x[:, s : s + (tiles - 1) * outputs + 1 : outputs] for s in range(TILE)]
    u = jnp.stack([_weighted_sum(b_t[j], steps) for j in range(TILE)])
    return u.reshape(TILE, -1, x.shape[-1])


def _input_transform_transpose(
    du: jax.Array, b_t: np.ndarray, outputs: int, tiles: int, batch: int
) -> jax.Array:
    """The transpose of ``_input_transform``: (n, B·tiles, C) -> (B, tiles·m + r - 1, C).

    Tile t's step s lands on position t·m + s; the steps of a tile that reach into the next
    tiles (s >= m) are added there (an overlap-add).
    """
    du = list(du.reshape(TILE, batch, tiles, -1))
    parts = [_weighted_sum(b_t[:, s], du) for s in range(TILE)]  # (B, tiles, C) each
    shifts = range(0, TILE, outputs)
    total = tiles * outputs + shifts[-1]  # the last block may end past the input: zeros there
    dx = None
    for shift in shifts:
        group = parts[shift : shift + outputs]
        group += [jnp.zeros_like(parts[0])] * (outputs - len(group))
        block = jnp.stack(group, axis=2).reshape(batch, tiles * outputs, -1)
        block = jnp.pad(block, ((0, 0), (shift, total - shift - tiles * outputs), (0, 0)))
        dx = block if dx is None else dx + block
    return dx[:, : tiles * outputs + TILE - outputs]


def _output_transform(m: jax.Array, a_t: np.ndarray, batch: int, tiles: int) -> jax.Array:
    """(n, B·tiles, F) -> (B, tiles·m, F): y[b, t·m + i] = Σ_j Aᵀ[i, j] M[j, (b, t)]."""
    points = list(m.reshape(TILE, batch, tiles, -1))
    y = jnp.stack([_weighted_sum(a_t[i], points) for i in range(a_t.shape[0])], axis=2)
    return y.reshape(batch, tiles * a_t.shape[0], -1)


def _output_transform_transpose(dy: jax.Array, a_t: np.ndarray, tiles: int) -> jax.Array:
    """The transpose of ``_output_transform``: (B, tiles·m, F) -> (n, B·tiles, F)."""
    rows = list(jnp.moveaxis(dy.reshape(dy.shape[0], tiles, a_t.shape[0], -1), 2, 0))
    dm = jnp.stack([_weighted_sum(a_t[:, j], rows) for j in range(TILE)])
    return dm.reshape(TILE, -1, dy.shape[-1])


def _pointwise_matmuls(a: jax.Array, b: jax.Array, contract: tuple[int, int]) -> jax.Array:
    """One matmul per transform point: a (n, ·, ·) with b (n, ·, ·), batched over n."""
    return lax.dot_general(a, b, (((contract[0],), (contract[1],)), ((0,), (0,))))


def _transformed(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, jax.Array, int, int]:
    """U (n, B·tiles, C_in), G w (n, C_in, C_out), m, tiles."""
    outputs, tiles, length = _geometry(x, kernel)
    _, g, b_t = transform_matrices(outputs, kernel.shape[0])
    x = jnp.pad(x, ((0, 0), (0, length - x.shape[1]), (0, 0)))
    u = _input_transform(x, b_t, outputs, tiles)
    return u, jnp.einsum("jk,kcf->jcf", jnp.asarray(g, x.dtype), kernel), outputs, tiles


@jax.custom_vjp
def winograd_conv1d(x: jax.Array, kernel: jax.Array) -> jax.Array:
    """VALID, stride-1 convolution by F(m, r): (B, T, C_in) x (K, C_in, C_out) ->
    (B, T - K + 1, C_out), the same as XLA's convolution to float32 rounding.

    Requires ``supports(K)`` and T >= K.
    """
    u, w, outputs, tiles = _transformed(x, kernel)
    a_t, _, _ = transform_matrices(outputs, kernel.shape[0])
    y = _output_transform(_pointwise_matmuls(u, w, (2, 1)), a_t, x.shape[0], tiles)
    return y[:, : x.shape[1] - kernel.shape[0] + 1]


def _winograd_fwd(x: jax.Array, kernel: jax.Array) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return winograd_conv1d(x, kernel), (x, kernel)


def _winograd_bwd(
    residuals: tuple[jax.Array, jax.Array], dy: jax.Array
) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    u, w, outputs, tiles = _transformed(x, kernel)  # recomputed: cheaper than keeping U
    a_t, g, b_t = transform_matrices(outputs, kernel.shape[0])
    dy = jnp.pad(dy, ((0, 0), (0, tiles * outputs - dy.shape[1]), (0, 0)))
    dm = _output_transform_transpose(dy, a_t, tiles)  # (n, B·tiles, C_out)
    dw = jnp.einsum("jk,jcf->kcf", jnp.asarray(g, x.dtype), _pointwise_matmuls(u, dm, (1, 1)))
    du = _pointwise_matmuls(dm, w, (2, 2))  # (n, B·tiles, C_in)
    dx = _input_transform_transpose(du, b_t, outputs, tiles, x.shape[0])
    return dx[:, : x.shape[1]].astype(x.dtype), dw.astype(kernel.dtype)


winograd_conv1d.defvjp(_winograd_fwd, _winograd_bwd)
