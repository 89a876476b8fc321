"""Head weights fitted on validation: they recover a known temperature and ignore a useless head."""

from __future__ import annotations

import numpy as np
import pytest

from seqclf.head_weights import fit_head_weights, weighted_log_probs


def _log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


def _nll(log_probs, labels, weights):
    combined = weighted_log_probs(log_probs, weights)
    return -combined[np.arange(len(labels)), labels].mean()


@pytest.fixture(scope="module")
def calibrated():
    """Labels drawn from softmax(true logits) over 3 classes: the true logits are calibrated."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0.0, 2.0, size=(20000, 3))
    probs = np.exp(_log_softmax(logits))
    labels = (rng.random((20000, 1)) > probs.cumsum(-1)).sum(-1)
    return logits, labels, rng


def test_an_overconfident_head_is_cooled_and_a_useless_one_dropped(calibrated):
    logits, labels, rng = calibrated
    overconfident = _log_softmax(4.0 * logits)  # right ranking, probabilities far too sharp
    useless = _log_softmax(rng.normal(0.0, 3.0, size=logits.shape))
    weights = fit_head_weights(np.stack([overconfident, useless]), labels)
    assert weights.shape == (2,) and weights.dtype == np.float32
    # The maximum-likelihood temperature is the true one, 1/4, up to sampling noise.
    assert weights[0] == pytest.approx(0.25, abs=0.02)
    assert weights[1] == pytest.approx(0.0, abs=0.02)


def test_the_fit_is_the_minimum_of_the_validation_loss(calibrated):
    logits, labels, rng = calibrated
    heads = np.stack(
        [_log_softmax(2.0 * logits), _log_softmax(logits + rng.normal(size=logits.shape))]
    )
    weights = fit_head_weights(heads, labels)
    best = _nll(heads, labels, weights)
    assert best < _nll(heads, labels, np.ones(2))
    for _ in range(20):  # no nearby non-negative point does better
        other = np.maximum(weights + rng.normal(0.0, 0.05, size=2), 0.0)
        assert best <= _nll(heads, labels, other) + 1e-7


def test_edge_cases_and_bad_shapes():
    # A head certain of a wrong class (log-probability -inf) keeps the objective finite.
    certain = np.array([[[0.0, -np.inf], [-np.inf, 0.0]]], np.float32)
    weights = fit_head_weights(np.concatenate([certain, np.log(np.full((1, 2, 2), 0.5))]), [1, 1])
    assert np.isfinite(weights).all()
    assert fit_head_weights(np.zeros((2, 0, 3)), np.zeros(0, int)).tolist() == [1.0, 1.0]
    with pytest.raises(ValueError, match="heads, N, classes"):
        fit_head_weights(np.zeros((4, 3)), np.zeros(4, int))
    with pytest.raises(ValueError, match="heads, N, classes"):
        fit_head_weights(np.zeros((2, 4, 3)), np.zeros(5, int))
