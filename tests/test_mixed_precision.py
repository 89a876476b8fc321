"""bfloat16 compute with float32 master parameters, optimizer state and recurrent state.

The task: synthetic sequences of token ids 2..11, label 1 when token 2 occurs more often than
token 3 (the model has to count over the whole sequence). A tiny LSTM trained with the same seed
in float32 and in bfloat16 must reach accuracies within ``ACCURACY_TOLERANCE`` of each other.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqclf import ops
from seqclf.data.batching import batches, pad_batch
from seqclf.data.preprocessing import TextConfig
from seqclf.model import build_classifier
from seqclf.training import TrainConfig, create_train_state, predict_probabilities
from seqclf.training.step import TRAIN_KEYS, train_step

ACCURACY_TOLERANCE = 0.05
CONFIG = TrainConfig(batch_size=32, learning_rate=1e-2, epochs=3)
TEXT = TextConfig(vocab_size=12, max_len=20, num_buckets=1)
MODEL = dict(vocab_size=12, embed_dim=16, conv_filters=(), hidden_size=16, embed_dropout=0.0)


def _counting_task(n: int, seed: int) -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = [rng.integers(2, 12, size=int(rng.integers(5, 20))).astype(np.int32) for _ in range(n)]
    labels = np.array([int((x == 2).sum() > (x == 3).sum()) for x in ids], np.int32)
    return ids, labels


def _train(dtype: str, train: tuple[list[np.ndarray], np.ndarray]):
    ids, labels = train
    steps = CONFIG.epochs * -(-len(ids) // CONFIG.batch_size)
    example = next(batches(ids[:2], None, 2, max_len=TEXT.max_len))
    state = create_train_state(build_classifier(**MODEL, dtype=dtype), CONFIG, steps, example)
    for epoch in range(CONFIG.epochs):
        stream = batches(
            ids, labels, CONFIG.batch_size, max_len=TEXT.max_len, shuffle=True, epoch=epoch
        )
        for batch in stream:
            padded, _ = pad_batch(batch, CONFIG.batch_size)
            state, _ = train_step(state, {k: padded[k] for k in TRAIN_KEYS})
    return state


@pytest.fixture(scope="module")
def trained():
    train, test = _counting_task(512, seed=0), _counting_task(256, seed=1)
    results = {}
    for dtype in ("float32", "bfloat16"):
        state = _train(dtype, train)
        probs = predict_probabilities(state, test[0], CONFIG, TEXT)
        results[dtype] = (state, float(np.mean(probs.argmax(axis=1) == test[1])))
    return results


def test_bfloat16_accuracy_is_within_tolerance_of_float32(trained):
    acc32, acc16 = trained["float32"][1], trained["bfloat16"][1]
    assert acc32 > 0.75 and acc16 > 0.75, (acc32, acc16)  # both learned the task (chance ~0.6)
    assert abs(acc32 - acc16) <= ACCURACY_TOLERANCE, (acc32, acc16)


def test_bfloat16_keeps_float32_parameters_and_optimizer_state(trained):
    state, _ = trained["bfloat16"]
    floats = [
        x.dtype
        for x in jax.tree_util.tree_leaves((state.params, state.opt_state))
        if jnp.issubdtype(x.dtype, jnp.floating)
    ]
    assert floats and set(floats) == {jnp.dtype(jnp.float32)}


def test_bfloat16_computes_in_bfloat16():
    tokens, lengths = jnp.ones((2, 12), jnp.int32), jnp.array([12, 5])

    def matmul_dtypes(dtype: str) -> set[str]:
        model = build_classifier(**{**MODEL, "conv_filters": (8,), "pool_size": 2}, dtype=dtype)
        variables = model.init(jax.random.PRNGKey(0), tokens, lengths)
        jaxpr = str(jax.make_jaxpr(lambda v: model.apply(v, tokens, lengths))(variables))
        # Operand dtypes of every dot_general / conv: "bf16[2,12,16]" etc. on the line.
        lines = [x for x in jaxpr.splitlines() if "dot_general" in x or "conv_general" in x]
        return {t for line in lines for t in re.findall(r"\b(bf16|f32)\[", line)}

    assert matmul_dtypes("float32") == {"f32"}
    # Convolution and every recurrent matmul (h @ W_hh too: the f32 state is rounded for it)
    # in bf16, accumulating in f32; the output layer is f32.
    assert "bf16" in matmul_dtypes("bfloat16")


def test_lstm_cell_state_accumulates_in_float32_under_bfloat16():
    """c_t = f c_{t-1} + i g with f ~ 1 and i g = 0.05 over 1000 steps: c grows to ~49.

    A bfloat16 cell state stops growing near 16, where adding 0.05 no longer changes a bfloat16
    number (its spacing there is 0.125); the float32 state of the bfloat16 model stays within
    0.5% (the 0.05 itself rounds to 0.05005 in bfloat16).
    """
    hidden, steps = 4, 1000
    gate_bias = {"i": 10.0, "f": 10.0, "g": float(np.arctanh(0.05)), "o": 0.0}
    params = {
        "w_ih": jnp.zeros((1, 4 * hidden)),
        "w_hh": jnp.zeros((hidden, 4 * hidden)),
        "b_ih": jnp.repeat(jnp.array(list(gate_bias.values())), hidden),
        "b_hh": jnp.zeros(4 * hidden),
    }
    xs = jnp.zeros((1, steps, 1))
    _, (_, c_ref) = ops.lstm_reference(params, xs)
    bf16 = jax.tree_util.tree_map(lambda p: p.astype(jnp.bfloat16), params)
    for lstm in (ops.lstm, ops.lstm_reference):  # the same dtype rules on both paths
        ys, (h, c) = lstm(bf16, xs.astype(jnp.bfloat16))
        assert ys.dtype == jnp.bfloat16 and h.dtype == c.dtype == jnp.float32
        np.testing.assert_allclose(c, c_ref, rtol=5e-3)
    # What an all-bfloat16 state would give: the same cell scanned with a bfloat16 carry.
    zeros = jnp.zeros((1, hidden), jnp.bfloat16)
    xw = jnp.broadcast_to(bf16["b_ih"], (1, 4 * hidden))

    def low_step(state, _):  # the cell computes in float32; round its state to bfloat16
        h, c = ops.lstm_cell(bf16, state, xw)
        return (h.astype(jnp.bfloat16), c.astype(jnp.bfloat16)), None

    (_, c_low), _ = jax.lax.scan(low_step, (zeros, zeros), None, length=steps)
    assert c_low.dtype == jnp.bfloat16
    assert 45 < float(c_ref[0, 0]) < 50
    assert float(c_low[0, 0]) < 0.5 * float(c_ref[0, 0])  # what a bfloat16 state would give
