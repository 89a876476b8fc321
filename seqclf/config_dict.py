"""One rule for reading a saved configuration dict back into its dataclass.

Every configuration (``ClassifierConfig``, ``TextConfig``, ``TrainConfig``) is saved as a JSON
dict with each checkpoint. Reading one back:

- a key the dataclass does not have is an error naming it (a config from another program, or
  from a newer seqclf, must not be half-read in silence), except the keys a documented older
  version wrote, which are dropped;
- a field the dict lacks (saved before the field existed) takes ``before_field``'s value, the one
  that reproduces what was saved, else the field's default.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping
from typing import Any, TypeVar

T = TypeVar("T")


def config_from_dict(
    cls: type[T],
    d: Mapping[str, Any],
    *,
    older_keys: Iterable[str] = (),
    before_field: Mapping[str, Any] | None = None,
) -> T:
    """``cls(**d)`` by the rule above.

    Args:
      cls: a dataclass.
      d: its saved dict (``to_dict()``).
      older_keys: keys an older version saved that mean nothing now (dropped).
      before_field: values for fields ``d`` predates.

    Raises:
      ValueError: ``d`` is not a dict, or has a key ``cls`` does not know, e.g.
        "unknown TextConfig key(s): 'max_length'".
    """
    if not isinstance(d, Mapping):
        raise ValueError(f"a saved {cls.__name__} must be a dict, got {type(d).__name__}")
    known = {f.name for f in dataclasses.fields(cls)}
    dropped = set(older_keys)
    unknown = sorted(k for k in d if k not in known and k not in dropped)
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} key(s): {', '.join(map(repr, unknown))} "
            f"(known: {', '.join(sorted(known))})"
        )
    given = {k: v for k, v in d.items() if k in known}
    return cls(**{**(before_field or {}), **given})


def reject_non_finite(config: Any, what: str) -> None:
    """Raise ``ValueError("invalid <what>: <field> must be a finite number, got nan; ...")`` if a
    float field of the dataclass ``config`` is NaN or infinite. Called first in a config's
    ``__post_init__``: NaN passes every range comparison after it."""
    problems = [
        f"{f.name} must be a finite number, got {value}"
        for f in dataclasses.fields(config)
        if isinstance(value := getattr(config, f.name), float) and not math.isfinite(value)
    ]
    if problems:
        raise ValueError(f"invalid {what}: " + "; ".join(problems))
