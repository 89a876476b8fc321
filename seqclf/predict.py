"""Prediction from a checkpoint directory alone: ``seqclf.load(dir)`` → ``Predictor``.

A predictor holds no mutable state after loading (a jit-compiled forward function, parameters and
the vocabulary), so one instance can serve several threads at once.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqclf.checkpoint import CheckpointError, CheckpointStore
from seqclf.data.batching import batches, pad_batch
from seqclf.data.sources import TextDataset
from seqclf.data.text import Vocabulary
from seqclf.metrics import classification_metrics
from seqclf.model import ClassifierConfig, build_classifier

CHUNK_TEXTS = 2048  # texts encoded at a time when streaming


class Predictor:
    """Texts → class probabilities and labels, with the text pipeline the model was trained with.

    Attributes:
      classes: label names, in the order of the probability columns.
      config: the model's ``ClassifierConfig``.
      vocabulary: the training vocabulary.
    """

    def __init__(
        self,
        config: ClassifierConfig,
        params: Any,
        vocabulary: Vocabulary,
        classes: list[str],
        *,
        max_len: int,
        truncating: str,
        buckets: list[int],
        batch_size: int = 64,
    ):
        if len(classes) != config.num_classes:
            raise CheckpointError(
                f"the checkpoint names {len(classes)} classes but the model has "
                f"{config.num_classes} outputs"
            )
        self.config = config
        self.classes = list(classes)
        self.vocabulary = vocabulary
        self.max_len = max_len
        self.truncating = truncating
        self.buckets = buckets
        self.batch_size = batch_size
        self._params = jax.device_put(params)
        model = build_classifier(config)

        @jax.jit
        def forward(params, tokens, lengths):
            return jax.nn.softmax(model.apply({"params": params}, tokens, lengths), axis=-1)

        self._forward = forward

    def iter_predict_proba(
        self, texts: Iterable[str], batch_size: int | None = None
    ) -> Iterator[np.ndarray]:
        """Stream (b, C) probability blocks, in input order, reading ``texts`` lazily.

        Only ``CHUNK_TEXTS`` texts are held at a time, so a file of any size can be scored.
        """
        batch_size = batch_size or self.batch_size
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        texts = iter(texts)
        empty = 0
        while chunk := list(islice(texts, CHUNK_TEXTS)):
            ids = self.vocabulary.encode_batch(chunk)
            empty += sum(1 for x in ids if len(x) == 0)
            stream = batches(
                ids,
                None,
                batch_size,
                max_len=self.max_len,
                truncating=self.truncating,
                buckets=self.buckets,
            )
            for batch in stream:
                padded, n_real = pad_batch(batch, batch_size)
                probs = self._forward(
                    self._params, jnp.asarray(padded["tokens"]), jnp.asarray(padded["lengths"])
                )
                yield np.asarray(probs)[:n_real]
        if empty:
            warnings.warn(
                f"{empty} text(s) had no known words (empty or whitespace only); their "
                "predictions reflect only what the model learned about empty input",
                stacklevel=2,
            )

    def predict_proba(
        self, texts: str | Iterable[str], batch_size: int | None = None
    ) -> np.ndarray:
        """(N, num_classes) class probabilities; a single string counts as one text."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        blocks = list(self.iter_predict_proba(texts, batch_size))
        if not blocks:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.concatenate(blocks)

    def predict(self, texts: str | Iterable[str], batch_size: int | None = None) -> list[str]:
        """The most probable label name for each text."""
        probs = self.predict_proba(texts, batch_size)
        return [self.classes[i] for i in probs.argmax(axis=1)]

    def evaluate(self, dataset: TextDataset, batch_size: int | None = None) -> dict[str, float]:
        """Loss, accuracy (and macro-F1 for > 2 classes) on labelled data.

        The dataset's class names are matched to the model's by name; a label the model never saw
        raises ``ValueError`` naming it.
        """
        if len(dataset) == 0:
            raise ValueError("the evaluation dataset is empty")
        unknown = sorted(set(dataset.classes) - set(self.classes))
        if unknown:
            used = {dataset.classes[i] for i in np.unique(dataset.labels)}
            unseen = [c for c in unknown if c in used]
            if unseen:
                raise ValueError(
                    f"label(s) {unseen} were never seen in training; the model knows {self.classes}"
                )
        remap = np.array(
            [self.classes.index(c) if c in self.classes else -1 for c in dataset.classes]
        )
        labels = remap[dataset.labels]
        probs = self.predict_proba(dataset.texts, batch_size)
        picked = probs[np.arange(len(labels)), labels]
        loss = float(-np.mean(np.log(np.maximum(picked, 1e-12))))
        return classification_metrics(labels, probs, loss)


def load(checkpoint_dir: str | Path, step: int | None = None, batch_size: int = 64) -> Predictor:
    """Open a trained model from its output (or checkpoints) directory, in any process.

    Args:
      checkpoint_dir: the ``--output-dir`` of a training run.
      step: a checkpoint step; default the best by validation accuracy.
      batch_size: texts per forward pass.

    Returns:
      A ``Predictor`` with ``.classes``, ``.predict_proba(texts)`` and ``.predict(texts)``.
    """
    store = CheckpointStore(checkpoint_dir, create=False)
    step = store.best_step() if step is None else step
    meta = store.restore_meta(step)
    try:
        config = ClassifierConfig.from_dict(meta["model_config"])
        vocabulary = Vocabulary.from_dict(meta["vocabulary"])
        classes = meta["classes"]
        train_config = meta["train_config"]
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{store.directory}/{step}: incomplete seqclf metadata ({err})"
        ) from err
    if len(vocabulary) != config.vocab_size:
        raise CheckpointError(
            f"{store.directory}/{step}: vocabulary has {len(vocabulary)} ids but the model "
            f"expects {config.vocab_size}"
        )
    params = store.restore_params(step)
    _check_params(config, params, store.directory / str(step))
    from seqclf.data.batching import bucket_boundaries

    return Predictor(
        config,
        params,
        vocabulary,
        classes,
        max_len=train_config["max_len"],
        truncating=train_config["truncating"],
        buckets=bucket_boundaries(train_config["max_len"], train_config["num_buckets"]),
        batch_size=batch_size,
    )


def _check_params(config: ClassifierConfig, params: Any, where: Path) -> None:
    """The saved arrays must have exactly the shapes this configuration builds."""
    model = build_classifier(config)
    tokens = jnp.zeros((1, 8), jnp.int32)
    expected = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), tokens, jnp.ones(1, int)))
    want = jax.tree_util.tree_map(lambda x: tuple(x.shape), expected["params"])
    got = jax.tree_util.tree_map(lambda x: tuple(np.shape(x)), params)
    if want != got:
        raise CheckpointError(
            f"{where}: saved parameters do not match the saved model configuration"
        )
