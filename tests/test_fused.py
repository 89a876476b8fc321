"""seqclf.ops.fused (hand-written cuDNN-style backward) against the autodiffed scan in
seqclf.ops.recurrent: outputs, final states and every gradient, with padding, reverse and unroll;
float64 numerical gradients; arbitrary masks; jit and vmap."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.test_util import check_grads

from seqclf import ops
from seqclf.ops import fused

KINDS = ("rnn", "lstm", "gru")
REFERENCE = {"rnn": ops.simple_rnn, "lstm": ops.lstm, "gru": ops.gru}
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
    actual = _loss_and_grads(
        fused.FUSED[kind], params, xs, lengths, state, reverse, unroll, remat=remat
    )
    _close(actual, expected)


@pytest.mark.parametrize("kind", KINDS)
def test_zero_steps(kind):
    """A (B, 0, F) input: empty outputs, the initial state back, and the reference's gradients."""
    rng = np.random.default_rng(4)
    params = _params(kind, 3, 5)
    xs = jnp.zeros((2, 0, 3), jnp.float32)
    state = _state(kind, rng, 2, 5)
    expected = _loss_and_grads(REFERENCE[kind], params, xs, None, state, False, 1)
    actual = _loss_and_grads(fused.FUSED[kind], params, xs, None, state, False, 1)
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
            return fused.FUSED[kind](params, xs, lengths, reverse=True, initial_state=state)

        check_grads(jax.jit(f), (params, xs, state), order=1, modes=["rev"], atol=1e-6, rtol=1e-6)


def _masked_scan_reference(kind, w_hh, b_hh, xw, mask, state):
    """Any (T, B, 1) mask, not only a prefix: the state is held and the output zero where False."""
    cell = {"rnn": ops.rnn_cell, "lstm": ops.lstm_cell, "gru": ops.gru_cell}[kind]
    params = {"w_hh": w_hh, "b_hh": b_hh}

    def step(carry, inputs):
        xw_t, m_t = inputs
        new = cell(params, carry, xw_t)
        carry = jax.tree_util.tree_map(lambda n, o: jnp.where(m_t, n, o), new, carry)
        return carry, jnp.where(m_t, ops.final_hidden(kind, new), 0.0)

    final, ys = jax.lax.scan(step, state, (xw, mask))
    return (ys, *jax.tree_util.tree_leaves(final))


@pytest.mark.parametrize("kind", KINDS)
def test_recurrence_with_arbitrary_mask(kind):
    rng = np.random.default_rng(3)
    steps, batch, hidden = 5, 3, 4
    params = _params(kind, 1, hidden)
    xw = jnp.asarray(rng.normal(size=(steps, batch, ops.GATES[kind] * hidden)).astype(np.float32))
    mask = jnp.asarray(rng.random((steps, batch, 1)) < 0.6)
    state = tuple(jax.tree_util.tree_leaves(_state(kind, rng, batch, hidden)))
    recurrence = {
        "rnn": fused.rnn_recurrence,
        "lstm": fused.lstm_recurrence,
        "gru": fused.gru_recurrence,
    }[kind]

    def reference(w_hh, b_hh, xw, mask, *state):
        return _masked_scan_reference(
            kind, w_hh, b_hh, xw, mask, state if kind == "lstm" else state[0]
        )

    def run(fn):
        def loss(w_hh, b_hh, xw, state):
            out = fn(w_hh, b_hh, xw, mask, *state)
            ws = [jnp.asarray(np.cos(np.arange(o.size)).reshape(o.shape), o.dtype) for o in out]
            return sum(jnp.sum(w * o) for w, o in zip(ws, out, strict=True)), out

        return jax.grad(loss, argnums=(0, 1, 2, 3), has_aux=True)(
            params["w_hh"], params["b_hh"], xw, state
        )

    _close(jax.jit(run, static_argnums=0)(recurrence), jax.jit(run, static_argnums=0)(reference))


def test_jit_and_vmap_compose():
    rng = np.random.default_rng(4)
    params = _params("lstm", 3, 4)
    xs = jnp.asarray(rng.normal(size=(2, 3, 5, 3)).astype(np.float32))  # (vmap, B, T, F)
    lengths = jnp.asarray([[5, 1, 0], [2, 5, 3]])

    def loss(params, xs, lengths):
        return jnp.sum(fused.lstm_fused(params, xs, lengths, unroll=2)[0] ** 2)

    def ref_loss(params, xs, lengths):
        return jnp.sum(ops.lstm(params, xs, lengths)[0] ** 2)

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
            ys, final = fused.FUSED[kind](params, xs, lengths, reverse=True)
            return jnp.sum(ys**2) + sum(jnp.sum(s) for s in jax.tree_util.tree_leaves(final))

        return jax.jit(jax.value_and_grad(loss, argnums=(0, 1)))(params, jnp.asarray(xs))

    (value, (g_params, g_xs)), expected = grads(dirty), grads(clean)
    _close((value, g_params), (expected[0], expected[1][0]))
    assert np.all(np.isfinite(np.asarray(g_xs)))


def test_rejects_bad_shapes():
    params = _params("gru", 3, 4)
    with pytest.raises(ValueError, match="features"):
        fused.gru_fused(params, jnp.zeros((2, 5, 7)))
    with pytest.raises(ValueError, match="lengths"):
        fused.gru_fused(params, jnp.zeros((2, 5, 3)), jnp.asarray([1, 2, 3]))
