"""Conv1D and max pooling on (B, T, C) sequences, from lax primitives, plus their length arithmetic.

``output_lengths`` maps valid lengths through a layer. Padding never leaks into valid outputs as
long as the padded steps of a conv's input hold zeros (``mask_padding`` does that); pooling ignores
padded steps by itself when given ``lengths``.

"SAME" here pads ``(K_eff - 1) // 2`` steps on the left and the rest on the right, whatever the
sequence length (as PyTorch's ``padding="same"``). TensorFlow's SAME decides the left padding from
the total length when stride > 1, which would make a valid output depend on how much padding
follows the sequence; this choice keeps results padding-invariant.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

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
    y = lax.conv_general_dilated(
        x,
        kernel.astype(x.dtype),
        window_strides=(stride,),
        padding=_explicit_padding(padding, effective),
        rhs_dilation=(dilation,),
        dimension_numbers=("NWC", "WIO", "NWC"),
    )
    if bias is not None:
        y = y + bias.astype(y.dtype)
    return y


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
