"""The default recipe: every setting that depends on the data, resolved from the training split.

A setting the user gives is kept as given (and checked against the data: a value that cannot
work, or wastes more than ten times the work, is clamped with a warning); a setting left out is
derived here by a rule that follows from the data, never from constants tuned to one data set:

- ``max_len``: the 95th percentile of the training texts' token counts (>= 8, rounded up to 8).
- ``num_buckets``: one padded length per 64 tokens of ``max_len``, 1 to 4 (each length is
  compiled once; short texts gain nothing from more).
- ``vocab_size``: every word of the training split, most frequent first, at most 100,000.
- ``pool_size``: a median text reaches the recurrent layer in ~32 steps: ``median // 32``, 1-4.
- ``nb_buckets``: about two hash buckets per n-gram occurrence of the training split, from 2^16
  to 2^22, and at most 2^24 / classes.
- ``batch_size``: about 100 steps per epoch: the power of two <= n / 100, from 16 to 64.
- ``epochs``: about 50,000 examples seen: ``ceil(50000 / n)``, from 3 to 10 (early stopping on
  validation and the time budget end training sooner).
- class weights (``TrainConfig.class_weighting="sqrt"``): class c weighs ``(n / (C n_c))^0.5``.

The convolution is 'same' and the pooling keeps its last partial window (``ClassifierConfig``'s
defaults), so a text of one token still reaches the classifier.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np

from seqclf.model import ClassifierConfig

MAX_VOCABULARY = 100_000  # words; the embedding table and its optimizer state grow with it
WASTE = 10  # a given setting that costs more than this many times what the data needs is clamped


class SettingWarning(UserWarning):
    """A setting was changed to fit the data (it could not work, or wasted most of the work)."""


@dataclasses.dataclass(frozen=True)
class DataProfile:
    """What the recipe reads from a training split.

    Attributes:
      num_examples: training texts.
      class_counts: texts per class (C,).
      lengths: token count of each text (N,).
    """

    num_examples: int
    class_counts: tuple[int, ...]
    lengths: np.ndarray

    @classmethod
    def of(cls, token_ids: Sequence[np.ndarray], labels: np.ndarray, num_classes: int):
        lengths = np.fromiter((len(x) for x in token_ids), np.int64, count=len(token_ids))
        counts = np.bincount(np.asarray(labels, np.int64), minlength=num_classes)
        return cls(len(token_ids), tuple(int(c) for c in counts), lengths)

    def percentile(self, q: float) -> int:
        return int(np.ceil(np.percentile(self.lengths, q))) if self.lengths.size else 1


def _pow2_floor(x: float) -> int:
    return 1 << max(0, int(math.floor(math.log2(max(x, 1.0)))))


def _pow2_ceil(x: float) -> int:
    return 1 << max(0, int(math.ceil(math.log2(max(x, 1.0)))))


def default_max_len(profile: DataProfile) -> int:
    """The 95th percentile of token counts, rounded up to a multiple of 8, at least 8."""
    return max(8, -(-profile.percentile(95) // 8) * 8)


def default_num_buckets(max_len: int) -> int:
    """One padded length per 64 tokens of max_len, from 1 to 4."""
    return int(np.clip(max_len // 64, 1, 4))


def default_batch_size(profile: DataProfile) -> int:
    """About 100 steps per epoch: the power of two at most n / 100, from 16 to 64."""
    return int(np.clip(_pow2_floor(profile.num_examples / 100), 16, 64))


def default_epochs(profile: DataProfile) -> int:
    """About 50,000 examples seen in all: ceil(50000 / n), from 3 to 10."""
    return int(np.clip(math.ceil(50_000 / max(profile.num_examples, 1)), 3, 10))


def default_pool_size(profile: DataProfile) -> int:
    """Pool so that a median text reaches the recurrent layer in ~32 steps: median // 32, 1-4."""
    return int(np.clip(profile.percentile(50) // 32, 1, 4))


def default_nb_buckets(profile: DataProfile, max_len: int, max_n: int) -> int:
    """About two buckets per n-gram occurrence (few collisions), 2^16 to 2^22, ≤ 2^24 / C."""
    occurrences = int(np.minimum(profile.lengths, max_len).sum()) * max_n
    cap = min(2**22, _pow2_floor(2**24 / max(len(profile.class_counts), 1)))
    return int(np.clip(_pow2_ceil(2 * occurrences), min(2**16, cap), cap))


def resolve_text_config(text: Any, profile: DataProfile) -> tuple[Any, dict[str, Any]]:
    """Fill the fields of a ``seqclf.TextConfig`` that are None (and check the given ones).

    Args:
      text: a ``TextConfig`` whose ``vocab_size``, ``max_len`` or ``num_buckets`` may be None
        ("from the data", their default).
      profile: the training split's ``DataProfile``.

    Returns:
      ``(resolved text config, {field: value}`` of what was resolved or clamped here``)``.
    """
    chosen: dict[str, Any] = {}
    if text.max_len is None:
        chosen["max_len"] = default_max_len(profile)
    elif text.max_len > WASTE * max(int(profile.lengths.max(initial=1)), 8):
        longest = int(profile.lengths.max(initial=1))
        clamped = max(8, -(-longest // 8) * 8)
        warnings.warn(
            f"max_len {text.max_len} is more than {WASTE}x the longest training text "
            f"({longest} tokens); using {clamped}",
            SettingWarning,
            stacklevel=2,
        )
        chosen["max_len"] = clamped
    if text.num_buckets is None:
        chosen["num_buckets"] = default_num_buckets(chosen.get("max_len", text.max_len))
    if text.vocab_size is None:
        chosen["vocab_size"] = MAX_VOCABULARY + 2
    return dataclasses.replace(text, **chosen), chosen


def resolve_train_config(config: Any, profile: DataProfile) -> tuple[Any, dict[str, Any]]:
    """Fill the data-dependent fields of a ``seqclf.TrainConfig`` that are None (and check the
    given ones).

    Args:
      config: a ``TrainConfig`` whose ``epochs`` or ``batch_size`` may be None ("from the
        data", their default).
      profile: the training split's ``DataProfile``.

    Returns:
      ``(resolved config, {field: value}`` of what was resolved or clamped here``)``.
    """
    chosen: dict[str, Any] = {}
    if config.batch_size is None:
        chosen["batch_size"] = default_batch_size(profile)
    elif config.batch_size > WASTE * profile.num_examples:
        clamped = _pow2_ceil(profile.num_examples)
        warnings.warn(
            f"batch_size {config.batch_size} is more than {WASTE}x the training set "
            f"({profile.num_examples} examples); using {clamped}",
            SettingWarning,
            stacklevel=2,
        )
        chosen["batch_size"] = clamped
    if config.epochs is None:
        chosen["epochs"] = default_epochs(profile)
    return dataclasses.replace(config, **chosen), chosen


def resolve_model_config(
    options: dict[str, Any] | None,
    profile: DataProfile,
    *,
    vocab_size: int,
    num_classes: int,
    max_len: int,
    base: ClassifierConfig | None = None,
) -> tuple[ClassifierConfig, dict[str, Any]]:
    """The model for this data: ``base`` (default ``ClassifierConfig()``) with the user's
    ``options`` and the data-dependent fields they leave out (``pool_size``, ``nb_buckets``).

    A given ``conv_kernel_size`` longer than every training text is clamped to the longest one
    (with a warning): such a kernel sees mostly padding.

    Returns:
      ``(config, {field: value}`` of what was resolved or clamped here``)``.
    """
    options = dict(options or {})
    base = base or ClassifierConfig()
    chosen: dict[str, Any] = {}
    if "pool_size" not in options:
        chosen["pool_size"] = default_pool_size(profile)
    if "nb_buckets" not in options and base.nb_buckets:
        chosen["nb_buckets"] = default_nb_buckets(
            profile, max_len, options.get("nb_ngrams", base.nb_ngrams)
        )
    kernel = options.get("conv_kernel_size")
    longest = int(min(profile.lengths.max(initial=1), max_len))
    if kernel is not None and kernel > max(longest, 1):
        warnings.warn(
            f"conv_kernel_size {kernel} is longer than every training text (the longest has "
            f"{longest} tokens); using {max(longest, 1)}",
            SettingWarning,
            stacklevel=2,
        )
        chosen["conv_kernel_size"] = max(longest, 1)
    config = dataclasses.replace(
        base, **{**options, **chosen, "vocab_size": vocab_size, "num_classes": num_classes}
    )
    return config, chosen


def class_weights(class_counts: Sequence[int], how: str) -> np.ndarray:
    """Per-class loss weights (C,) float32, mean 1 over the training examples.

    ``"none"``: all 1. ``"balanced"``: ``n / (C n_c)`` (scikit-learn's "balanced"; each class
    weighs as much in the loss). ``"sqrt"``: the square root of that, halfway in log space: a
    rare class is no longer drowned out (a model that never predicts it pays for it), while
    accuracy, which counts every example the same, is hardly moved on mildly imbalanced data.
    """
    counts = np.asarray(class_counts, np.float64)
    if how == "none" or counts.size == 0:
        return np.ones(counts.size, np.float32)
    present = counts > 0
    balanced = np.where(present, counts.sum() / (present.sum() * np.maximum(counts, 1)), 0.0)
    weights = balanced if how == "balanced" else np.sqrt(balanced)
    weights /= (weights * counts).sum() / counts.sum()  # mean weight over examples: 1
    return weights.astype(np.float32)


def describe(chosen: dict[str, Any]) -> str:
    """One line naming what was resolved from the data."""
    return ", ".join(f"{k}={v}" for k, v in chosen.items())
