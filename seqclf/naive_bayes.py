"""Fitting the NBSVM head as NBSVM is fitted: count, scale, then logistic regression.

Wang & Manning's recipe (NBSVM-LR): each text is the set of its distinct n-grams (here hashed into
the head's buckets by the model's own ``seqclf.ops.distinct_ngram_ids``, on the texts as the model
sees them), each feature scaled by its naive-Bayes log-count ratio, then an L2-regularised
logistic regression is fitted to the training split by L-BFGS (a convex problem, solved to
convergence, not by the gradient steps that train the other heads). The regularisation strength
is chosen among ``STRENGTHS`` by validation accuracy, as the NBSVM baseline chooses it by
cross-validation. ``seqclf.training.fit`` does this once, before the first gradient step
(``seqclf.training.callbacks.FitNbsvmHead``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import jax
import numpy as np
import scipy.optimize
import scipy.sparse

from seqclf import ops
from seqclf.data.batching import batches
from seqclf.data.preprocessing import TextConfig

COUNT_BATCH = 256  # texts hashed per device call
# C of scikit-learn's LogisticRegression (loss summed over the examples, plus |w|^2 / 2 / C),
# tried from the strongest regularisation to the weakest, each warm-started from the last.
STRENGTHS = (0.1, 1.0, 10.0)
MAX_ITERATIONS = 300


@functools.partial(jax.jit, static_argnums=(2, 3))
def _distinct(tokens: jax.Array, lengths: jax.Array, max_n: int, buckets: int):
    return ops.distinct_ngram_ids(tokens, lengths, max_n, buckets)


def bag_matrix(
    token_ids: Sequence[np.ndarray], buckets: int, max_n: int, text: TextConfig
) -> scipy.sparse.csr_matrix:
    """(N, buckets) float32 CSR, 1 where a text holds an n-gram of that bucket.

    Args:
      token_ids: N sequences of token ids.
      buckets, max_n: the head's hash buckets and longest n-gram.
      text: the run's ``TextConfig`` (its ``max_len``, ``truncating`` and length buckets).
    """
    rows, cols = [], []
    for batch in batches(
        token_ids,
        None,
        COUNT_BATCH,
        max_len=text.max_len,
        truncating=text.truncating,
        buckets=text.buckets,
    ):
        ids, first = (
            np.asarray(a) for a in _distinct(batch["tokens"], batch["lengths"], max_n, buckets)
        )
        r, k = np.nonzero(first)
        rows.append(batch["index"][r])
        cols.append(ids[r, k])
    rows = np.concatenate(rows) if rows else np.zeros(0, np.int64)
    cols = np.concatenate(cols) if cols else np.zeros(0, np.int64)
    data = np.ones(rows.size, np.float32)
    return scipy.sparse.csr_matrix((data, (rows, cols)), shape=(len(token_ids), buckets))


def _logistic_regression(
    x: scipy.sparse.csr_matrix,
    labels: np.ndarray,
    ratios: np.ndarray,
    strength: float,
    start: tuple[np.ndarray, np.ndarray],
) -> tuple[np.ndarray, np.ndarray]:
    """Multinomial logistic regression on the features ``x[:, g] * ratios[g, c]`` for class c.

    Minimises ``mean cross-entropy + |W|^2 / (2 C N)`` (scikit-learn's objective over N) by
    L-BFGS; the bias is not regularised. Returns ``(W (G, C), bias (C,))``.
    """
    n, classes = x.shape[0], ratios.shape[1]
    onehot = np.eye(classes)[labels]
    shape = ratios.shape
    xt = x.T.tocsr()

    def loss_and_grad(theta: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = theta[:-classes].reshape(shape), theta[-classes:]
        z = x @ (ratios * w) + b
        z -= z.max(axis=1, keepdims=True)
        log_p = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
        loss = -log_p[np.arange(n), labels].mean() + (w * w).sum() / (2 * strength * n)
        d = (np.exp(log_p) - onehot) / n
        grad_w = (xt @ d) * ratios + w / (strength * n)
        return float(loss), np.concatenate([grad_w.ravel(), d.sum(axis=0)])

    theta = np.concatenate([start[0].ravel(), start[1]])
    result = scipy.optimize.minimize(
        loss_and_grad, theta, jac=True, method="L-BFGS-B", options={"maxiter": MAX_ITERATIONS}
    )
    return result.x[:-classes].reshape(shape), result.x[-classes:]


def fit_nbsvm(
    train: tuple[Sequence[np.ndarray], np.ndarray],
    valid: tuple[Sequence[np.ndarray], np.ndarray],
    num_classes: int,
    buckets: int,
    max_n: int,
    text: TextConfig,
    alpha: float = 1.0,
) -> tuple[dict[str, np.ndarray], str]:
    """The NBSVM head's parameters (``seqclf.layers.NaiveBayesBag``) fitted on ``train``.

    Args:
      train, valid: ``(token_ids, labels)``; the regularisation is chosen on ``valid``.
      num_classes: C.
      buckets, max_n: the head's hash buckets and longest n-gram.
      text: the run's ``TextConfig`` (as the model sees the texts).
      alpha: additive smoothing of the counts.

    Returns:
      ``({"counts", "weights", "bias"}, a one-line report)``, float32 arrays of the head's
      parameter shapes.
    """
    labels = np.asarray(train[1], np.int64)
    valid_labels = np.asarray(valid[1], np.int64)
    x = bag_matrix(train[0], buckets, max_n, text)
    counts = np.asarray(x.T @ np.eye(num_classes, dtype=np.float32)[labels], np.float32)
    ratios = np.asarray(ops.log_count_ratios(counts, alpha), np.float64)
    used = np.unique(x.indices)  # buckets seen in training; the others keep weight 0
    x_used, ratios_used = x[:, used], ratios[used]
    x_valid = bag_matrix(valid[0], buckets, max_n, text)[:, used]
    start = (np.zeros(ratios_used.shape), np.zeros(num_classes))
    best, tried = None, []
    for strength in STRENGTHS:
        start = _logistic_regression(x_used, labels, ratios_used, strength, start)
        z = x_valid @ (ratios_used * start[0]) + start[1]
        accuracy = float(np.mean(z.argmax(axis=1) == valid_labels)) if len(valid_labels) else 0.0
        tried.append(f"C={strength:g}: {accuracy:.4f}")
        if best is None or accuracy > best[0]:
            best = (accuracy, strength, start)
    weights = np.zeros((buckets, num_classes), np.float32)
    weights[used] = best[2][0]
    head = {"counts": counts, "weights": weights, "bias": best[2][1].astype(np.float32)}
    report = (
        f"NBSVM head: {used.size} n-gram buckets used; validation accuracy {', '.join(tried)}; "
        f"kept C={best[1]:g}."
    )
    return head, report
