"""Evaluation: class probabilities of a dataset, its metrics, and the head-weight fit on it."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from seqclf.data.batching import batches, num_batches, pad_batch
from seqclf.data.preprocessing import TextConfig
from seqclf.distributed import DataParallel
from seqclf.head_weights import fit_head_weights, weighted_log_probs
from seqclf.metrics import classification_metrics
from seqclf.training.config import TrainConfig
from seqclf.training.state import TrainState
from seqclf.training.step import eval_step, head_log_probs_step


def config_batches(
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray | None,
    config: TrainConfig,
    text: TextConfig,
    **options: Any,
) -> Iterator[dict[str, np.ndarray]]:
    """``batches`` with the batch size of ``config`` and the truncation and length buckets of
    ``text``."""
    return batches(
        token_ids,
        labels,
        config.batch_size,
        max_len=text.max_len,
        truncating=text.truncating,
        buckets=text.buckets,
        **options,
    )


def evaluate(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray,
    config: TrainConfig,
    text: TextConfig,
    *,
    desc: str = "evaluate",
    progress: bool = True,
) -> dict[str, float]:
    """Loss, accuracy (and macro-F1 for > 2 classes) over a dataset; no example dropped."""
    probs = predict_probabilities(state, token_ids, config, text, desc=desc, progress=progress)
    return metrics_of(np.asarray(labels), probs)


def metrics_of(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """``classification_metrics`` with the mean cross-entropy of (N, C) probabilities."""
    picked = probs[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.maximum(picked, 1e-12)))) if len(labels) else 0.0
    out = classification_metrics(labels, probs, loss)
    # Recall of each class (None for a class absent here): a model that never predicts a rare
    # class shows it at once, whatever its accuracy.
    predicted = probs.argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    out["recall"] = [
        float(np.mean(predicted[labels == c] == c)) if np.any(labels == c) else None
        for c in range(probs.shape[1])
    ]
    return out


def fit_head_weights_and_evaluate(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray,
    config: TrainConfig,
    text: TextConfig,
    *,
    desc: str = "validate",
    progress: bool = True,
) -> tuple[TrainState, dict[str, float]]:
    """For a model with several heads: fit its head weights on this (validation) data.

    Returns the state holding the fitted weights, and ``evaluate``'s metrics with them (one pass
    over the data: each head's log-probabilities are computed once, weighted in NumPy).
    """
    labels = np.asarray(labels)
    log_probs = predict_probabilities(
        state, token_ids, config, text, desc=desc, progress=progress, step=head_log_probs_step
    )
    per_head = np.moveaxis(log_probs, 1, 0)  # (K, N, C)
    weights = fit_head_weights(per_head, labels)
    new_weights = DataParallel.of(state).replicate(jnp.asarray(weights))
    state = state.replace(params={**state.params, state.heads.head_weights: new_weights})
    metrics = metrics_of(labels, np.exp(weighted_log_probs(per_head, weights)))
    # Each head's own accuracy (HeadSpec.heads order), to see what each contributes.
    metrics["head_accuracy"] = [float(np.mean(h.argmax(-1) == labels)) for h in per_head]
    return state, metrics


def predict_probabilities(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    config: TrainConfig,
    text: TextConfig,
    *,
    desc: str = "predict",
    progress: bool = False,
    step: Callable[[TrainState, dict[str, jax.Array]], jax.Array] = eval_step,
) -> np.ndarray:
    """(N, C) class probabilities in input order; the last batch is padded, not dropped.

    Batches of ``config.batch_size`` rows, truncated and padded by ``text``, are split over the
    devices ``state`` is replicated on (see ``create_train_state``); every process gets all N
    rows. ``step`` gives what is computed
    per batch (default ``eval_step``; ``head_log_probs_step`` gives (N, K, C)).
    """
    out = None
    stream = config_batches(token_ids, None, config, text, sort_by_length=True)
    total = num_batches(len(token_ids), config.batch_size)
    parallel = DataParallel.of(state)  # the devices the state lives on; batches split over them
    for batch in tqdm(stream, total=total, desc=desc, leave=False, disable=not progress):
        padded, n_real = pad_batch(batch, config.batch_size)
        probs = step(state, parallel.shard({k: padded[k] for k in ("tokens", "lengths")}))
        probs = parallel.gather(probs)[:n_real]
        if out is None:
            out = np.zeros((len(token_ids), *probs.shape[1:]), probs.dtype)
        out[batch["index"]] = probs  # the batches come sorted by length: back to input order
    return out if out is not None else np.zeros((0, 0), np.float32)
