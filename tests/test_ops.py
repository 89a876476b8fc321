"""seqclf.ops against the float64 references in ``reference.py``: values, gradients, padding
invariance, jit/grad/vmap, shapes and errors. The recurrences run both ways: the fast path
(``ops.lstm`` ...) and the reference scans (``ops.lstm_reference`` ...)."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import reference as ref
from jax.test_util import check_grads

from seqclf import ops
from seqclf.ops import conv as conv_ops
from seqclf.ops import winograd as winograd_ops

KINDS = ("rnn", "lstm", "gru")
PATHS = {"fast": False, "reference": True}  # name -> ops.recurrence(..., reference=)
TOL = 1e-5


def _key(seed: int) -> jax.Array:
    return jax.random.key(seed)


def _np(tree):
    return jax.tree_util.tree_map(np.asarray, tree)


def _close(actual, expected, tol: float = TOL) -> None:
    """Every leaf of ``actual`` within ``tol`` (absolute) of ``expected``."""
    flat_a, tree_a = jax.tree_util.tree_flatten(_np(actual))
    flat_e, tree_e = jax.tree_util.tree_flatten(_np(expected))
    assert tree_a == tree_e
    for a, e in zip(flat_a, flat_e, strict=True):
        assert a.shape == e.shape
        np.testing.assert_allclose(a, e, rtol=0, atol=tol)


def _params(kind: str, features: int, hidden: int, seed: int = 0, dtype=jnp.float32):
    """Like ``ops.init_params`` (uniform in ±1/√H) but drawn with NumPy: ``jax.random`` would
    compile once per shape, and compilations are most of this file's run time."""
    rng = np.random.default_rng(seed)
    g = ops.GATES[kind] * hidden
    shapes = {"w_ih": (features, g), "w_hh": (hidden, g), "b_ih": (g,), "b_hh": (g,)}
    bound = 1 / np.sqrt(hidden)
    return {k: jnp.asarray(rng.uniform(-bound, bound, s), dtype) for k, s in shapes.items()}


def _initial_state(kind: str, rng: np.random.Generator, batch: int, hidden: int):
    def draw():
        return rng.normal(size=(batch, hidden)).astype(np.float32)

    return (draw(), draw()) if kind == "lstm" else draw()


def _batch(rng: np.random.Generator, lengths, total: int, features: int) -> np.ndarray:
    """(B, total, F) float32 random values, padding included (it must not matter)."""
    return rng.normal(size=(len(lengths), total, features)).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Recurrences against the reference
# ---------------------------------------------------------------------------------------------

# (batch, time, features, hidden, lengths or None)
SHAPES = [
    (3, 7, 5, 4, [7, 0, 1]),
    (2, 1, 3, 6, [1, 0]),
    (4, 6, 2, 3, None),
]
# (reverse, with initial_state, unroll): each is checked against the reference.
VARIANTS = [(False, False, 1), (True, True, 1), (False, True, 3)]


@functools.partial(jax.jit, static_argnums=(0, 1))
def _variants(kind: str, reference: bool, params, xs, lengths, h0):
    """All VARIANTS in one compiled function, to keep the number of compilations small."""
    run = ops.recurrence(kind, reference=reference)
    return [
        run(params, xs, lengths, reverse=rev, initial_state=h0 if init else None, unroll=unroll)
        for rev, init, unroll in VARIANTS
    ]


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s[:4])))
def test_recurrence_matches_reference(kind: str, shape, path: str) -> None:
    """Forward and reverse, with and without h0, unroll 1 and 3, odd lengths, 0 and 1."""
    batch, steps, features, hidden, lengths = shape
    rng = np.random.default_rng(steps)
    params = _params(kind, features, hidden, steps)
    xs = rng.normal(size=(batch, steps, features)).astype(np.float32)
    h0 = _initial_state(kind, rng, batch, hidden)
    lens = None if lengths is None else jnp.asarray(lengths)
    results = _variants(kind, PATHS[path], params, jnp.asarray(xs), lens, h0)
    for (reverse, init, _), (ys, state) in zip(VARIANTS, results, strict=True):
        ref_ys, ref_state = ref.recurrence(
            kind, params, xs, lengths, reverse=reverse, initial_state=h0 if init else None
        )
        assert ys.dtype == jnp.float32
        _close(ys, ref_ys)
        _close(state, ref_state)


@pytest.mark.parametrize("lstm", [ops.lstm, ops.lstm_reference], ids=PATHS)
def test_eager_matches_reference(lstm) -> None:
    """The un-jitted call path, once."""
    rng = np.random.default_rng(0)
    params = _params("lstm", 2, 3)
    xs = rng.normal(size=(2, 5, 2)).astype(np.float32)
    ys, state = lstm(params, jnp.asarray(xs), jnp.array([5, 2]), reverse=True)
    ref_ys, ref_state = ref.recurrence("lstm", params, xs, [5, 2], reverse=True)
    _close(ys, ref_ys)
    _close(state, ref_state)


# ---------------------------------------------------------------------------------------------
# Conv1D and max pooling against the reference
# ---------------------------------------------------------------------------------------------

# (kernel size, stride, dilation)
CONV_CASES = [(1, 1, 1), (3, 2, 1), (4, 3, 1), (3, 1, 2), (2, 2, 3)]


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
@pytest.mark.parametrize("case", CONV_CASES, ids=lambda c: "k{}s{}d{}".format(*c))
def test_conv1d_matches_reference(padding: str, case) -> None:
    size, stride, dilation = case
    rng = np.random.default_rng(size * 10 + stride)
    kernel = rng.normal(size=(size, 3, 2)).astype(np.float32)
    bias = rng.normal(size=(2,)).astype(np.float32)
    for steps, b in ((9, bias), (2, None)):
        x = rng.normal(size=(2, steps, 3)).astype(np.float32)
        kw = {"stride": stride, "padding": padding, "dilation": dilation}
        y = ops.conv1d(
            jnp.asarray(x), jnp.asarray(kernel), None if b is None else jnp.asarray(b), **kw
        )
        _close(y, ref.conv1d(x, kernel, b, **kw))
        assert int(ops.output_lengths(jnp.array([steps]), size, **kw)[0]) == y.shape[1]


# (size, stride or None)
POOL_CASES = [(3, None), (3, 1), (2, 3), (4, 2), (1, None)]


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
@pytest.mark.parametrize("case", POOL_CASES, ids=lambda c: "p{}s{}".format(*c))
def test_max_pool1d_matches_reference(padding: str, case) -> None:
    size, stride = case
    rng = np.random.default_rng(size * 10 + (stride or 0))
    x = rng.normal(size=(4, 9, 3)).astype(np.float32)
    lengths = [9, 4, 1, 0]
    _close(
        ops.max_pool1d(jnp.asarray(x), size, stride, padding),
        ref.max_pool1d(x, size, stride, padding),
    )
    y = ops.max_pool1d(jnp.asarray(x), size, stride, padding, lengths=jnp.asarray(lengths))
    _close(y, ref.max_pool1d(x, size, stride, padding, lengths=lengths))


def test_mask_padding_and_output_lengths() -> None:
    x = jnp.ones((3, 4, 2))
    masked = ops.mask_padding(x, jnp.array([4, 1, 0]), value=-2.0)
    np.testing.assert_array_equal(masked[:, :, 0], [[1, 1, 1, 1], [1, -2, -2, -2], [-2] * 4])
    assert ops.mask_padding(x, None) is x
    lengths = jnp.array([0, 1, 2, 5, 9, 10])
    for size, stride, padding, dilation in [
        (3, 1, "VALID", 1),
        (3, 2, "SAME", 1),
        (2, 3, "VALID", 2),
    ]:
        expected = [
            ref.conv_output_length(int(n), size, stride, padding, dilation) for n in lengths
        ]
        got = ops.output_lengths(lengths, size, stride=stride, padding=padding, dilation=dilation)
        np.testing.assert_array_equal(got, expected)


# ---------------------------------------------------------------------------------------------
# Gradients, in float64
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", PATHS)
def test_recurrence_gradients(path: str) -> None:
    """check_grads of all three recurrences, forward and reverse, with lengths (0 included) and
    an initial state, in one compiled function (compilation dominates the run time)."""
    rng = np.random.default_rng(3)
    with jax.enable_x64(True):
        params = {kind: _params(kind, 3, 4, 3, jnp.float64) for kind in KINDS}
        xs = jnp.asarray(rng.normal(size=(3, 5, 3)))
        h0 = {kind: _initial_state(kind, rng, 3, 4) for kind in KINDS}
        h0 = jax.tree_util.tree_map(lambda a: jnp.asarray(a, jnp.float64), h0)
        lengths = jnp.array([5, 0, 3])

        def run(params, xs, h0):
            out = {}
            for kind in KINDS:
                fn = ops.recurrence(kind, reference=PATHS[path])
                p, s = params[kind], h0[kind]
                out[kind] = (
                    fn(p, xs, lengths, initial_state=s),
                    fn(p, xs, lengths, reverse=True, initial_state=s),
                )
            return out

        check_grads(jax.jit(run), (params, xs, h0), order=1, modes=("rev",))


def test_conv_and_pool_gradients() -> None:
    rng = np.random.default_rng(4)
    with jax.enable_x64(True):
        x = jnp.asarray(rng.normal(size=(2, 7, 3)))
        kernel = jnp.asarray(rng.normal(size=(3, 3, 2)))
        bias = jnp.asarray(rng.normal(size=(2,)))
        lengths = jnp.array([7, 4])

        def conv(x, kernel, bias):
            return ops.conv1d(x, kernel, bias, stride=2, padding="SAME", dilation=2)

        check_grads(jax.jit(conv), (x, kernel, bias), order=1, modes=("rev",))
        check_grads(
            jax.jit(lambda x: ops.max_pool1d(x, 3, 2, "SAME")), (x,), order=1, modes=("rev",)
        )
        check_grads(
            jax.jit(lambda x: ops.max_pool1d(x, 2, lengths=lengths)), (x,), order=1, modes=("rev",)
        )


# (batch, steps): taken whole, and in chunks of rows with a remainder (7 rows of 700 steps: 2
# rows a chunk at conv_ops._TAP_CHUNK_POSITIONS = 2048).
# (dilation, taps): the bfloat16 convs Winograd does not take (dilated, or too many taps).
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
@pytest.mark.parametrize(
    "dilation_taps", [(2, 4), (3, 3), (1, 9)], ids=lambda d: "d{}k{}".format(*d)
)
@pytest.mark.parametrize("shape", [(3, 17), (7, 700)], ids=lambda s: "b{}t{}".format(*s))
def test_bfloat16_conv1d_on_cpu_as_tap_matmuls(padding: str, dilation_taps, shape) -> None:
    """A bfloat16 conv1d on the CPU that Winograd does not take runs as one matmul per tap (the
    conv module's docstring): its output, input gradient and kernel gradient are XLA's float64
    ones on the same bfloat16 inputs, to bfloat16's rounding; its compiled forward holds no
    convolution."""
    (dilation, taps), (batch, steps) = dilation_taps, shape
    rng = np.random.default_rng(steps + dilation)
    x = jnp.asarray(rng.normal(size=(batch, steps, 5)), jnp.bfloat16)
    kernel = jnp.asarray(rng.normal(size=(taps, 5, 3)) * 0.5, jnp.bfloat16)
    kw = {"padding": padding, "dilation": dilation}
    y, vjp = jax.vjp(lambda x, k: ops.conv1d(x, k, **kw), x, kernel)
    dy = jnp.asarray(rng.normal(size=y.shape), jnp.bfloat16)
    with jax.enable_x64(True):
        x64, k64, dy64 = (np.asarray(a, np.float64) for a in (x, kernel, dy))
        y64, vjp64 = jax.vjp(lambda x, k: ops.conv1d(x, k, **kw), x64, k64)
        expected = (y64, *vjp64(dy64))
    for got, want in zip((y, *vjp(dy)), expected, strict=True):
        assert got.dtype == jnp.bfloat16 and got.shape == want.shape
        err = np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want))
        assert err < 2e-2, err
    compiled = jax.jit(lambda x, k: ops.conv1d(x, k, **kw)).lower(x, kernel).compile()
    assert "convolution(" not in compiled.as_text()


# Every kernel size Winograd takes (F(9 - K, K)), both paddings, float32 and bfloat16 (whose
# Winograd runs in float32); (batch, steps) whole, at the shortest VALID input (one output
# step), and in chunks of rows with a remainder (11 x 700: 4 rows a chunk at
# conv_ops._WINOGRAD_CHUNK_POSITIONS = 3200).
@pytest.mark.parametrize("padding", ["VALID", "SAME"])
@pytest.mark.parametrize("taps", [2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("shape", [(3, 17), (2, 0), (11, 700)], ids=lambda s: "b{}t{}".format(*s))
@pytest.mark.parametrize("dtype", ["float32", "bfloat16"])
def test_conv1d_on_cpu_by_winograd(dtype: str, padding: str, taps: int, shape) -> None:
    """A stride-1, undilated conv1d of 2-7 taps on the CPU runs as Winograd's F(m, r)
    (seqclf.ops.winograd): its output, input gradient and kernel gradient are XLA's float64
    ones on the same inputs, to the dtype's rounding; neither its forward nor its backward
    compiles a convolution."""
    batch, steps = shape
    steps = steps or taps  # 0: as short as VALID allows
    rng = np.random.default_rng(steps * 10 + taps)
    x = jnp.asarray(rng.normal(size=(batch, steps, 6)), dtype)
    kernel = jnp.asarray(rng.normal(size=(taps, 6, 5)) * 0.5, dtype)
    bias = jnp.asarray(rng.normal(size=(5,)), dtype)

    def conv(x, k):
        return ops.conv1d(x, k, bias, padding=padding)

    y, vjp = jax.vjp(conv, x, kernel)
    dy = jnp.asarray(rng.normal(size=y.shape), dtype)
    with jax.enable_x64(True):
        x64, k64, dy64 = (np.asarray(a, np.float64) for a in (x, kernel, dy))
        y64, vjp64 = jax.vjp(conv, x64, k64)
        expected = (y64, *vjp64(dy64))
    for got, want in zip((y, *vjp(dy)), expected, strict=True):
        assert got.dtype == dtype and got.shape == want.shape
        err = np.max(np.abs(np.asarray(got, np.float64) - want)) / np.max(np.abs(want))
        assert err < (1e-5 if dtype == "float32" else 1e-2), err
    step = jax.jit(lambda x, k, dy: jax.vjp(conv, x, k)[1](dy))
    assert "convolution(" not in step.lower(x, kernel, dy).compile().as_text()
    assert "convolution(" not in jax.jit(conv).lower(x, kernel).compile().as_text()


def test_winograd_transforms_are_exact_filters() -> None:
    """Aᵀ[(G w) ⊙ (Bᵀ d)] is the r-tap correlation of d for every F(m, r) seqclf uses, in
    float64 (the conv module's float32 path rests on this identity)."""
    rng = np.random.default_rng(0)
    for taps in range(2, winograd_ops.TILE):
        outputs = winograd_ops.TILE - taps + 1
        a_t, g, b_t = winograd_ops.transform_matrices(outputs, taps)
        d, w = rng.normal(size=winograd_ops.TILE), rng.normal(size=taps)
        expected = np.correlate(d, w, mode="valid")
        np.testing.assert_allclose(a_t @ ((g @ w) * (b_t @ d)), expected, rtol=1e-10, atol=1e-12)
    assert not winograd_ops.supports(1) and not winograd_ops.supports(winograd_ops.TILE)


def _pool_by_reduce_window(x, size, lengths=None):
    """max_pool1d as lax.reduce_window alone, differentiated by JAX (select-and-scatter)."""
    x = ops.mask_padding(x, lengths, -jnp.inf)
    y = conv_ops._reduce_window_max(x, size, size, [(0, 0)])
    if lengths is not None:
        y = ops.mask_padding(y, ops.output_lengths(lengths, size, stride=size))
    return y


@pytest.mark.parametrize("size", [2, 3, 4])
def test_disjoint_max_pool_derivative_matches_select_and_scatter(size: int) -> None:
    """Non-overlapping pooling has its own (elementwise) derivative: it must route every
    gradient to the same step as JAX's own, ties included (they go to the earliest step)."""
    rng = np.random.default_rng(size)
    # Few distinct values, many of them 0 after relu, so most windows hold ties; T = 11 leaves
    # steps that fall into no window; the second row's padding makes whole windows -inf.
    x = jnp.asarray(np.maximum(rng.integers(-2, 3, size=(2, 11, 5)), 0), jnp.float32)
    lengths = jnp.array([11, 5])
    cotangent = jnp.asarray(rng.normal(size=(2, 11 // size, 5)), jnp.float32)
    for lens in (None, lengths):

        def loss(pool, x, lens=lens):
            return jnp.sum(pool(x) * cotangent)

        def ours(x, lens=lens):
            return ops.max_pool1d(x, size, lengths=lens)

        def theirs(x, lens=lens):
            return _pool_by_reduce_window(x, size, lens)

        np.testing.assert_array_equal(ours(x), theirs(x))
        grad = jax.jit(jax.grad(functools.partial(loss, ours)))(x)
        np.testing.assert_array_equal(grad, jax.grad(functools.partial(loss, theirs))(x))
        if lens is None:  # each window's gradient lands on one step, not split among ties
            assert np.count_nonzero(grad) == cotangent.size
        tangent = jnp.asarray(rng.normal(size=x.shape), jnp.float32)
        _, forward = jax.jvp(ours, (x,), (tangent,))
        _, expected = jax.jvp(theirs, (x,), (tangent,))
        np.testing.assert_array_equal(forward, expected)


# ---------------------------------------------------------------------------------------------
# Padding invariance: a sequence's results do not depend on its padding or its neighbours.
# ---------------------------------------------------------------------------------------------

LENGTHS = [5, 1, 0, 3]


def _batches(rng: np.random.Generator, seqs, totals=(5, 8)):
    """The same sequences padded to each total length, in two orders, with random padding.

    Yields ``(order, xs, lengths)``: row ``r`` of ``xs`` (B, total, F) holds ``seqs[order[r]]``.
    """
    for total in totals:
        for order in (list(range(len(seqs))), [*range(1, len(seqs)), 0][::-1]):
            xs = _batch(rng, [len(seqs[i]) for i in order], total, seqs[0].shape[-1])
            for row, i in enumerate(order):
                xs[row, : len(seqs[i])] = seqs[i]
            yield order, jnp.asarray(xs), jnp.asarray([len(seqs[i]) for i in order])


def _row(tree, row: int):
    return jax.tree_util.tree_map(lambda a: np.asarray(a)[row], tree)


def _check_invariance(results, lengths_of) -> None:
    """``results``: ``(order, ys, state)`` per batching. Each sequence's outputs over its valid
    steps and its final state agree across batchings, and its padded outputs are zero."""
    first: dict[int, tuple] = {}
    for order, ys, state in results:
        for row, i in enumerate(order):
            n = lengths_of[i]
            got = (np.asarray(ys)[row, :n], _row(state, row))
            assert not np.asarray(ys)[row, n:].any(), "padded outputs must be zero"
            if i in first:
                _close(got, first[i])
            else:
                first[i] = got


@functools.partial(jax.jit, static_argnums=(0, 1))
def _both_ways(kind: str, reference: bool, params, xs, lengths):
    run = ops.recurrence(kind, reference=reference)
    return run(params, xs, lengths), run(params, xs, lengths, reverse=True)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_recurrence_padding_invariance(kind: str, path: str) -> None:
    """Forward and reverse; also against the reference, which sees each sequence alone."""
    rng = np.random.default_rng(5)
    params = _params(kind, 3, 4, 5)
    seqs = [rng.normal(size=(n, 3)).astype(np.float32) for n in LENGTHS]
    results = {False: [], True: []}
    for order, xs, lengths in _batches(rng, seqs):
        for reverse, (ys, state) in zip(
            (False, True), _both_ways(kind, PATHS[path], params, xs, lengths), strict=True
        ):
            results[reverse].append((order, ys, state))
    for reverse in (False, True):
        _check_invariance(results[reverse], LENGTHS)
        order, ys, state = results[reverse][0]
        for row, i in enumerate(order):
            ref_ys, ref_state = ref.recurrence(kind, params, seqs[i][None], reverse=reverse)
            _close(np.asarray(ys)[row, : LENGTHS[i]], ref_ys[0])
            _close(_row(state, row), _row(ref_state, 0))


def _stack_params(kind: str, features: int, hidden: int, num_layers: int, bidirectional: bool):
    layers = []
    for k in range(num_layers):
        size = features if k == 0 else hidden * (2 if bidirectional else 1)
        fwd = _params(kind, size, hidden, 2 * k)
        bwd = _params(kind, size, hidden, 2 * k + 1)
        layers.append((fwd, bwd) if bidirectional else fwd)
    return layers


def _reference_stack(kind: str, layers, xs, lengths, bidirectional: bool):
    states = []
    for layer in layers:
        if bidirectional:
            ys_f, s_f = ref.recurrence(kind, layer[0], xs, lengths)
            ys_b, s_b = ref.recurrence(kind, layer[1], xs, lengths, reverse=True)
            xs = np.concatenate([ys_f, ys_b], axis=-1)
            states.append((s_f, s_b))
        else:
            xs, s = ref.recurrence(kind, layer, xs, lengths)
            states.append(s)
    return xs, states


_stack = jax.jit(
    ops.recurrent_stack, static_argnums=0, static_argnames=("bidirectional", "reference")
)


@pytest.mark.parametrize("path", PATHS)
@pytest.mark.parametrize(
    "kind,bidirectional", [(k, True) for k in KINDS] + [("lstm", False)], ids=str
)
def test_recurrent_stack(kind: str, bidirectional: bool, path: str) -> None:
    """Two stacked layers: against the reference, and padding-invariant."""
    rng = np.random.default_rng(6)
    layers = _stack_params(kind, 3, 4, 2, bidirectional)
    seqs = [rng.normal(size=(n, 3)).astype(np.float32) for n in LENGTHS]
    results = []
    for order, xs, lengths in _batches(rng, seqs, totals=(5, 7)):
        ys, states = _stack(
            kind, layers, xs, lengths, bidirectional=bidirectional, reference=PATHS[path]
        )
        assert ys.shape == (*xs.shape[:2], 8 if bidirectional else 4)
        results.append((order, ys, states))
    _check_invariance(results, LENGTHS)
    order, ys, states = results[0]
    lengths = [LENGTHS[i] for i in order]
    xs = _batch(rng, lengths, 5, 3)
    for row, i in enumerate(order):
        xs[row, : lengths[row]] = seqs[i]
    ref_ys, ref_states = _reference_stack(kind, layers, xs, lengths, bidirectional)
    _close(ys, ref_ys)
    _close(states, ref_states)


@pytest.mark.parametrize("padding", ["VALID", "SAME"])
def test_conv_pool_padding_invariance(padding: str) -> None:
    """conv1d (after mask_padding) -> mask -> max_pool1d, lengths carried by output_lengths."""
    rng = np.random.default_rng(7)
    kernel = jnp.asarray(rng.normal(size=(3, 3, 2)), jnp.float32)
    bias = jnp.asarray(rng.normal(size=(2,)), jnp.float32)
    lengths_in = [9, 4, 1, 0, 6]
    conv_kw = {"stride": 2, "padding": padding, "dilation": 2}

    def model(x, lengths):
        y = ops.conv1d(ops.mask_padding(x, lengths), kernel, bias, **conv_kw)
        lengths = ops.output_lengths(lengths, 3, **conv_kw)
        y = ops.max_pool1d(y, 2, 1, padding, lengths=lengths)
        return y, ops.output_lengths(lengths, 2, stride=1, padding=padding)

    def alone(seq):
        x = jnp.asarray(seq)[None]
        y = ops.conv1d(x, kernel, bias, **conv_kw)
        return ops.max_pool1d(y, 2, 1, padding)[0]

    model, alone = jax.jit(model), jax.jit(alone)
    seqs = [rng.normal(size=(n, 3)).astype(np.float32) for n in lengths_in]
    expected = [alone(s) for s in seqs]
    for order, xs, lengths in _batches(rng, seqs, totals=(9, 14)):
        y, out_lengths = model(xs, lengths)
        for row, i in enumerate(order):
            n = int(out_lengths[row])
            assert n == expected[i].shape[0]
            _close(np.asarray(y)[row, :n], expected[i])
            assert not np.asarray(y)[row, n:].any()


# ---------------------------------------------------------------------------------------------
# jit, grad and vmap compose with every op
# ---------------------------------------------------------------------------------------------


def _op_cases():
    """name -> (function of (w, x, lengths) returning an array, w, x (B, T, F), lengths (B,))."""
    rng = np.random.default_rng(8)
    x = jnp.asarray(rng.normal(size=(3, 6, 2)), jnp.float32)
    lengths = jnp.array([6, 2, 0])
    cases = {}

    def recurrences(p, x, lengths, reference=False):  # the fast path (the reference: below)
        """All recurrences in one function (one compilation): a reverse simple RNN, a forward
        LSTM and a bidirectional GRU through recurrent_stack, all with lengths."""
        ys, h = ops.recurrence("rnn", reference=reference)(p["rnn"], x, lengths, reverse=True)
        out = ys.sum(axis=1) + h
        ys, (h, c) = ops.recurrence("lstm", reference=reference)(p["lstm"], x, lengths)
        out = out + ys.sum(axis=1) + h + c
        ys, _ = ops.recurrent_stack(
            "gru", p["gru"], x, lengths, bidirectional=True, reference=reference
        )
        return out + ys.sum(axis=1)[:, :3] + ys.sum(axis=1)[:, 3:]

    params = {
        "rnn": _params("rnn", 2, 3, 8),
        "lstm": _params("lstm", 2, 3, 9),
        "gru": _stack_params("gru", 2, 3, 1, True),
    }
    cases["rnn+lstm+gru stack"] = (recurrences, params, x, lengths)

    kernel = jnp.asarray(rng.normal(size=(3, 2, 4)), jnp.float32)
    cases["conv1d"] = (
        lambda k, x, lengths: ops.conv1d(ops.mask_padding(x, lengths), k, padding="SAME"),
        kernel,
        x,
        lengths,
    )
    cases["max_pool1d"] = (
        lambda w, x, lengths: ops.max_pool1d(x * w, 2, lengths=lengths),
        jnp.float32(1.5),
        x,
        lengths,
    )
    cases["reverse_padded"] = (
        lambda w, x, lengths: ops.reverse_padded(x * w, lengths),
        jnp.float32(0.5),
        x,
        lengths,
    )
    return cases


OP_CASES = _op_cases()


def _loss(fn):
    def loss(w, x, lengths):
        return jnp.sum(fn(w, x, lengths) ** 2)

    return loss


@pytest.mark.parametrize("name", sorted(OP_CASES))
def test_jit_grad_vmap_compose(name: str) -> None:
    fn, w, x, lengths = OP_CASES[name]
    # jit (the reference tests above run jitted too, and test_eager_matches_reference eagerly).
    jitted = jax.jit(fn)
    assert np.isfinite(jitted(w, x, lengths)).all()
    # grad (under jit): finite, and nothing reaches the padded input steps.
    grad = jax.jit(jax.grad(_loss(fn), argnums=(0, 1)))
    grads = grad(w, x, lengths)
    assert all(np.isfinite(g).all() for g in jax.tree_util.tree_leaves(grads))
    if name != "reverse_padded":  # which moves valid steps and leaves padding where it is
        dx = np.asarray(grads[1])
        for row, n in enumerate(np.asarray(lengths)):
            assert not dx[row, n:].any()
    # vmap over a new leading axis of inputs and lengths (batches of batches), against a loop
    # over the same jitted function.
    xs = jnp.stack([x, x[::-1] * 2.0])
    lens = jnp.stack([lengths, lengths[::-1]])
    values = jax.jit(jax.vmap(fn, in_axes=(None, 0, 0)))(w, xs, lens)
    _close(values, jnp.stack([jitted(w, xs[i], lens[i]) for i in range(2)]))


# ---------------------------------------------------------------------------------------------
# Shapes and parameter counts
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("kind,gates", [("rnn", 1), ("lstm", 4), ("gru", 3)])
def test_param_shapes_and_counts(kind: str, gates: int) -> None:
    features, hidden = 5, 7
    init = functools.partial(ops.init_params, kind=kind, input_size=features, hidden_size=hidden)
    # Real values (one compilation) for the LSTM only; shapes and dtypes for all.
    params = jax.jit(init)(_key(0)) if kind == "lstm" else jax.eval_shape(init, _key(0))
    assert {k: v.shape for k, v in params.items()} == {
        "w_ih": (features, gates * hidden),
        "w_hh": (hidden, gates * hidden),
        "b_ih": (gates * hidden,),
        "b_hh": (gates * hidden,),
    }
    # PyTorch's count: G*H*(F + H) weights and 2*G*H biases (LSTM: 4H(F+H) + 8H).
    count = sum(np.prod(v.shape) for v in params.values())
    assert count == gates * hidden * (features + hidden) + 2 * gates * hidden
    assert all(v.dtype == jnp.float32 for v in params.values())
    if kind == "lstm":  # uniform in ±1/√H like PyTorch, and not all equal
        bound = 1 / np.sqrt(hidden)
        assert all(np.abs(v).max() <= bound and np.std(v) > 0.1 * bound for v in params.values())
    if kind == "gru":
        bf16 = jax.eval_shape(functools.partial(init, dtype=jnp.bfloat16), _key(0))
        assert all(v.dtype == jnp.bfloat16 for v in bf16.values())
    # Shapes only: eval_shape traces without compiling.
    ys, state = jax.eval_shape(ops.recurrence(kind), params, jnp.ones((2, 4, features)))
    assert ys.shape == (2, 4, hidden)
    assert ops.final_hidden(kind, state).shape == (2, hidden)


def test_conv_and_pool_shapes() -> None:
    x = jnp.ones((2, 10, 3))
    kernel = jnp.ones((3, 3, 8))
    assert ops.conv1d(x, kernel).shape == (2, 8, 8)
    assert ops.conv1d(x, kernel, padding="same").shape == (2, 10, 8)
    assert ops.conv1d(x, kernel, padding="SAME", stride=3).shape == (2, 4, 8)
    assert ops.conv1d(x, kernel, dilation=4).shape == (2, 2, 8)
    assert ops.max_pool1d(x, 2).shape == (2, 5, 3)
    assert ops.max_pool1d(x, 3).shape == (2, 3, 3)
    assert ops.max_pool1d(x, 3, padding="SAME").shape == (2, 4, 3)


# ---------------------------------------------------------------------------------------------
# Errors
# ---------------------------------------------------------------------------------------------


def test_clear_errors() -> None:
    params = _params("lstm", 5, 4)
    with pytest.raises(ValueError, match="xs has 3 features but w_ih expects 5"):
        ops.lstm(params, jnp.ones((2, 6, 3)))
    with pytest.raises(ValueError, match=r"lengths must have shape \(batch,\) = \(2,\)"):
        ops.lstm(params, jnp.ones((2, 6, 5)), jnp.ones((2, 1), int))
    with pytest.raises(ValueError, match=r"lengths must have shape"):
        ops.gru(_params("gru", 5, 4), jnp.ones((2, 6, 5)), jnp.array([1, 2, 3]))
    with pytest.raises(ValueError, match=r"xs must be \(batch, time, features\)"):
        ops.simple_rnn(_params("rnn", 5, 4), jnp.ones((6, 5)))
    with pytest.raises(
        ValueError, match=r"kind must be one of \['gru', 'lstm', 'rnn'\], got 'cnn'"
    ):
        ops.init_params(_key(0), "cnn", 5, 4)
    with pytest.raises(ValueError, match="must be positive"):
        ops.init_params(_key(0), "gru", 0, 4)
    x, kernel = jnp.ones((1, 6, 2)), jnp.ones((3, 2, 4))
    for call in (
        lambda: ops.conv1d(x, kernel, padding="causal"),
        lambda: ops.max_pool1d(x, 2, padding="full"),
        lambda: ops.output_lengths(jnp.array([3]), 2, padding="valid "),
    ):
        with pytest.raises(ValueError, match="padding must be 'VALID' or 'SAME', got"):
            call()
    with pytest.raises(ValueError, match=r"kernel must be \(K, C_in=2, C_out\)"):
        ops.conv1d(x, jnp.ones((3, 5, 4)))
    with pytest.raises(ValueError, match="stride and dilation must be >= 1"):
        ops.conv1d(x, kernel, stride=0)
    with pytest.raises(ValueError, match="size and stride must be >= 1"):
        ops.max_pool1d(x, 0)


# ---------------------------------------------------------------------------------------------
# Two bugs found by these tests, fixed since: inf/NaN padding poisoned gradients; a bad kind in
# recurrent_stack raised a bare KeyError.
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("gru", [ops.gru, ops.gru_reference], ids=PATHS)
def test_gradients_ignore_nonfinite_padding(gru) -> None:
    params = _params("gru", 2, 3)
    xs = np.ones((2, 4, 2), np.float32)
    xs[1, 2:] = np.inf  # padding of the second sequence
    lengths = jnp.array([4, 2])

    def loss(p):
        ys, state = gru(p, jnp.asarray(xs), lengths)
        return ys.sum() + state.sum()

    value, grads = jax.jit(jax.value_and_grad(loss))(params)
    assert np.isfinite(value)  # the forward pass is fine
    assert all(np.isfinite(g).all() for g in grads.values())


def test_recurrent_stack_bad_kind_message() -> None:
    with pytest.raises(ValueError, match="kind must be one of"):
        ops.recurrent_stack("lstn", [_params("lstm", 2, 3)], jnp.ones((1, 2, 2)))


# ---------------------------------------------------------------------------------------------
# Structure: seqclf.ops has no import cycle (the fast and the reference recurrences share
# seqclf.ops._driver instead of importing each other)
# ---------------------------------------------------------------------------------------------


def test_ops_modules_import_no_cycle() -> None:
    import ast
    from pathlib import Path

    folder = Path(ops.__file__).parent
    graph: dict[str, set[str]] = {}
    for path in folder.glob("*.py"):
        if path.stem == "__init__":
            continue
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):  # imports inside functions too
            if isinstance(node, ast.ImportFrom) and node.module:
                if node.module.startswith("seqclf.ops."):
                    names.add(node.module.removeprefix("seqclf.ops."))
                elif node.module == "seqclf.ops":
                    names |= {a.name for a in node.names}
            elif isinstance(node, ast.Import):
                names |= {
                    a.name.removeprefix("seqclf.ops.")
                    for a in node.names
                    if a.name.startswith("seqclf.ops.")
                }
        graph[path.stem] = names
    assert {"recurrent", "fused", "_driver"} <= set(graph)
    assert "recurrent" not in graph["fused"] and "fused" not in graph["_driver"]

    def visit(module: str, trail: tuple[str, ...]) -> None:
        assert module not in trail, f"import cycle: {' -> '.join((*trail, module))}"
        for dep in graph.get(module, ()):
            visit(dep, (*trail, module))

    for module in graph:
        visit(module, ())
