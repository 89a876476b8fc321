"""Run a model written by ``seqclf export`` with jax and numpy alone.

``seqclf.exported.load(dir)`` reads the serialized StableHLO functions (one per length bucket),
the parameters, the vocabulary and the text settings, and predicts from raw texts. It imports
neither Flax nor seqclf's model code (``seqclf.model``, ``seqclf.layers``, ``seqclf.ops``): only
``seqclf.data``, numpy-only, so that texts are tokenized, truncated, bucketed and padded exactly
as in training and in ``seqclf.Predictor`` (the same code, not a copy).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path

import jax
import numpy as np

from seqclf.data.batching import batches, pad_batch
from seqclf.data.empty_texts import EmptyTexts
from seqclf.data.text import Vocabulary

FORMAT = "seqclf.exported"  # the same strings as seqclf.export, which imports the model code
VERSION = 1


class ExportedModel:
    """Texts → class probabilities through the exported functions.

    Attributes:
      classes: label names, in the order of the probability columns.
      vocabulary: the training vocabulary.
      max_len, truncating, buckets: the text settings of training.
      settings: everything ``model.json`` says.
    """

    def __init__(self, directory: str | Path, batch_size: int = 64):
        directory = Path(directory)
        settings_path = directory / "model.json"
        if not settings_path.is_file():
            raise FileNotFoundError(f"{directory}: not a seqclf export (no model.json)")
        settings = json.loads(settings_path.read_text(encoding="utf-8"))
        if settings.get("format") != FORMAT or settings.get("version") != VERSION:
            raise ValueError(
                f"{settings_path}: unsupported export format {settings.get('format')!r} "
                f"version {settings.get('version')!r} (this seqclf reads {FORMAT!r} {VERSION})"
            )
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        self.settings = settings
        self.classes: list[str] = list(settings["classes"])
        self.max_len: int = int(settings["max_len"])
        self.truncating: str = settings["truncating"]
        self.buckets: list[int] = [int(b) for b in settings["buckets"]]
        self.batch_size = batch_size
        self.vocabulary = Vocabulary.load(directory / "vocabulary.json")
        with np.load(directory / "params.npz") as arrays:
            leaves = [arrays[f"arr_{i}"] for i in range(int(settings["num_params"]))]
        self._params = jax.device_put(leaves)
        self._functions = {}
        for length, name in settings["functions"].items():
            exported = jax.export.deserialize(bytearray((directory / name).read_bytes()))
            self._functions[int(length)] = jax.jit(exported.call)

    def predict_proba(self, texts: str | Iterable[str], batch_size: int | None = None):
        """(N, num_classes) float32 class probabilities; a single string counts as one text."""
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        ids = self.vocabulary.encode_batch(list(texts))
        empty = EmptyTexts()  # said as Predictor says it: the same texts, the same warning
        empty.see(ids, 0)
        out = np.zeros((len(ids), len(self.classes)), np.float32)
        stream = batches(
            ids,
            None,
            batch_size,
            max_len=self.max_len,
            truncating=self.truncating,
            buckets=self.buckets,
            sort_by_length=True,  # as Predictor: each batch padded to its own rows' bucket
        )
        for batch in stream:
            # Padded to batch_size, as Predictor does: one compiled shape per bucket.
            padded, n_real = pad_batch(batch, batch_size)
            tokens = padded["tokens"]
            probs = self._functions[tokens.shape[1]](self._params, tokens, padded["lengths"])
            out[batch["index"]] = np.asarray(probs)[:n_real]
        empty.warn(len(ids))
        return out

    def predict(self, texts: str | Iterable[str], batch_size: int | None = None) -> list[str]:
        """The most probable label name for each text."""
        probs = self.predict_proba(texts, batch_size)
        return [self.classes[i] for i in probs.argmax(axis=1)]


def load(directory: str | Path, batch_size: int = 64) -> ExportedModel:
    """Open a directory written by ``seqclf export`` (or ``seqclf.export.export_predictor``).

    Args:
      directory: the export directory.
      batch_size: texts per call of the exported function.

    Returns:
      An ``ExportedModel`` with ``.classes``, ``.predict_proba(texts)`` and ``.predict(texts)``.
    """
    return ExportedModel(directory, batch_size)
