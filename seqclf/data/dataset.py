"""``TextDataset``: labelled texts, whatever they were read from; and what every reader shares
(``LabelWarning``, quoting the data in messages, checking that a path is a readable file)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

QUOTE_LIMIT = 200  # characters of the data that a message quotes at most


class LabelWarning(UserWarning):
    """Labels that differ only in letter case or in surrounding spaces (``'pos'``, ``' pos'``,
    ``'POS'``): spaces are stripped (one class), case is kept (separate classes)."""


def quoted(value: Any, limit: int = QUOTE_LIMIT) -> str:
    """``repr(value)``, cut to ``limit`` characters with an ellipsis: what a message may quote
    from the data (a 50 MB "header" must not become a 50 MB error)."""
    return cut(repr(value), limit)


def cut(text: str, limit: int = QUOTE_LIMIT) -> str:
    """``text`` if it has at most ``limit`` characters, else its start and an ellipsis."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def check_file(path: Path) -> None:
    """Raise unless ``path`` is a regular file, saying what it is instead."""
    if path.is_file():
        return
    if not path.exists():
        raise FileNotFoundError(f"no such file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a file")
    if path.is_fifo():
        kind = "a FIFO (named pipe)"
    elif path.is_socket():
        kind = "a socket"
    elif path.is_block_device() or path.is_char_device():
        kind = "a device"
    else:
        kind = "something else"
    # Reading a FIFO would wait for a writer, and consume what it reads.
    raise OSError(f"{path} is {kind}, not a regular file; write the data to a file first")


@dataclass
class TextDataset:
    """N labelled documents.

    Attributes:
      texts: N documents.
      labels: int32 (N,), class ids in ``[0, len(classes))``.
      classes: the class names; ``classes[labels[i]]`` is the class of ``texts[i]``.
    """

    texts: list[str]
    labels: np.ndarray
    classes: list[str]

    def __post_init__(self) -> None:
        self.texts = list(self.texts)
        self.classes = [str(c) for c in self.classes]
        labels = np.asarray(self.labels)
        if labels.ndim != 1:
            raise ValueError(f"labels must have shape (N,), got {labels.shape}")
        if labels.size and not np.issubdtype(labels.dtype, np.integer):
            raise ValueError(f"labels must be integer class ids, got dtype {labels.dtype}")
        self.labels = labels.astype(np.int32)
        if len(self.texts) != self.labels.size:
            raise ValueError(f"{len(self.texts)} texts but {self.labels.size} labels")
        for i, t in enumerate(self.texts):
            if not isinstance(t, str):
                raise TypeError(f"text {i} must be str, got {type(t).__name__}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"class names must be unique, got {self.classes}")
        if self.labels.size and (self.labels.min() < 0 or self.labels.max() >= len(self.classes)):
            raise ValueError(
                f"labels must be in [0, {len(self.classes)}) for classes {self.classes}, "
                f"got values from {self.labels.min()} to {self.labels.max()}"
            )

    def __len__(self) -> int:
        return len(self.texts)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, TextDataset)
            and self.texts == other.texts
            and self.classes == other.classes
            and np.array_equal(self.labels, other.labels)
        )

    def __repr__(self) -> str:
        counts = np.bincount(self.labels, minlength=len(self.classes)).tolist()
        per_class = ", ".join(f"{c}: {n}" for c, n in zip(self.classes, counts, strict=True))
        return f"TextDataset({len(self)} texts; {per_class})"

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def subset(self, indices: Sequence[int] | np.ndarray) -> TextDataset:
        """The examples at ``indices`` (int (M,)), in that order, with the same classes."""
        idx = np.asarray(indices, dtype=np.int64).reshape(-1)
        return TextDataset([self.texts[i] for i in idx.tolist()], self.labels[idx], self.classes)

    def with_classes(self, classes: Sequence[str]) -> TextDataset:
        """The same examples with labels renumbered to ``classes`` (which must hold all of ours)."""
        classes = [str(c) for c in classes]
        missing = [c for c in self.classes if c not in classes]
        if missing:
            raise ValueError(
                f"classes {quoted(missing)} of the data are not in the given classes "
                f"{quoted(classes)}"
            )
        remap = np.asarray([classes.index(c) for c in self.classes], dtype=np.int32)
        labels = remap[self.labels] if self.labels.size else self.labels
        return TextDataset(self.texts, labels, classes)
