"""The data readers' older names, still working with a ``DeprecationWarning``: ``seqclf.load``
loads a model, ``seqclf.read_table`` / ``read_folder`` / ``read_tfds`` / ``read_dataset`` read
data (they were ``load_table`` / ``load_folder`` / ``load_tfds`` / ``load_any``)."""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

OLD_NAMES = {
    "load_table": "read_table",
    "load_folder": "read_folder",
    "load_tfds": "read_tfds",
    "load_any": "read_dataset",
}


def old_name(name: str) -> Callable[..., Any]:
    """The reader once called ``name``, warning that it has a new name when called."""
    from seqclf.data import sources

    new = OLD_NAMES[name]
    reader = getattr(sources, new)

    @functools.wraps(reader)
    def alias(*args: Any, **kwargs: Any) -> Any:
        warnings.warn(
            f"seqclf.{name} is now seqclf.{new} (seqclf.load loads a trained model)",
            DeprecationWarning,
            stacklevel=2,
        )
        return reader(*args, **kwargs)

    alias.__name__ = alias.__qualname__ = name
    return alias
