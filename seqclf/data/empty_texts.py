"""Texts with no tokens: still classified, and said once per call (``EmptyTextWarning``).

Shared by ``seqclf.Predictor`` and ``seqclf.exported`` (numpy only), so that a model and its
export say the same thing about the same texts.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence

import numpy as np

SHOWN_POSITIONS = 5  # positions of empty texts named in the warning


class EmptyTextWarning(UserWarning):
    """Some texts had no tokens at all (empty, whitespace, or only characters the tokenizer
    drops).

    Attributes:
      positions: where the first of them are in the input, counted from 0 (``texts[i]``).
    """

    def __init__(self, message: str = "", positions: Iterable[int] = ()):
        super().__init__(message)
        self.positions = list(positions)


class EmptyTexts:
    """Counts the texts without a token in a stream of encoded chunks, then warns once."""

    def __init__(self) -> None:
        self.count = 0
        self.positions: list[int] = []

    def see(self, ids: Sequence[np.ndarray], offset: int) -> None:
        """Note the empty ones among ``ids``, the encoded texts ``offset``, ``offset + 1``, ..."""
        for i, x in enumerate(ids):
            if len(x) == 0:
                self.count += 1
                if len(self.positions) < SHOWN_POSITIONS:
                    self.positions.append(offset + i)

    def warn(self, total: int, stacklevel: int = 3) -> None:
        """An ``EmptyTextWarning`` if any of the ``total`` texts seen had no tokens."""
        if not self.count:
            return
        more = ", ..." if self.count > len(self.positions) else ""
        message = (
            f"{self.count} of {total} texts have no tokens (empty, whitespace, or only characters "
            f"the tokenizer drops), at position(s) {', '.join(map(str, self.positions))}{more}; "
            "they were still classified, as the model classifies an empty text"
        )
        warnings.warn(EmptyTextWarning(message, self.positions), stacklevel=stacklevel)
