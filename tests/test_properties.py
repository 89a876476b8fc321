"""Property-based tests (hypothesis) of seqclf.ops against the float64 references in reference.py.

Random batch sizes, lengths (0 and 1 included), feature and hidden sizes and dtypes; padding
invariance as a property: whatever fills the steps past a sequence's end, and however many there
are, its valid outputs and final state do not change.

Tolerances (absolute, against float64): float32 1e-5 (as in test_ops.py); float64 1e-10;
bfloat16 3e-2 plus 2e-2 relative: bfloat16 keeps 8 significant bits, so one rounding of a value
near 1 is already up to 4e-3, and the recurrences round every step (measured worst case over these
sizes: about 4e-3 for h; the LSTM cell state grows with the length, hence the relative part).
Every example compiles a new shape, so the example counts are small.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import reference as ref
from hypothesis import given, settings
from hypothesis import strategies as st

from seqclf import ops

# derandomize: the same examples on every run (CI), so a failure is reproducible.
SETTINGS = settings(max_examples=15, deadline=None, derandomize=True)
# The padding-invariance properties compile two shapes per example.
FEWER = settings(SETTINGS, max_examples=10)
KINDS = ("rnn", "lstm", "gru")
DTYPES = ("float32", "float64", "bfloat16")
TOLERANCE = {  # (atol, rtol) against the float64 reference
    "float32": (1e-5, 0.0),
    "float64": (1e-10, 0.0),
    "bfloat16": (3e-2, 2e-2),
}


@st.composite
def batches_of_sequences(draw, max_batch: int = 4, max_time: int = 6):
    """(batch, time, lengths): lengths in [0, time], time possibly 0."""
    batch = draw(st.integers(1, max_batch))
    time = draw(st.integers(0, max_time))
    lengths = draw(st.lists(st.integers(0, time), min_size=batch, max_size=batch))
    return batch, time, lengths


def _cast(tree, dtype: str):
    return jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), tree)


def _as_f64(tree):
    """Exactly the values the op saw (after rounding to its dtype), as float64 NumPy."""

    def widen(a):
        a = jnp.asarray(a)
        return np.asarray(a.astype(jnp.float32) if a.dtype == jnp.bfloat16 else a, np.float64)

    return jax.tree_util.tree_map(widen, tree)


def _close(actual, expected, dtype: str, carried: bool = False) -> None:
    """``actual`` (of ``dtype``) within tolerance of the float64 ``expected``. ``carried``: a
    recurrent state, which the ops keep in float32 when computing in bfloat16."""
    atol, rtol = TOLERANCE[dtype]
    flat_a, tree_a = jax.tree_util.tree_flatten(actual)
    flat_e, tree_e = jax.tree_util.tree_flatten(expected)
    assert tree_a == tree_e
    allowed = {jnp.dtype(dtype)}
    if carried and dtype == "bfloat16":
        allowed.add(jnp.dtype(jnp.float32))
    for a, e in zip(flat_a, flat_e, strict=True):
        assert a.dtype in allowed, (a.dtype, dtype)
        np.testing.assert_allclose(_as_f64(a), e, atol=atol, rtol=rtol)


def _params(rng: np.random.Generator, kind: str, features: int, hidden: int) -> dict:
    """PyTorch-style uniform(±1/√H) weights, drawn with NumPy (no per-shape compilation)."""
    g = ops.GATES[kind] * hidden
    shapes = {"w_ih": (features, g), "w_hh": (hidden, g), "b_ih": (g,), "b_hh": (g,)}
    bound = 1 / np.sqrt(hidden)
    return {k: rng.uniform(-bound, bound, s) for k, s in shapes.items()}


def _in_dtype(dtype: str):
    """float64 needs x64 switched on for the duration of the example."""
    return jax.enable_x64(dtype == "float64")


@SETTINGS
@given(
    kind=st.sampled_from(KINDS),
    shape=batches_of_sequences(),
    features=st.integers(1, 4),
    hidden=st.integers(1, 5),
    dtype=st.sampled_from(DTYPES),
    reverse=st.booleans(),
    with_lengths=st.booleans(),
    reference=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_recurrences_match_the_reference(
    kind, shape, features, hidden, dtype, reverse, with_lengths, reference, seed
):
    """The fast path (``ops.lstm`` ...) or the reference scan (``ops.lstm_reference`` ...), in
    float32, float64 or bfloat16, against the float64 NumPy reference."""
    batch, time, lengths = shape
    rng = np.random.default_rng(seed)
    with _in_dtype(dtype):
        params = _cast(_params(rng, kind, features, hidden), dtype)
        xs = _cast(rng.normal(size=(batch, time, features)), dtype)
        lens = jnp.asarray(lengths) if with_lengths else None
        run = ops.recurrence(kind, reference=reference)
        ys, state = run(params, xs, lens, reverse=reverse)
        expected_ys, expected_state = ref.recurrence(
            kind, _as_f64(params), _as_f64(xs), lengths if with_lengths else None, reverse=reverse
        )
        _close(ys, expected_ys, dtype)
        _close(state, expected_state, dtype, carried=True)


@FEWER
@given(
    kind=st.sampled_from(KINDS),
    shape=batches_of_sequences(),
    extra=st.integers(1, 4),
    features=st.integers(1, 3),
    hidden=st.integers(1, 4),
    reverse=st.booleans(),
    fill=st.sampled_from(["random", "zeros", "large"]),
    reference=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_recurrences_are_padding_invariant(
    kind, shape, extra, features, hidden, reverse, fill, reference, seed
):
    """Sequences padded to T and to T + extra, the padding filled with anything: the same valid
    outputs (zeros past the end) and final states."""
    batch, time, lengths = shape
    rng = np.random.default_rng(seed)
    params = _cast(_params(rng, kind, features, hidden), "float32")
    short = rng.normal(size=(batch, time, features))
    padding = {
        "random": rng.normal(size=(batch, time + extra, features)),
        "zeros": np.zeros((batch, time + extra, features)),
        "large": np.full((batch, time + extra, features), 1e4),
    }[fill]
    long = padding.copy()
    for b, n in enumerate(lengths):
        long[b, :n] = short[b, :n]
        short[b, n:] = padding[b, n:time]
    run = ops.recurrence(kind, reference=reference)
    lens = jnp.asarray(lengths)
    ys_short, state_short = run(params, _cast(short, "float32"), lens, reverse=reverse)
    ys_long, state_long = run(params, _cast(long, "float32"), lens, reverse=reverse)
    np.testing.assert_allclose(np.asarray(ys_long[:, :time]), np.asarray(ys_short), atol=1e-6)
    np.testing.assert_array_equal(np.asarray(ys_long[:, time:]), 0.0)
    leaves_long, leaves_short = (jax.tree_util.tree_leaves(s) for s in (state_long, state_short))
    for a, b in zip(leaves_long, leaves_short, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-6)


@SETTINGS
@given(
    batch=st.integers(1, 3),
    time=st.integers(0, 9),
    channels=st.integers(1, 3),
    filters=st.integers(1, 3),
    size=st.integers(1, 4),
    stride=st.integers(1, 3),
    dilation=st.integers(1, 3),
    padding=st.sampled_from(["VALID", "SAME"]),
    with_bias=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_conv1d_matches_the_reference(
    batch, time, channels, filters, size, stride, dilation, padding, with_bias, dtype, seed
):
    rng = np.random.default_rng(seed)
    with _in_dtype(dtype):
        x = _cast(rng.normal(size=(batch, time, channels)), dtype)
        kernel = _cast(rng.normal(size=(size, channels, filters)) / np.sqrt(size), dtype)
        bias = _cast(rng.normal(size=(filters,)), dtype) if with_bias else None
        y = ops.conv1d(x, kernel, bias, stride=stride, padding=padding, dilation=dilation)
        expected = ref.conv1d(
            _as_f64(x),
            _as_f64(kernel),
            None if bias is None else _as_f64(bias),
            stride=stride,
            padding=padding,
            dilation=dilation,
        )
        _close(y, expected, dtype)
        n_out = ops.output_lengths(
            jnp.array([time]), size, stride=stride, padding=padding, dilation=dilation
        )
        assert int(n_out[0]) == y.shape[1]


@SETTINGS
@given(
    shape=batches_of_sequences(max_time=9),
    channels=st.integers(1, 3),
    size=st.integers(1, 4),
    stride=st.one_of(st.none(), st.integers(1, 3)),
    padding=st.sampled_from(["VALID", "SAME"]),
    with_lengths=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    seed=st.integers(0, 2**16),
)
def test_max_pool1d_matches_the_reference(
    shape, channels, size, stride, padding, with_lengths, dtype, seed
):
    batch, time, lengths = shape
    rng = np.random.default_rng(seed)
    with _in_dtype(dtype):
        x = _cast(rng.normal(size=(batch, time, channels)), dtype)
        lens = jnp.asarray(lengths) if with_lengths else None
        y = ops.max_pool1d(x, size, stride, padding, lengths=lens)
        expected = ref.max_pool1d(
            _as_f64(x), size, stride, padding, lengths=lengths if with_lengths else None
        )
        _close(y, expected, dtype)


@FEWER
@given(
    shape=batches_of_sequences(max_time=9),
    extra=st.integers(1, 5),
    size=st.integers(1, 4),
    stride=st.integers(1, 3),
    padding=st.sampled_from(["VALID", "SAME"]),
    seed=st.integers(0, 2**16),
)
def test_conv_then_pool_is_padding_invariant(shape, extra, size, stride, padding, seed):
    """mask_padding → conv1d → max_pool1d(lengths) over a batch padded to T and to T + extra with
    garbage: the valid outputs agree, and what lies past them is zero."""
    batch, time, lengths = shape
    rng = np.random.default_rng(seed)
    kernel = _cast(rng.normal(size=(size, 2, 3)), "float32")
    long = rng.normal(size=(batch, time + extra, 2)) * 100  # garbage past each end
    short = long[:, :time].copy()
    lens = jnp.asarray(lengths)

    def block(x):
        h = ops.conv1d(ops.mask_padding(_cast(x, "float32"), lens), kernel, padding=padding)
        h_lens = ops.output_lengths(lens, size, padding=padding)
        return ops.max_pool1d(h, 2, stride, padding, lengths=h_lens), h_lens

    y_short, _ = block(short)
    y_long, h_lens = block(long)
    out_lens = np.asarray(ops.output_lengths(h_lens, 2, stride=stride, padding=padding))
    for b, n in enumerate(out_lens):
        # to float32's rounding of the outputs' size (the inputs are scaled by 100)
        scale = max(1.0, float(np.max(np.abs(y_short), initial=0.0)))
        np.testing.assert_allclose(
            np.asarray(y_long[b, :n]), np.asarray(y_short[b, :n]), atol=1e-5 * scale
        )
        np.testing.assert_array_equal(np.asarray(y_long[b, n:]), 0.0)
