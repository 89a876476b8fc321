"""Truncation, length buckets and padded batches of token ids, as plain numpy.

Every batch is a dict of numpy arrays, padded with 0 (``PAD``) at the end of each row:

    tokens:  int32 (B, T)   T = the smallest bucket boundary >= the longest row of the batch
    lengths: int32 (B,)     number of real tokens of each row (0 for an empty text)
    labels:  int32 (B,)     only when labels are given
    index:   int64 (B,)     position of each row in the input list

Bucketing keeps the number of distinct shapes, and so of jit compilations, to ``len(buckets)``
(the idea of the Flax SST-2 example's input pipeline). Shuffled epochs are a pure function of
``(seed, epoch)``, so a run resumed at epoch ``e`` sees exactly the batches of an uninterrupted run.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

#: When shuffling, rows are sorted by length within windows of this many batches.
SORT_WINDOW_BATCHES = 50


def truncate(ids: np.ndarray, max_len: int, truncating: str = "pre") -> np.ndarray:
    """Cuts a sequence of token ids to at most ``max_len``.

    Args:
      ids: int (T,).
      max_len: the longest sequence kept, > 0.
      truncating: ``"pre"`` drops tokens from the start and keeps the end (the Keras
        ``pad_sequences`` default), ``"post"`` keeps the start.

    Returns:
      ``ids`` itself if ``T <= max_len``, else a view of (max_len,).
    """
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}")
    if len(ids) <= max_len:
        return ids
    return ids[-max_len:] if truncating == "pre" else ids[:max_len]


def bucket_boundaries(max_len: int, num_buckets: int = 4) -> list[int]:
    """Evenly spaced padded lengths ending at ``max_len``.

    Each boundary but the last is rounded up to a multiple of 8; the last is ``max_len``. Duplicates
    are merged, so short ``max_len`` may give fewer than ``num_buckets``.

    Returns:
      Increasing boundaries, e.g. ``bucket_boundaries(200, 4) == [56, 104, 152, 200]``.
    """
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    if num_buckets <= 0:
        raise ValueError(f"num_buckets must be positive, got {num_buckets}")
    out = []
    for k in range(1, num_buckets):
        b = min(((max_len * k + num_buckets - 1) // num_buckets + 7) // 8 * 8, max_len)
        if not out or b > out[-1]:
            out.append(b)
    if not out or out[-1] < max_len:
        out.append(max_len)
    return out


def padded_length(longest: int, buckets: Sequence[int]) -> int:
    """The smallest of the increasing ``buckets`` that holds a row of ``longest`` tokens (the
    padded width of a batch whose longest row it is; ``longest`` <= the last bucket)."""
    return int(buckets[int(np.searchsorted(buckets, longest))])


def num_batches(n: int, batch_size: int, drop_remainder: bool = False) -> int:
    """Number of batches ``batches`` yields for ``n`` sequences."""
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    return n // batch_size if drop_remainder else -(-n // batch_size)


def _epoch_order(
    lengths: np.ndarray, batch_size: int, seed: int, epoch: int, drop_remainder: bool
) -> list[np.ndarray]:
    """Row indices of each batch of one shuffled epoch, rows of similar length together."""
    n = lengths.size
    rng = np.random.default_rng([seed, epoch])
    perm = rng.permutation(n)
    window = batch_size * SORT_WINDOW_BATCHES
    for lo in range(0, n, window):
        chunk = perm[lo : lo + window]
        perm[lo : lo + window] = chunk[np.argsort(lengths[chunk], kind="stable")]
    groups = [perm[lo : lo + batch_size] for lo in range(0, n, batch_size)]
    if drop_remainder and groups and groups[-1].size < batch_size:
        groups.pop()
    return [groups[i] for i in rng.permutation(len(groups))]


def batches(
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray | None,
    batch_size: int,
    *,
    max_len: int,
    truncating: str = "pre",
    buckets: Sequence[int] | None = None,
    shuffle: bool = False,
    seed: int = 0,
    epoch: int = 0,
    drop_remainder: bool = False,
    sort_by_length: bool = False,
) -> Iterator[dict[str, np.ndarray]]:
    """Padded batches of one epoch (see the module docstring for the arrays).

    Args:
      token_ids: N sequences of int ids (T_i,), e.g. from ``Vocabulary.encode_batch``.
      labels: int (N,), or None to leave ``"labels"`` out (prediction).
      batch_size: B, > 0. The last batch may be smaller unless ``drop_remainder``.
      max_len: longer sequences are cut by ``truncate``.
      truncating: ``"pre"`` (keep the end, Keras's default) or ``"post"`` (keep the start).
      buckets: allowed padded lengths T, increasing, the last >= ``max_len``; None means one bucket,
        ``[max_len]`` (every batch (B, max_len), like Keras ``pad_sequences(maxlen=max_len)``).
        ``bucket_boundaries(max_len)`` gives a few evenly spaced ones.
      shuffle: False keeps the input order (for predictions). True shuffles, sorts rows by length
        within windows of ``SORT_WINDOW_BATCHES`` batches, cuts batches and shuffles their order.
      seed, epoch: the shuffle is a function of both, nothing else.
      drop_remainder: leave out the last, smaller batch.
      sort_by_length: without ``shuffle``: rows sorted by length (stable) before the batches are
        cut, so that each batch is padded only to its own rows' bucket instead of its longest
        neighbour's (IMDB's 25,000 test reviews in batches of 64: 37 of 391 batches at the
        longest bucket instead of all 391, half the padded steps); ``index`` says where each
        row goes back. For predictions over many texts.

    Returns:
      An iterator over dicts ``{"tokens", "lengths", "labels", "index"}``. Arguments are checked
      when ``batches`` is called, not when iteration starts.
    """
    if batch_size <= 0:
        raise ValueError(f"batch_size must be positive, got {batch_size}")
    if max_len <= 0:
        raise ValueError(f"max_len must be positive, got {max_len}")
    if truncating not in ("pre", "post"):
        raise ValueError(f"truncating must be 'pre' or 'post', got {truncating!r}")
    n = len(token_ids)
    if labels is not None:
        labels = np.asarray(labels)
        if labels.shape != (n,):
            raise ValueError(
                f"labels must have shape ({n},) to match token_ids, got {labels.shape}"
            )
        labels = labels.astype(np.int32)
    bounds = np.asarray([max_len] if buckets is None else list(buckets), dtype=np.int64)
    if bounds.size == 0 or (bounds <= 0).any() or (np.diff(bounds) <= 0).any():
        raise ValueError(f"buckets must be positive and increasing, got {list(bounds)}")
    if bounds[-1] < max_len:
        raise ValueError(f"the last bucket ({bounds[-1]}) must be >= max_len ({max_len})")
    lengths = np.fromiter((min(len(x), max_len) for x in token_ids), dtype=np.int32, count=n)

    if shuffle:
        groups = _epoch_order(lengths, batch_size, seed, epoch, drop_remainder)
    else:
        stop = n - n % batch_size if drop_remainder else n
        order = np.argsort(lengths[:stop], kind="stable") if sort_by_length else np.arange(stop)
        groups = [order[lo : lo + batch_size] for lo in range(0, stop, batch_size)]

    def generate() -> Iterator[dict[str, np.ndarray]]:
        for rows in groups:
            row_lengths = lengths[rows]
            width = padded_length(int(row_lengths.max(initial=0)), bounds)
            tokens = np.zeros((rows.size, width), dtype=np.int32)
            for r, i in enumerate(rows.tolist()):
                ids = truncate(token_ids[i], max_len, truncating)
                tokens[r, : len(ids)] = ids
            batch = {"tokens": tokens, "lengths": row_lengths}
            if labels is not None:
                batch["labels"] = labels[rows]
            batch["index"] = rows.astype(np.int64)
            yield batch

    return generate()


def pad_batch(batch: dict[str, np.ndarray], batch_size: int) -> tuple[dict[str, np.ndarray], int]:
    """Pads a (final, partial) batch with empty rows up to ``batch_size``, so shapes stay fixed.

    Padding rows have zero tokens, length 0, label 0 and index -1. A ``"weights"`` entry, float32
    (batch_size,), is 1 for real rows and 0 for padding: weight losses and metrics by it, or keep
    only the first ``n_real`` rows of the outputs.

    Args:
      batch: a batch from ``batches``, B <= ``batch_size`` rows.
      batch_size: the size to pad to.

    Returns:
      ``(padded batch, n_real)`` with ``n_real == B``. A full batch gets only ``"weights"``.
    """
    n_real = len(batch["tokens"])
    if n_real > batch_size:
        raise ValueError(f"batch has {n_real} rows, more than batch_size={batch_size}")
    out = {}
    for key, value in batch.items():
        if key == "weights":
            continue
        pad = np.full((batch_size - n_real, *value.shape[1:]), -1 if key == "index" else 0)
        out[key] = np.concatenate([value, pad.astype(value.dtype)])
    weights = np.zeros(batch_size, dtype=np.float32)
    weights[:n_real] = batch.get("weights", 1.0)
    out["weights"] = weights
    return out, n_real
