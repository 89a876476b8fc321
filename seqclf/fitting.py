"""``seqclf.fit(model, train_data, valid_data)``: Keras' ``model.fit`` for a model you built.

Texts and labels in, a ``Classifier`` out (``.predict``, ``.predict_proba``, ``.evaluate``,
``.save``): the vocabulary is built from the training texts, both splits are encoded, the
settings left to the data are resolved (``seqclf.recipe``) and the module is trained by
``seqclf.train.fit``, exactly as ``seqclf train`` does it (``seqclf.experiment``), without a
run directory unless one is asked for.

Example::

    model = seqclf.build_classifier(vocab_size=20000, nb_buckets=0)
    clf = seqclf.fit(model, (texts, labels), config=seqclf.TrainConfig(epochs=3))
    clf.predict(["a wonderful film"])        # ['pos']
    clf.save("runs/mine")                    # seqclf.load("runs/mine") reads it back
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from seqclf.checkpoint import CheckpointError, CheckpointStore
from seqclf.data.preprocessing import TextConfig
from seqclf.data.sources import TextDataset, sort_class_names
from seqclf.experiment import encode_splits, split_for_validation
from seqclf.model import ClassifierConfig, SequenceClassifier, build_classifier
from seqclf.predict import Predictor
from seqclf.training import Callback, TrainConfig
from seqclf.training import fit as train_loop

Data = TextDataset | tuple[Sequence[str], Sequence[Any]]


class Classifier(Predictor):
    """A ``Predictor`` that ``seqclf.fit`` trained, with how its training went.

    Attributes:
      history: one dict per epoch (loss, accuracy, val_loss, val_accuracy, ...).
      stopped_by: "completed", "early_stopping", "time_budget" or a signal's name.
      train_config: the resolved ``TrainConfig`` it was trained with.
    """

    history: list[dict[str, Any]]
    stopped_by: str
    train_config: TrainConfig

    def __repr__(self) -> str:  # never the parameter arrays
        history = getattr(self, "history", [])
        best = max((h.get("val_accuracy", 0.0) for h in history), default=float("nan"))
        return (
            f"Classifier({self._summary()}, epochs={len(history)}, "
            f"best_val_accuracy={best:.4f}, stopped_by={getattr(self, 'stopped_by', None)!r})"
        )


def as_dataset(data: Data, classes: Sequence[str] | None = None) -> TextDataset:
    """A ``TextDataset`` of ``data``: one already, or a ``(texts, labels)`` pair whose labels
    are class names (or integers), sorted as ``seqclf.read_table`` sorts them unless
    ``classes`` is given.

    Raises:
      ValueError: a label not in ``classes``, naming its position.
    """
    if isinstance(data, TextDataset):
        return data if classes is None else data.with_classes(classes)
    if not isinstance(data, (tuple, list)) or len(data) != 2:
        raise TypeError(
            "data must be a seqclf.TextDataset or a (texts, labels) pair, got "
            f"{type(data).__name__}"
        )
    texts, labels = data
    if isinstance(texts, str):
        raise TypeError("texts must be a list of texts, not a single str")
    names = [str(x) for x in (labels.tolist() if isinstance(labels, np.ndarray) else labels)]
    classes = list(classes) if classes is not None else sort_class_names(names)
    index = {c: i for i, c in enumerate(classes)}
    unknown = next((i for i, n in enumerate(names) if n not in index), None)
    if unknown is not None:
        raise ValueError(
            f"label {names[unknown]!r} (position {unknown}) is not one of the classes {classes}"
        )
    return TextDataset(list(texts), np.array([index[n] for n in names], np.int32), classes)


def fit(
    model: Any,
    train_data: Data,
    valid_data: Data | None = None,
    *,
    text: TextConfig | None = None,
    config: TrainConfig | None = None,
    valid_fraction: float = 0.1,
    output_dir: str | Path | None = None,
    progress: bool = True,
    batch_size: int = 64,
    callbacks: Sequence[Callback] = (),
) -> Classifier:
    """Train ``model`` on labelled texts; returns a ``Classifier`` ready to predict.

    Args:
      model: ``build_classifier(...)``, or any Flax module called as
        ``module(tokens, lengths, train=...)`` → logits (B, C) with ``rngs={"dropout": key}``.
        A ``build_classifier`` model's ``vocab_size`` is the most ids its vocabulary gets (its
        embedding then has one row per id of the vocabulary built) and its ``num_classes`` must
        be the data's.
      train_data: a ``TextDataset`` (``seqclf.read_table(...)``...) or ``(texts, labels)``.
      valid_data: the same for validation; None carves ``valid_fraction`` of ``train_data``
        (stratified, seeded).
      text: how texts become ids (``TextConfig``); its None fields are resolved from the data.
        For a module of one's own, ``text.vocab_size`` must be its embedding's size.
      config: how to train (``TrainConfig``); its None fields are resolved from the data.
      valid_fraction: share of the training data held out when ``valid_data`` is None.
      output_dir: also checkpoint every epoch there, with ``metrics.jsonl`` and the curves, as
        ``seqclf train`` does (None: nothing is written).
      progress: show progress bars.
      batch_size: the returned classifier's texts per forward pass.
      callbacks: your own ``seqclf.Callback``s (``seqclf.training.callbacks``), called after
        seqclf's own at every hook (Keras' ``fit(callbacks=...)``).

    Returns:
      A ``Classifier`` holding the parameters of the last epoch.
    """
    config = config or TrainConfig()
    text = text or TextConfig()
    train = as_dataset(train_data)
    valid = None if valid_data is None else as_dataset(valid_data, train.classes)
    train, valid = split_for_validation(train, valid, valid_fraction, config.seed)
    model_config = model.config if isinstance(model, SequenceClassifier) else None
    text = _fitting_vocabulary(model, model_config, text)
    if model_config is not None and model_config.num_classes != len(train.classes):
        raise ValueError(
            f"the model has num_classes={model_config.num_classes} but the data has "
            f"{len(train.classes)} classes {train.classes}"
        )
    data = encode_splits(train, valid, text, config)
    if model_config is not None:  # one embedding row per id of the vocabulary built
        model_config = dataclasses.replace(model_config, vocab_size=len(data.vocabulary))
        model = build_classifier(model_config)
    store = None
    if output_dir is not None:
        store = CheckpointStore(output_dir)
        if store.latest_step() is not None:
            store.close()
            raise CheckpointError(f"{output_dir} already holds a training run")
    meta = {
        "model_config": None if model_config is None else model_config.to_dict(),
        "model_class": type(model).__name__,
        "vocabulary": data.vocabulary.to_dict(),
        "classes": data.classes,
    }
    try:
        result = train_loop(
            model,
            data.train,
            data.valid,
            data.train_config,
            text=data.text,
            store=store,
            meta=meta,
            output_dir=output_dir,
            progress=progress,
            callbacks=callbacks,
        )
    finally:
        if store is not None:
            store.close()
    classifier = Classifier(
        model_config,
        result.state.params,
        data.vocabulary,
        data.classes,
        text=data.text,
        batch_size=batch_size,
        model=model,
    )
    classifier.history = result.history
    classifier.stopped_by = result.stopped_by
    classifier.train_config = data.train_config
    return classifier


def _fitting_vocabulary(
    model: Any, model_config: ClassifierConfig | None, text: TextConfig
) -> TextConfig:
    """``text`` with a vocabulary size that fits the model's embedding."""
    if model_config is None:
        if text.vocab_size is None:
            raise ValueError(
                f"give text=seqclf.TextConfig(vocab_size=...): the size of the embedding of "
                f"your {type(model).__name__} (ids 0 and 1 are padding and unknown words)"
            )
        return text
    if text.vocab_size is None:
        return dataclasses.replace(text, vocab_size=model_config.vocab_size)
    if text.vocab_size > model_config.vocab_size:
        raise ValueError(
            f"TextConfig.vocab_size {text.vocab_size} is more than the model's vocab_size "
            f"{model_config.vocab_size}"
        )
    return text
