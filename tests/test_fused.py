"""The fast path (``seqclf.ops.lstm`` / ``gru`` / ``simple_rnn``: the custom VJPs of
seqclf.ops.fused) against the autodiffed reference scans (``*_reference``): outputs, final states
and every gradient, with padding, reverse and unroll; the forward-only path; float64 numerical
gradients; arbitrary masks; jit and vmap; bfloat16."""

from __future__ import annotations

import jax
import jax.extend
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from seqclf import ops
from seqclf.ops import fused

KINDS = ("rnn", "lstm", "gru")
FAST = {kind: ops.recurrence(kind) for kind in KINDS}
REFERENCE = {kind: ops.recurrence(kind, reference=True) for kind in KINDS}
TOL = 1e-5


def _params(kind: str, features: int, hidden: int, seed: int = 0, dtype=np.float32):
    """Uniform in ±1/√H like ``ops.init_params``, drawn with NumPy (no per-shape compile)."""
    rng = np.random.default_rng(seed)
    g = ops.GATES[kind] * hidden
    shapes = {"w_ih": (features, g), "w_hh": (hidden, g), "b_ih": (g,), "b_hh": (g,)}
    bound = 1 / np.sqrt(hidden)
    return {k: jnp.asarray(rng.uniform(-bound, bound, s).astype(dtype)) for k, s in shapes.items()}


def _state(kind: str, rng: np.random.Generator, batch: int, hidden: int, dtype=np.float32):
    def draw():
        return jnp.asarray(rng.normal(size=(batch, hidden)).astype(dtype))

    return (draw(), draw()) if kind == "lstm" else draw()


def _loss_and_grads(fn, params, xs, lengths, state, reverse, unroll, seed=1, **kw):
    """Outputs, final state and the gradients of a random linear functional of both."""

    def loss(params, xs, state):
        kwargs = dict(reverse=reverse, initial_state=state, unroll=unroll, **kw)
        ys, final = fn(params, xs, lengths, **kwargs)
        rng = np.random.default_rng(seed)
        leaves = [ys, *jax.tree_util.tree_leaves(final)]
        weights = [rng.normal(size=leaf.shape).astype(leaf.dtype) for leaf in leaves]
        return sum(jnp.sum(w * leaf) for w, leaf in zip(weights, leaves, strict=True)), (ys, final)

    grads, out = jax.jit(jax.grad(loss, argnums=(0, 1, 2), has_aux=True))(params, xs, state)
    return out, grads


def _close(actual, expected, tol: float = TOL) -> None:
    flat_a, tree_a = jax.tree_util.tree_flatten(actual)
    flat_e, tree_e = jax.tree_util.tree_flatten(expected)
    assert tree_a == tree_e
    for a, e in zip(flat_a, flat_e, strict=True):
        np.testing.assert_allclose(np.asarray(a), np.asarray(e), rtol=0, atol=tol)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("lengths", "reverse", "unroll", "remat"),
    [
        (None, False, 1, False),
        ([6, 0, 1, 4], True, 2, False),
        ([2, 6, 0, 5], False, 1, True),
        ([3, 6, 6, 1], False, 4, False),
    ],
)
def test_matches_reference(kind, lengths, reverse, unroll, remat):
    """Lengths 0, 1 and full; reverse; unroll > 1, also one that does not divide the 6 steps;
    remat: all equal the autodiffed scan. (On the CPU the LSTM runs its shared-buffer loops
    with unroll=1 and its separate-buffer ones with unroll > 1: both are covered.)"""
    rng = np.random.default_rng(0)
    batch, steps, features, hidden = 4, 6, 3, 5
    params = _params(kind, features, hidden)
    xs = jnp.asarray(rng.normal(size=(batch, steps, features)).astype(np.float32))
    lengths = None if lengths is None else jnp.asarray(lengths)
    state = _state(kind, rng, batch, hidden)
    expected = _loss_and_grads(REFERENCE[kind], params, xs, lengths, state, reverse, 1)
    actual = _loss_and_grads(FAST[kind], params, xs, lengths, state, reverse, unroll, remat=remat)
    _close(actual, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_steps(kind):
    """A (B, 0, F) input: empty outputs, the initial state back, and the reference's gradients."""
    rng = np.random.default_rng(4)
    params = _params(kind, 3, 5)
    xs = jnp.zeros((2, 0, 3), jnp.float32)
    state = _state(kind, rng, 2, 5)
    expected = _loss_and_grads(REFERENCE[kind], params, xs, None, state, False, 1)
    actual = _loss_and_grads(FAST[kind], params, xs, None, state, False, 1)
    assert actual[0][0].shape == (2, 0, 5)
    _close(actual, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_numerical_gradients_float64(kind):
    with jax.enable_x64(True):
        rng = np.random.default_rng(2)
        params = _params(kind, 2, 3, dtype=np.float64)
        xs = jnp.asarray(rng.normal(size=(3, 4, 2)))
        state = _state(kind, rng, 3, 3, np.float64)
        lengths = jnp.asarray([4, 1, 2])

        def f(params, xs, state):
            return FAST[kind](params, xs, lengths, reverse=True, initial_state=state)

        check_grads(jax.jit(f), (params, xs, state), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def _masked_scan_reference(kind, params, xs, mask, state):
    """Any (T, B, 1) mask, not only a prefix: the state is held and the output zero where False."""
    cell = {"rnn": ops.rnn_cell, "lstm": ops.lstm_cell, "gru": ops.gru_cell}[kind]
    xw = jnp.einsum("tbf,fg->tbg", xs, params["w_ih"]) + params["b_ih"]

    def step(carry, inputs):
        xw_t, m_t = inputs
        new = cell(params, carry, xw_t)
        carry = jax.tree_util.tree_map(lambda n, o: jnp.where(m_t, n, o), new, carry)
        return carry, jnp.where(m_t, ops.final_hidden(kind, new), 0.0)

    final, ys = jax.lax.scan(step, state, (xw, mask))
    return (ys, *jax.tree_util.tree_leaves(final))


@pytest.mark.parametrize("kind", KINDS)
def test_recurrence_with_arbitrary_mask(kind):
    """The time-major recurrences of seqclf.ops.fused with a mask that is not a prefix: values
    (forward-only and for the gradient) and the gradients of every argument."""
    rng = np.random.default_rng(3)
    steps, batch, features, hidden = 5, 3, 2, 4
    params = _params(kind, features, hidden)
    xs = jnp.asarray(rng.normal(size=(steps, batch, features)).astype(np.float32))
    mask = jnp.asarray(rng.random((steps, batch, 1)) < 0.6)
    state = tuple(jax.tree_util.tree_leaves(_state(kind, rng, batch, hidden)))
    recurrence = {
        "rnn": fused.rnn_recurrence,
        "lstm": fused.lstm_recurrence,
        "gru": fused.gru_recurrence,
    }[kind]

    def fast(params, xs, state):
        p = params
        return recurrence(p["w_ih"], p["w_hh"], p["b_ih"], p["b_hh"], xs, mask, *state)

    def reference(params, xs, state):
        return _masked_scan_reference(kind, params, xs, mask, state if kind == "lstm" else state[0])

    def run(fn):
        def loss(params, xs, state):
            out = fn(params, xs, state)
            ws = [jnp.asarray(np.cos(np.arange(o.size)).reshape(o.shape), o.dtype) for o in out]
            return sum(jnp.sum(w * o) for w, o in zip(ws, out, strict=True)), out

        return jax.grad(loss, argnums=(0, 1, 2), has_aux=True)(params, xs, state)

    expected = jax.jit(run, static_argnums=0)(reference)
    _close(jax.jit(run, static_argnums=0)(fast), expected)
    _close(jax.jit(fast)(params, xs, state), expected[1])  # forward only


def test_jit_and_vmap_compose():
    rng = np.random.default_rng(4)
    params = _params("lstm", 3, 4)
    xs = jnp.asarray(rng.normal(size=(2, 3, 5, 3)).astype(np.float32))  # (vmap, B, T, F)
    lengths = jnp.asarray([[5, 1, 0], [2, 5, 3]])

    def loss(params, xs, lengths):
        return jnp.sum(ops.lstm(params, xs, lengths, unroll=2)[0] ** 2)

    def ref_loss(params, xs, lengths):
        return jnp.sum(ops.lstm_reference(params, xs, lengths)[0] ** 2)

    per_example = jax.jit(jax.vmap(jax.grad(loss), in_axes=(None, 0, 0)))(params, xs, lengths)
    first = jax.jit(jax.grad(ref_loss))(params, xs[0], lengths[0])
    _close(jax.tree_util.tree_map(lambda a: a[0], per_example), first)


@pytest.mark.parametrize("kind", KINDS)
def test_nonfinite_padding_is_ignored(kind):
    """inf/NaN in padded steps changes neither the outputs nor the (finite) gradients."""
    rng = np.random.default_rng(5)
    params = _params(kind, 3, 4)
    clean = rng.normal(size=(2, 4, 3)).astype(np.float32)
    dirty = clean.copy()
    dirty[0, 2:] = np.inf
    dirty[1, 3:] = np.nan
    lengths = jnp.asarray([2, 3])

    def grads(xs):
        def loss(params, xs):
            ys, final = FAST[kind](params, xs, lengths, reverse=True)
            return jnp.sum(ys**2) + sum(jnp.sum(s) for s in jax.tree_util.tree_leaves(final))

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, jnp.asarray(xs))

    (value, (g_params, g_xs)), expected = grads(dirty), grads(clean)
    _close((value, g_params), (expected[0], expected[1][0]))
    assert np.all(np.isfinite(np.asarray(g_xs)))


def test_rejects_bad_shapes():
    params = _params("gru", 3, 4)
    with pytest.raises(ValueError, match="features"):
        ops.gru(params, jnp.zeros((2, 5, 7)))
    with pytest.raises(ValueError, match="lengths"):
        ops.gru(params, jnp.zeros((2, 5, 3)), jnp.asarray([1, 2, 3]))


# ---------------------------------------------------------------------------------------------
# Forward only (no gradient asked): the custom VJP's primal, the lean path inference runs
# ---------------------------------------------------------------------------------------------


def _all_kinds(reference: bool, params, xs, lengths):
    """Every kind, forward and reverse, in one function (one compilation)."""
    fns = REFERENCE if reference else FAST
    return {
        kind: (
            fns[kind](params[kind], xs, lengths),
            fns[kind](params[kind], xs, lengths, reverse=True),
        )
        for kind in KINDS
    }


def test_forward_only_matches_reference_and_the_gradient_path():
    rng = np.random.default_rng(6)
    params = {kind: _params(kind, 3, 5, seed=i) for i, kind in enumerate(KINDS)}
    xs = jnp.asarray(rng.normal(size=(4, 6, 3)).astype(np.float32))
    lengths = jnp.asarray([6, 0, 1, 4])
    run = jax.jit(_all_kinds, static_argnums=0)
    lean = run(False, params, xs, lengths)
    expected = run(True, params, xs, lengths)
    _close(lean, expected)
    # The outputs the gradient path computes (the custom VJP's forward rule) are the same.
    for_grad = jax.jit(lambda p: jax.vjp(lambda p: _all_kinds(False, p, xs, lengths), p)[0])
    _close(for_grad(params), expected)


def _shapes_in(jaxpr) -> set[tuple[int, ...]]:
    """Every array shape a jaxpr (and its sub-jaxprs: scan bodies, custom VJPs) produces."""
    shapes = set()
    for eqn in jaxpr.eqns:
        shapes |= {tuple(v.aval.shape) for v in eqn.outvars if hasattr(v.aval, "shape")}
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            shapes |= _shapes_in(sub)
    return shapes


@pytest.mark.parametrize("kind", KINDS)
def test_forward_only_writes_no_projection_buffer(kind):
    """Without a gradient no (T, B, G*H) projection (or activations) buffer is made: each step
    projects its own input; with one, the gradient path makes it (so the check can fail)."""
    steps, batch, features, hidden = 7, 3, 2, 5
    params = _params(kind, features, hidden)
    xs, lengths = jnp.ones((batch, steps, features)), jnp.asarray([7, 2, 0])
    width = ops.GATES[kind] * hidden
    big = {(steps * batch, width)}  # the flat projection matmul's output
    if kind != "rnn":  # the simple RNN's (T, B, H) projection has the outputs' shape
        big.add((steps, batch, width))

    def forward(params, xs):
        return FAST[kind](params, xs, lengths)

    def gradient(params, xs):
        return jax.grad(lambda p: jnp.sum(forward(p, xs)[0]))(params)

    assert not big & _shapes_in(jax.make_jaxpr(forward)(params, xs).jaxpr)
    assert big & _shapes_in(jax.make_jaxpr(gradient)(params, xs).jaxpr)


def test_forward_mode_autodiff_is_the_reference_s_job():
    """The documented rule: jax.jvp of the fast path raises (a custom VJP); the reference runs."""
    params, xs = _params("lstm", 2, 3), jnp.ones((1, 4, 2))
    tangent = jax.tree_util.tree_map(jnp.ones_like, params)
    with pytest.raises(TypeError, match="custom_vjp"):
        jax.jvp(lambda p: ops.lstm(p, xs)[0], (params,), (tangent,))
    _, out = jax.jvp(lambda p: ops.lstm_reference(p, xs)[0], (params,), (tangent,))
    assert out.shape == (1, 4, 3) and np.all(np.isfinite(out))


# ---------------------------------------------------------------------------------------------
# bfloat16: bfloat16 matmul operands, float32 accumulation, state and master weights
# ---------------------------------------------------------------------------------------------

# bfloat16 keeps 8 significant bits: its spacing just below 1 is 2**-8 ~ 0.004, so outputs
# in (-1, 1) round by up to ~0.002; products of such operands summed in float32 over a few steps
# stay within BF16_TOL of float32 (measured: <= 0.0035 here).
BF16_TOL = 1e-2
BF16_GRAD_RTOL = 2e-2  # of the largest |gradient| of each leaf (measured: <= 0.01)


LENGTHS_BF16 = jnp.asarray([12, 3, 0, 7])


def _bf16_grads(kind, reference):
    """Jitted gradients (w.r.t. params and xs) of the outputs and final states, and both."""
    fn = (REFERENCE if reference else FAST)[kind]

    def loss(params, xs):
        ys, state = fn(params, xs, LENGTHS_BF16, reverse=True)
        total = jnp.sum(jnp.sin(ys.astype(jnp.float32)))
        return total + sum(jnp.sum(s) for s in jax.tree_util.tree_leaves(state)), (ys, state)

    return jax.jit(jax.grad(loss, argnums=(0, 1), has_aux=True))


@pytest.mark.parametrize("kind", KINDS)
def test_bfloat16_is_within_tolerance_of_float32(kind):
    """Float32 master weights and bfloat16 inputs against the float32 reference on the same
    (bfloat16-representable) inputs."""
    rng = np.random.default_rng(7)
    params = _params(kind, 8, 16, seed=1)
    xs = jnp.asarray(rng.normal(size=(4, 12, 8)), jnp.bfloat16)
    (g_params, g_xs), (ys, state) = _bf16_grads(kind, False)(params, xs)
    (e_params, _), (e_ys, e_state) = _bf16_grads(kind, True)(params, xs.astype(jnp.float32))
    # The dtype rules: outputs bfloat16, state float32, gradients in each argument's dtype.
    assert ys.dtype == jnp.bfloat16 and g_xs.dtype == jnp.bfloat16
    assert {s.dtype for s in jax.tree_util.tree_leaves(state)} == {jnp.dtype(jnp.float32)}
    assert {g.dtype for g in g_params.values()} == {jnp.dtype(jnp.float32)}
    _close(ys.astype(jnp.float32), e_ys, BF16_TOL)
    _close(state, e_state, BF16_TOL)
    for name, g in g_params.items():
        assert np.all(np.isfinite(g)), name
        scale = float(jnp.max(jnp.abs(e_params[name])))
        _close(g, e_params[name], BF16_GRAD_RTOL * scale)
    # Forward only (the lean path) gives the same outputs as the gradient path.
    lean = jax.jit(lambda p, x: FAST[kind](p, x, LENGTHS_BF16, reverse=True))(params, xs)
    _close((lean[0].astype(jnp.float32), lean[1]), (ys.astype(jnp.float32), state), BF16_TOL / 4)


def _dots(jaxpr) -> list:
    """Every dot_general equation of a jaxpr and its sub-jaxprs."""
    found = [e for e in jaxpr.eqns if e.primitive.name == "dot_general"]
    for eqn in jaxpr.eqns:
        for sub in jax.extend.core.jaxprs_in_params(eqn.params):
            found += _dots(sub)
    return found


@pytest.mark.parametrize("reference", [False, True], ids=["fast", "reference"])
def test_bfloat16_matmuls_take_bfloat16_operands_and_accumulate_in_float32(reference):
    """Every matmul of the fast path, forward only and forward + backward, for all three kinds;
    the reference's forward follows the same rule (its backward is JAX's autodiff)."""
    rng = np.random.default_rng(8)
    lengths = jnp.asarray([5, 2])
    xs = jnp.asarray(rng.normal(size=(2, 5, 3)), jnp.bfloat16)
    fns = REFERENCE if reference else FAST

    def forward(params):
        return [fns[k](params[k], xs, lengths)[0] for k in KINDS]

    def gradient(params):
        return jax.grad(lambda p: sum(jnp.sum(y.astype(jnp.float32)) for y in forward(p)))(params)

    params = {kind: _params(kind, 3, 4) for kind in KINDS}
    for fn in (forward,) if reference else (forward, gradient):
        dots = _dots(jax.make_jaxpr(fn)(params).jaxpr)
        assert len(dots) >= 3
        for eqn in dots:
            assert [v.aval.dtype for v in eqn.invars] == [jnp.bfloat16] * 2, eqn
            assert eqn.params["preferred_element_type"] == jnp.float32, eqn


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16], ids=["float32", "bfloat16"])
def test_recurrent_layer_takes_the_fast_path_in_every_dtype(dtype):
    """seqclf.layers.Recurrent: fused=True runs the custom VJP (bfloat16 too: no silent fallback
    to the scan), fused=False the reference; float32 parameters either way, equal outputs."""
    from seqclf.layers import Recurrent

    xs = jnp.asarray(np.random.default_rng(9).normal(size=(2, 5, 3)), dtype)
    lengths = jnp.asarray([5, 2])
    layers = {f: Recurrent("lstm", 4, bidirectional=True, dtype=dtype, fused=f) for f in (1, 0)}
    variables = layers[True].init(jax.random.key(0), xs, lengths)
    assert {p.dtype for p in jax.tree_util.tree_leaves(variables)} == {jnp.dtype(jnp.float32)}
    outputs = {}
    for fused_, layer in layers.items():
        jaxpr = str(jax.make_jaxpr(lambda v, layer=layer: layer.apply(v, xs, lengths))(variables))
        assert ("custom_vjp_call" in jaxpr) == bool(fused_)
        outputs[fused_] = jax.jit(layer.apply)(variables, xs, lengths)
    tol = TOL if dtype == jnp.float32 else BF16_TOL
    _close(
        jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), outputs[True]),
        jax.tree_util.tree_map(lambda a: a.astype(jnp.float32), outputs[False]),
        tol,
    )


@pytest.mark.skipif(jax.default_backend() != "cpu", reason="XLA:CPU's compiled HLO")
def test_bfloat16_loops_convert_no_whole_buffer_per_step():
    """XLA:CPU has no bfloat16 dynamic-update-slice: a loop stacking bfloat16 rows converts the
    whole (T, B, H) buffer to float32 and back at every step. The fast path's loops stack
    float32 and cast once outside, forward only and forward + backward."""
    import re

    steps = 16
    params = _params("lstm", 3, 4)
    xs, lengths = jnp.zeros((2, steps, 3), jnp.bfloat16), jnp.asarray([16, 5])

    def forward(params, xs):
        return ops.lstm(params, xs, lengths)[0]

    def gradient(params, xs):
        return jax.grad(lambda p, x: jnp.sum(forward(p, x).astype(jnp.float32)), (0, 1))(params, xs)

    whole = re.compile(rf"= \w+\[{steps},[\d,]+\]\S* convert\(%param")
    for fn in (forward, gradient):
        hlo = jax.jit(fn).lower(params, xs).compile().as_text()
        fusions = [c for c in hlo.split("\n\n") if "dynamic-update-slice" in c]
        assert fusions  # the loops' row writes are there to check
        assert not [c for c in fusions if whole.search(c)], fn.__name__
