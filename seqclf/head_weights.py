"""How much each head of a multi-head model counts: weights fitted on the validation split.

A model with a fastText head beside its recurrent one (``ClassifierConfig.ngram_buckets``) predicts
``softmax(w_1 · log p_recurrent + w_2 · log p_ngram)``. Each head is trained on its own loss, so
neither knows how far to trust the other, and the recurrent head ends up overconfident (it fits the
training set within two epochs). The weights ``w`` are therefore not trained with the rest: after
every epoch they are fitted on the validation split by minimising its cross-entropy (stacking, with
``w ≥ 0``). The fit is convex in ``w``; with one head it is temperature scaling.
"""

from __future__ import annotations

import numpy as np


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def weighted_log_probs(log_probs: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """(K, N, C) per-head log-probabilities, (K,) weights → (N, C) normalised log-probabilities."""
    return _log_softmax(np.tensordot(np.asarray(weights, np.float64), log_probs, axes=1))


def fit_head_weights(log_probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Non-negative head weights (K,) minimising the cross-entropy of the weighted prediction.

    Args:
      log_probs: (K, N, C) each head's log-probabilities (``log_softmax`` of its logits) for N
        labelled examples.
      labels: (N,) int class ids.

    Returns:
      (K,) float32 weights; all ones when there is nothing to fit on (N = 0).
    """
    log_probs = np.asarray(log_probs, np.float64)
    labels = np.asarray(labels)
    if log_probs.ndim != 3 or labels.shape != log_probs.shape[1:2]:
        raise ValueError(
            f"log_probs must be (heads, N, classes) and labels (N,), got {log_probs.shape} "
            f"and {labels.shape}"
        )
    num_heads, n, _ = log_probs.shape
    if n == 0:
        return np.ones(num_heads, np.float32)
    # A head that gives a class probability 0 (log -inf in float32 underflow) would make the
    # objective infinite; a floor at e^-100 keeps it finite without changing any decision.
    log_probs = np.maximum(log_probs, -100.0)
    picked = log_probs[:, np.arange(n), labels]  # (K, N)

    def loss_and_grad(w: np.ndarray) -> tuple[float, np.ndarray]:
        combined = weighted_log_probs(log_probs, w)  # (N, C)
        probs = np.exp(combined)
        loss = -combined[np.arange(n), labels].mean()
        # d loss / d w_k = mean_n ( E_p[log p_k] - log p_k[label] )
        grad = (np.einsum("knc,nc->kn", log_probs, probs) - picked).mean(axis=1)
        return float(loss), grad

    import scipy.optimize  # here, not at the top: 0.6 s to import, and only fitting needs it

    result = scipy.optimize.minimize(
        loss_and_grad,
        np.ones(num_heads),
        jac=True,
        method="L-BFGS-B",
        bounds=[(0.0, None)] * num_heads,
    )
    return result.x.astype(np.float32)
