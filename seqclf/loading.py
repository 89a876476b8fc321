"""``seqclf.load(dir)``: a trained model from its checkpoint directory alone, as a ``Predictor``."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp

from seqclf.checkpoint import (
    CheckpointError,
    CheckpointStore,
    CheckpointSuperseded,
    tree_difference,
)
from seqclf.data.preprocessing import TextConfig
from seqclf.data.text import Vocabulary
from seqclf.model import ClassifierConfig, build_classifier
from seqclf.predict import Predictor

# A superseded checkpoint is retried (each try lists the steps again) for this long: a run that
# saves every step can supersede its best several times in a row while it still improves, so a
# fixed number of tries (5, before) could run out on a fast machine.
_RETRY_SECONDS = 30.0


def load(
    checkpoint_dir: str | Path,
    step: int | None = None,
    batch_size: int = 64,
    *,
    model: Any = None,
) -> Predictor:
    """Open a trained model from its output (or checkpoints) directory, in any process.

    Args:
      checkpoint_dir: the ``--output-dir`` of a training run (or a ``Predictor.save`` folder).
      step: a checkpoint step; default the best by validation accuracy.
      batch_size: texts per forward pass.
      model: for a model of one's own (``seqclf.fit`` of a Flax module that is not
        ``build_classifier``'s), the same module; seqclf models are rebuilt from the checkpoint.

    Returns:
      A ``Predictor`` with ``.classes``, ``.predict_proba(texts)`` and ``.predict(texts)``.

    A run may be read while it trains: when the checkpoint picked is superseded (removed by the
    training run) while it is read, the steps are listed again and the new best is read.
    """
    deadline = time.monotonic() + _RETRY_SECONDS
    while True:
        with _without_read_only_notices():
            store = CheckpointStore(checkpoint_dir, create=False)
        try:
            return _load(store, step, batch_size, model)
        except CheckpointSuperseded as err:
            if step is not None or time.monotonic() > deadline:
                raise CheckpointSuperseded(f"{err}; try again (or pass another step)") from None
        finally:
            store.close()  # the arrays are in memory; no orbax threads left behind


# What orbax logs (as absl warnings) whenever a checkpoint directory is opened read-only: routine,
# nothing a user of ``seqclf.load`` can or should act on.
_READ_ONLY_NOTICES = ("setting save_interval_steps=0", "Given directory is read only")


@contextlib.contextmanager
def _without_read_only_notices() -> Iterator[None]:
    """Drop orbax's read-only notices (only those) while a checkpoint directory is opened."""
    logger = logging.getLogger("absl")

    def routine(record: logging.LogRecord) -> bool:
        return not any(notice in record.getMessage() for notice in _READ_ONLY_NOTICES)

    logger.addFilter(routine)
    try:
        yield
    finally:
        logger.removeFilter(routine)


def _load(store: CheckpointStore, step: int | None, batch_size: int, model: Any) -> Predictor:
    step = store.best_step() if step is None else step
    meta = store.restore_meta(step)
    try:
        saved = meta["model_config"]
        config = None if saved is None else ClassifierConfig.from_dict(saved)
        vocabulary = Vocabulary.from_dict(meta["vocabulary"])
        classes = meta["classes"]
        text = TextConfig.from_meta(meta)
        if vocabulary.tokenizer != text.tokenizer:
            raise ValueError(
                f"the vocabulary's tokenizer {vocabulary.tokenizer!r} is not the text "
                f"configuration's {text.tokenizer!r}"
            )
    except (KeyError, ValueError, TypeError) as err:
        raise CheckpointError(
            f"{store.directory}/{step}: incomplete seqclf metadata ({err})"
        ) from err
    if config is None and model is None:
        raise CheckpointError(
            f"{store.directory}/{step} holds a model of one's own "
            f"({meta.get('model_class', 'a Flax module')}); load it with "
            "seqclf.load(directory, model=the_same_module)"
        )
    if config is not None and len(vocabulary) != config.vocab_size:
        raise CheckpointError(
            f"{store.directory}/{step}: vocabulary has {len(vocabulary)} ids but the model "
            f"expects {config.vocab_size}"
        )
    params = store.restore_params(step)
    model = build_classifier(config) if model is None or config is not None else model
    _check_params(model, params, store.directory / str(step))
    return Predictor(
        config, params, vocabulary, classes, text=text, batch_size=batch_size, model=model
    )


def _check_params(model: Any, params: Any, where: Path) -> None:
    """The saved arrays must have exactly the shapes the model builds."""
    tokens = jnp.zeros((1, 8), jnp.int32)
    expected = jax.eval_shape(lambda: model.init(jax.random.PRNGKey(0), tokens, jnp.ones(1, int)))
    difference = tree_difference(expected["params"], params)
    if difference:
        raise CheckpointError(
            f"{where}: the saved parameters do not match the saved model configuration "
            f"({difference})"
        )
