"""Conv1D and max pooling on (B, T, C) sequences, from lax primitives, plus their length arithmetic.

``output_lengths`` maps valid lengths through a layer. Padding never leaks into valid outputs as
long as the padded steps of a conv's input hold zeros (``mask_padding`` does that); pooling ignores
padded steps by itself when given ``lengths``.

"SAME" here pads ``(K_eff - 1) // 2`` steps on the left and the rest on the right, whatever the
sequence length (as PyTorch's ``padding="same"``). TensorFlow's SAME decides the left padding from
the total length when stride > 1, which would make a valid output depend on how much padding
follows the sequence; this choice keeps results padding-invariant.

On a CPU, a stride-1 ``conv1d`` does not go through XLA's convolution:

- float32, dilation 1, kernels of 2-7 taps: Winograd's F(m, r) (``seqclf.ops.winograd``), 2.5x
  fewer multiplications at kernel 5. XLA:CPU's convolution already runs near the matmul peak,
  and the classic model's conv is more than half of its training step. Measured on a 2-core
  EPYC at that conv (30 x 100 x 128 -> 64, kernel 5): forward ~1.5x, backward ~1.5x XLA's
  speed, outputs within ~2e-6 relative of it.
- bfloat16: XLA:CPU's convolution computes a bfloat16 conv at float32's speed, while its
  matmuls use the CPU's bfloat16 dot instructions (AVX512_BF16, AMX). So there it is written
  as K matmuls, one per kernel tap, summed in float32 (``_conv_as_tap_matmuls``), and its input
  gradient the same way. Measured on the same EPYC: forward 1.28x, forward + backward 1.08x
  float32's speed (XLA's bfloat16 conv: 0.92x / 0.98x).

Everything else, and every other platform, is XLA's convolution (cuDNN on a GPU), the reference
the tests compare both paths with (benchmarks/results/cpu/train-speed-bf16-conv-zen4-2026-12-07/,
benchmarks/results/cpu/winograd-conv-zen4-2026-12-07/).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from seqclf.ops import winograd
from seqclf.ops._driver import sequence_mask

PADDINGS = ("VALID", "SAME")


def _check_padding(padding: str) -> str:
    padding = padding.upper()
    if padding not in PADDINGS:
        raise ValueError(f"padding must be 'VALID' or 'SAME', got {padding!r}")
    return padding


def _explicit_padding(padding: str, effective_size: int) -> list[tuple[int, int]]:
    if padding == "VALID":
        return [(0, 0)]
    left = (effective_size - 1) // 2
    return [(left, effective_size - 1 - left)]


def output_lengths(
    lengths: jax.Array,
    size: int,
    *,
    stride: int = 1,
    padding: str = "VALID",
    dilation: int = 1,
) -> jax.Array:
    """Valid output lengths of a conv or pooling window over sequences of valid ``lengths``.

    Args:
      lengths: (B,) integer valid lengths of the input.
      size: kernel or pool size K.
      stride, padding, dilation: as given to ``conv1d`` / ``max_pool1d``.

    Returns:
      (B,) valid output lengths: ``ceil(L / stride)`` for SAME,
      ``max(0, (L - K_eff) // stride + 1)`` for VALID, with ``K_eff = dilation * (K - 1) + 1``.
    """
    padding = _check_padding(padding)
    lengths = jnp.asarray(lengths)
    if padding == "SAME":
        return (lengths + stride - 1) // stride
    effective = dilation * (size - 1) + 1
    return jnp.maximum((lengths - effective) // stride + 1, 0)


def mask_padding(x: jax.Array, lengths: jax.Array | None, value: float = 0.0) -> jax.Array:
    """Set the padded steps ``t >= lengths[b]`` of x (B, T, C) to ``value``."""
    if lengths is None:
        return x
    mask = sequence_mask(lengths, x.shape[1])[:, :, None]
    return jnp.where(mask, x, jnp.asarray(value, x.dtype))


def conv1d(
    x: jax.Array,
    kernel: jax.Array,
    bias: jax.Array | None = None,
    *,
    stride: int = 1,
    padding: str = "VALID",
    dilation: int = 1,
) -> jax.Array:
    """1-D convolution (cross-correlation, as in Keras and PyTorch) over time.

    Args:
      x: (B, T, C_in) inputs. For padding-invariant results, zero the padded steps first
        (``mask_padding``).
      kernel: (K, C_in, C_out), the Keras/Flax layout.
      bias: (C_out,) or None.
      stride: step between windows.
      padding: "VALID" (no padding) or "SAME" (output length ceil(T / stride)).
      dilation: spacing between kernel taps.

    Returns:
      (B, T_out, C_out).
    """
    if x.ndim != 3:
        raise ValueError(f"conv1d: x must be (batch, time, channels), got shape {x.shape}")
    if kernel.ndim != 3 or kernel.shape[1] != x.shape[-1]:
        raise ValueError(
            f"conv1d: kernel must be (K, C_in={x.shape[-1]}, C_out), got shape {kernel.shape}"
        )
    if stride < 1 or dilation < 1:
        raise ValueError(f"conv1d: stride and dilation must be >= 1, got {stride}, {dilation}")
    padding = _check_padding(padding)
    effective = dilation * (kernel.shape[0] - 1) + 1
    time_padding = _explicit_padding(padding, effective)
    kernel = kernel.astype(x.dtype)
    xla = functools.partial(_xla_conv, stride=stride, time_padding=time_padding, dilation=dilation)
    pad_time = functools.partial(jnp.pad, pad_width=[(0, 0), time_padding[0], (0, 0)])
    out_steps = x.shape[1] + sum(time_padding[0]) - effective + 1
    if (
        x.dtype in (jnp.float32, jnp.bfloat16)
        and stride == dilation == 1
        and winograd.supports(kernel.shape[0])
        and out_steps >= 1
        and isinstance(x.shape[0], int)  # a symbolic batch (jax.export): XLA's conv
    ):  # Winograd in float32 on a CPU (module docstring)

        def fewer_products(x: jax.Array, kernel: jax.Array) -> jax.Array:
            x32, kernel32 = pad_time(x).astype(jnp.float32), kernel.astype(jnp.float32)
            y = _in_chunks(
                lambda x: winograd.winograd_conv1d(x, kernel32), x32, _WINOGRAD_CHUNK_POSITIONS
            )
            return y.astype(x.dtype)

        y = lax.platform_dependent(x, kernel, cpu=fewer_products, default=xla)
    elif x.dtype == jnp.bfloat16 and stride == 1:  # tap matmuls on a CPU (module docstring)

        def taps(x: jax.Array, kernel: jax.Array) -> jax.Array:
            return _conv_as_tap_matmuls(pad_time(x), kernel, dilation)

        y = lax.platform_dependent(x, kernel, cpu=taps, default=xla)
    else:
        y = xla(x, kernel)
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y


def _xla_conv(
    x: jax.Array,
    kernel: jax.Array,
    *,
    stride: int = 1,
    time_padding: list[tuple[int, int]] | None = None,
    dilation: int = 1,
) -> jax.Array:
    """(B, T, C_in) x (K, C_in, C_out) -> (B, T_out, C_out): XLA's convolution."""
    return lax.conv_general_dilated(
        x,
        kernel,
        window_strides=(stride,),
        padding=time_padding or [(0, 0)],
        rhs_dilation=(dilation,),
        dimension_numbers=("NWC", "WIO", "NWC"),
    )


# Sequence positions per chunk of the CPU's own conv paths (``_in_chunks``): a longer batch is
# taken a few rows at a time, so each chunk's shifted copies or transformed tiles and their
# float32 partial sums stay in the cache. Taken whole, the L benchmark's (64 x 400) batch ran
# the tap matmuls' forward at 0.5x XLA's speed; in chunks of ~2,000 positions at 1.4x (and
# 1.2-1.3x at (16, 1000), (64, 200), (128, 100)), while the classic (30 x 100) batch is
# fastest whole. Winograd's forward + backward at L: 1.0x XLA's whole, 1.4-1.7x in chunks of
# 3,200 positions, 0.9-1.2x in chunks of 2,048 (the four shapes above: 1.1-1.7x at 3,200).
# Measured on a 2-core EPYC (benchmarks/results/cpu/train-speed-bf16-conv-zen4-2026-12-07/,
# benchmarks/results/cpu/winograd-conv-zen4-2026-12-07/).
_TAP_CHUNK_POSITIONS = 2048
_WINOGRAD_CHUNK_POSITIONS = 3200


def _in_chunks(conv: Callable[[jax.Array], jax.Array], x: jax.Array, positions: int) -> jax.Array:
    """``conv`` (b, T, ·) -> (b, T_out, ·) applied to x (B, T, ·) ~``positions`` at a time."""
    rows = max(1, positions // x.shape[1])
    chunks, rest = divmod(x.shape[0], rows)
    if chunks <= 1:
        return conv(x)
    whole = x[: chunks * rows].reshape(chunks, rows, *x.shape[1:])
    y = lax.map(conv, whole)
    y = y.reshape(chunks * rows, *y.shape[2:])
    return jnp.concatenate([y, conv(x[chunks * rows :])]) if rest else y


def _tap_matmuls(x: jax.Array, kernel: jax.Array, dilation: int) -> jax.Array:
    """VALID, stride-1 convolution as one matmul per tap: (B, T, C_in) x (K, C_in, C_out) ->
    (B, T - dilation·(K - 1), C_out), products summed in float32, cast to x's dtype."""
    taps, steps = kernel.shape[0], x.shape[1]
    out_steps = steps - dilation * (taps - 1)

    def conv(x: jax.Array) -> jax.Array:  # (b, T, C_in) -> (b, T_out, C_out)
        y = sum(
            lax.dot_general(
                x[:, k * dilation : k * dilation + out_steps],
                kernel[k],
                (((2,), (0,)), ((), ())),
                preferred_element_type=jnp.float32,
            )
            for k in range(taps)
        )
        return y.astype(x.dtype)

    return _in_chunks(conv, x, _TAP_CHUNK_POSITIONS)


@functools.partial(jax.custom_vjp, nondiff_argnums=(2,))
def _conv_as_tap_matmuls(x: jax.Array, kernel: jax.Array, dilation: int = 1) -> jax.Array:
    """``_xla_conv`` (VALID, stride 1) for bfloat16 on a CPU, as ``_tap_matmuls``; its input
    gradient is a tap-matmul convolution too, its kernel gradient XLA's."""
    return _tap_matmuls(x, kernel, dilation)


def _conv_as_tap_matmuls_fwd(
    x: jax.Array, kernel: jax.Array, dilation: int
) -> tuple[jax.Array, tuple[jax.Array, jax.Array]]:
    return _tap_matmuls(x, kernel, dilation), (x, kernel)


def _conv_as_tap_matmuls_bwd(
    dilation: int, residuals: tuple[jax.Array, jax.Array], dy: jax.Array
) -> tuple[jax.Array, jax.Array]:
    x, kernel = residuals
    # dx[s] = Σ_k dy[s - k·d] W_kᵀ: the same convolution of dy, zero-padded by the kernel's span
    # on both sides, with the kernel's taps reversed and each tap transposed.
    dy = dy.astype(x.dtype)
    span = dilation * (kernel.shape[0] - 1)
    padded = jnp.pad(dy, ((0, 0), (span, span), (0, 0)))
    dx = _tap_matmuls(padded, jnp.flip(jnp.swapaxes(kernel, 1, 2), 0), dilation)
    _, kernel_vjp = jax.vjp(lambda k: _xla_conv(x, k, dilation=dilation), kernel)
    return dx, kernel_vjp(dy)[0]


_conv_as_tap_matmuls.defvjp(_conv_as_tap_matmuls_fwd, _conv_as_tap_matmuls_bwd)


def max_pool1d(
    x: jax.Array,
    size: int,
    stride: int | None = None,
    padding: str = "VALID",
    *,
    lengths: jax.Array | None = None,
) -> jax.Array:
    """Max pooling over time (Keras ``MaxPooling1D``: stride defaults to the pool size).

    Args:
      x: (B, T, C) inputs.
      size: window length.
      stride: step between windows; defaults to ``size``.
      padding: "VALID" or "SAME".
      lengths: optional (B,) valid lengths; padded steps then never win a max, and windows that
        hold no valid step give 0.

    Returns:
      (B, T_out, C).
    """
    if x.ndim != 3:
        raise ValueError(f"max_pool1d: x must be (batch, time, channels), got shape {x.shape}")
    stride = size if stride is None else stride
    if size < 1 or stride < 1:
        raise ValueError(f"max_pool1d: size and stride must be >= 1, got {size}, {stride}")
    padding = _check_padding(padding)
    x = mask_padding(x, lengths, -jnp.inf)
    if padding == "VALID" and stride == size:
        y = _max_pool_disjoint(x, size)
    else:
        y = _reduce_window_max(x, size, stride, _explicit_padding(padding, size))
    if lengths is not None:
        y = mask_padding(y, output_lengths(lengths, size, stride=stride, padding=padding))
    return y


def _reduce_window_max(
    x: jax.Array, size: int, stride: int, time_padding: list[tuple[int, int]]
) -> jax.Array:
    """(B, T, C) -> (B, T_out, C): ``lax.reduce_window`` with max over windows of time steps."""
    # A concrete NumPy -inf lets lax recognise max pooling (and differentiate it) inside jit.
    return lax.reduce_window(
        x,
        np.array(-np.inf, x.dtype),
        lax.max,
        window_dimensions=(1, size, 1),
        window_strides=(1, stride, 1),
        padding=[(0, 0), *time_padding, (0, 0)],
    )


# Why non-overlapping pooling has its own derivative: JAX differentiates ``reduce_window`` max
# into XLA's select-and-scatter, which the CPU backend runs as a serial loop over windows and
# which nothing fuses with. When the windows do not overlap (stride == size, Keras' default),
# the derivative is elementwise: each output passes its tangent on from the first position of
# its window that holds the maximum, exactly the position select-and-scatter picks (ties go to
# the earliest step). Written as a JVP, so JAX transposes it for gradients by itself (a
# broadcast and a select), and forward mode keeps working. The forward pass is unchanged.
@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def _max_pool_disjoint(x: jax.Array, size: int) -> jax.Array:
    """(B, T, C) -> (B, T // size, C): max over consecutive, non-overlapping windows."""
    return _reduce_window_max(x, size, size, [(0, 0)])


@_max_pool_disjoint.defjvp
def _max_pool_disjoint_jvp(
    size: int, primals: tuple[jax.Array], tangents: tuple[jax.Array]
) -> tuple[jax.Array, jax.Array]:
    (x,), (dx,) = primals, tangents
    y = _max_pool_disjoint(x, size)
    batch, steps, channels = y.shape
    used = steps * size  # the steps that fall into a window ('VALID' drops the rest)
    windows = (batch, steps, size, channels)
    is_max = x[:, :used].reshape(windows) == y[:, :, None]
    first_max = is_max & (jnp.cumsum(is_max, axis=2) == 1)
    dy = jnp.where(first_max, dx[:, :used].reshape(windows), 0).sum(axis=2)
    return y, dy
