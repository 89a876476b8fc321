"""How text becomes token ids: ``TextConfig``, saved with every checkpoint, read by ``Predictor``.

A model's architecture is ``ClassifierConfig``, how it is trained ``TrainConfig``; this is the
third part, the text pipeline between them: the tokenizer, the vocabulary's size, how many
tokens of a text are kept (and which end), and the padded lengths of the batches.

Checkpoints written before this class existed kept these settings in their ``train_config``
(``max_words`` for the vocabulary size): ``TextConfig.from_train_config`` reads them from there.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from seqclf.config_dict import config_from_dict
from seqclf.data.batching import bucket_boundaries
from seqclf.data.text import DEFAULT_TOKENIZER, TOKENIZERS

TRUNCATING = ("pre", "post")
# TextConfig field -> the TrainConfig field that held it before TextConfig existed (read from the
# train_config of such a checkpoint, and dropped from it by TrainConfig.from_dict).
TRAIN_FIELDS = {
    "vocab_size": "max_words",
    "max_len": "max_len",
    "truncating": "truncating",
    "num_buckets": "num_buckets",
}


@dataclasses.dataclass(frozen=True)
class TextConfig:
    """How text becomes token ids (saved with every checkpoint).

    The fields that default to None, "from the data", are resolved from the training split by
    the rules of ``seqclf.recipe``; the resolved values are what is saved.

    Attributes:
      tokenizer: how a text is split into tokens (lowercased, apostrophes deleted, HTML line
        breaks as spaces, then): "words_and_punctuation", runs of letters and digits and each
        punctuation mark; "words", the runs only (``seqclf.data.text``).
      vocab_size: the most token ids, padding and out-of-vocabulary included; the vocabulary
        keeps the most frequent words of the training split, by default all of them up to
        ``seqclf.recipe.MAX_VOCABULARY``.
      max_len: longer texts are truncated to this many tokens; None: from the data.
      truncating: "pre" keeps the end of a long text (Keras' default), "post" keeps the start.
      num_buckets: padded lengths per epoch (fewer compiled shapes vs less padding); None: from
        the data.
    """

    tokenizer: str = dataclasses.field(default=DEFAULT_TOKENIZER, metadata={"choices": TOKENIZERS})
    vocab_size: int | None = None
    max_len: int | None = None
    truncating: str = dataclasses.field(default="pre", metadata={"choices": TRUNCATING})
    num_buckets: int | None = None

    def __post_init__(self) -> None:
        problems = []
        if self.tokenizer not in TOKENIZERS:
            problems.append(f"tokenizer must be one of {TOKENIZERS}, got {self.tokenizer!r}")
        if self.truncating not in TRUNCATING:
            problems.append(f"truncating must be 'pre' or 'post', got {self.truncating!r}")
        for name, least in (("vocab_size", 3), ("max_len", 1), ("num_buckets", 1)):
            value = getattr(self, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
                problems.append(f"{name} must be an integer, got {value!r}")
            elif value is not None and value < least:
                problems.append(f"{name} must be >= {least}, got {value}")
        if problems:
            raise ValueError("invalid text configuration: " + "; ".join(problems))

    @property
    def resolved(self) -> bool:
        """True when no field is left to the data."""
        return None not in (self.vocab_size, self.max_len, self.num_buckets)

    @property
    def buckets(self) -> list[int]:
        """The padded lengths of the batches (``seqclf.data.bucket_boundaries``)."""
        if self.max_len is None or self.num_buckets is None:
            raise ValueError(
                "max_len or num_buckets is None (from the data): resolve the text configuration "
                "from the training split first, or give them"
            )
        return bucket_boundaries(self.max_len, self.num_buckets)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TextConfig:
        """Inverse of ``to_dict``; an unknown key is an error naming it (``seqclf.config_dict``)."""
        return config_from_dict(cls, d)

    @classmethod
    def from_train_config(cls, d: Mapping[str, Any]) -> TextConfig:
        """The text settings of a ``TrainConfig`` (or its saved dict: a checkpoint written before
        ``TextConfig`` existed keeps them there)."""
        if not isinstance(d, Mapping):
            d = d.to_dict()
        # Such checkpoints predate the tokenizer that keeps punctuation.
        return cls(tokenizer="words", **{k: d[old] for k, old in TRAIN_FIELDS.items() if old in d})

    @classmethod
    def from_meta(cls, meta: Mapping[str, Any]) -> TextConfig:
        """The ``TextConfig`` of a checkpoint's metadata (one written before ``TextConfig``
        existed has the settings in its ``train_config``)."""
        if "text_config" in meta:
            return cls.from_dict(meta["text_config"])
        return cls.from_train_config(meta["train_config"])
