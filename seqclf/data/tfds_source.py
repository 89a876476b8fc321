"""Labelled texts from TensorFlow Datasets, read without TensorFlow.

TFDS datasets are read with ``tfds.data_source`` (random access to array_record files), which needs
no TensorFlow: only preparing a dataset that is not on disk yet does (``seqclf[prepare]``). Raw
records are parsed for just the text and label features (``_read_records``), with TFDS's own
decoding (``_read_decoded``) as the reference and the fallback.
"""

from __future__ import annotations

import difflib
import os
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from seqclf.data.dataset import QUOTE_LIMIT, TextDataset, cut, quoted

_TFDS_READ_CHUNK = 5000


class UnknownDatasetError(ValueError):
    """A name that TFDS does not know."""


def resolve_data_dir(data_dir: str | PathLike | None) -> str | None:
    """The TFDS data_dir to use: ``data_dir``, else ``$TFDS_DATA_DIR``, else None (TFDS default)."""
    if data_dir is not None:
        return os.fspath(data_dir)
    return os.environ.get("TFDS_DATA_DIR") or None


# What preparing a TFDS dataset imports (module -> pip package): TensorFlow, and
# importlib_resources, which TFDS imports while preparing but does not require on Python >= 3.9.
PREPARE_PACKAGES = {"tensorflow": "tensorflow-cpu", "importlib_resources": "importlib_resources"}


def _missing_prepare_packages() -> list[str]:
    """The pip packages of ``PREPARE_PACKAGES`` that cannot be imported."""
    import importlib.util

    missing = []
    for module, package in PREPARE_PACKAGES.items():
        try:
            found = importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            missing.append(package)
    return missing


def _not_prepared(name: str, builder: Any, data_dir: str | None, install: str = "") -> str:
    """Where a dataset that is not prepared was looked for, as absolute paths, and what to pass
    (or, with ``install``, what to install to prepare it there)."""
    looked = os.path.abspath(os.fspath(builder.data_dir))
    text = f"TFDS dataset {name!r} is not prepared in {looked}"
    if data_dir is not None:
        root = Path(data_dir).absolute()
        base = name.split("/")[0].split(":")[0]
        if root.name == base:  # the dataset's own folder given instead of the data_dir
            text += f" (to use {root}, pass its parent folder {root.parent})"
    prepared_copy = "pass --data-dir (data_dir=) of the folder that holds a prepared copy"
    if install:
        return f"{text}; preparing it there needs {install}, or {prepared_copy}"
    return f"{text}; {prepared_copy}"


def _prepare(name: str, builder: Any, data_dir: str | None) -> None:
    """``download_and_prepare`` in array_record format, or one line saying what it needs."""
    missing = _missing_prepare_packages()
    if missing:
        install = f"pip install 'seqclf[prepare]' (missing: {', '.join(missing)})"
        raise RuntimeError(_not_prepared(name, builder, data_dir, install))
    try:
        builder.download_and_prepare(file_format="array_record")
    except Exception as e:  # no network, a partial download, ...: one line, the cause chained
        looked = os.path.abspath(os.fspath(builder.data_dir))
        raise RuntimeError(
            f"preparing TFDS dataset {name!r} in {looked} failed: {type(e).__name__}: "
            f"{cut(str(e).splitlines()[0] if str(e) else '')}"
        ) from e


def _builder(name: str, data_dir: str | None) -> Any:
    import tensorflow_datasets as tfds

    not_found = getattr(getattr(tfds.core, "registered", None), "DatasetNotFoundError", None)
    try:
        return tfds.builder(name, data_dir=data_dir)
    except Exception as e:
        if not_found is None or not isinstance(e, not_found):
            if not isinstance(e, (ValueError, AssertionError)):
                raise
            # An unknown config or version (TFDS raises AssertionError for the latter).
            message = cut(str(e).strip(), 4 * QUOTE_LIMIT)
            raise ValueError(f"TFDS dataset {name!r}: {message}") from e
    base = name.split("/")[0].split(":")[0]
    try:
        known = tfds.list_builders(with_community_datasets=False)
    except Exception:  # only for the hint
        known = []
    close = difflib.get_close_matches(base, sorted(set(known)), n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownDatasetError(f"unknown TFDS dataset {name!r}{hint}") from None


def _text_and_label_keys(name: str, info: Any) -> tuple[str, str]:
    """Feature names of the text and the label: the supervised keys, else the only Text and
    ClassLabel features."""
    import tensorflow_datasets as tfds

    features = info.features
    keys = list(features.keys())
    sk = info.supervised_keys
    if isinstance(sk, (tuple, list)) and len(sk) >= 2 and all(isinstance(k, str) for k in sk[:2]):
        text_key, label_key = sk[0], sk[1]
    else:
        texts = [k for k in keys if isinstance(features[k], tfds.features.Text)]
        labels = [k for k in keys if isinstance(features[k], tfds.features.ClassLabel)]
        if len(texts) != 1 or len(labels) != 1:
            raise ValueError(
                f"TFDS dataset {name!r} has no supervised keys, and its features {keys} do not "
                f"hold exactly one Text and one ClassLabel (Text: {texts}, ClassLabel: {labels})"
            )
        text_key, label_key = texts[0], labels[0]
    text_feature, label_feature = features[text_key], features[label_key]
    if not isinstance(text_feature, tfds.features.Text):
        raise ValueError(
            f"TFDS dataset {name!r} is not a text dataset: its supervised input {text_key!r} is "
            f"{type(text_feature).__name__}, not Text"
        )
    if getattr(text_feature, "encoder", None) is not None:
        raise ValueError(
            f"TFDS dataset {name!r} stores its text already encoded (subwords/bytes); "
            "use a plain-text config, e.g. 'imdb_reviews/plain_text'"
        )
    if not isinstance(label_feature, tfds.features.ClassLabel):
        raise ValueError(
            f"TFDS dataset {name!r} is not a classification dataset: its label {label_key!r} is "
            f"{type(label_feature).__name__}, not ClassLabel"
        )
    return text_key, label_key


def read_tfds(
    name: str = "imdb_reviews",
    split: str = "train",
    data_dir: str | PathLike | None = None,
    download: bool = True,
) -> TextDataset:
    """Loads a TFDS text-classification dataset (a prepared array_record copy, no TensorFlow).

    Args:
      name: TFDS name, optionally with config and version (``"imdb_reviews/plain_text:1.0.0"``).
      split: TFDS split, slicing included (``"train[:2%]"``, ``"test[:200]"``).
      data_dir: the TFDS data_dir; None: ``$TFDS_DATA_DIR``, else TFDS's default.
      download: prepare the dataset if it is not in data_dir (needs TensorFlow). With False, a
        missing dataset raises FileNotFoundError.

    Returns:
      The split as a ``TextDataset``; ``classes`` are the ClassLabel's names.
    """
    data_dir = resolve_data_dir(data_dir)
    if data_dir is not None and not Path(data_dir).is_dir():
        raise FileNotFoundError(
            f"the TFDS data directory {Path(data_dir).absolute()} (--data-dir, data_dir= or "
            f"$TFDS_DATA_DIR) does not exist; pass the folder that holds {name.split('/')[0]!r}, "
            "or create it to prepare the dataset there"
        )
    builder = _builder(name, data_dir)
    text_key, label_key = _text_and_label_keys(name, builder.info)
    if not builder.is_prepared():
        if not download:
            raise FileNotFoundError(_not_prepared(name, builder, data_dir))
        _prepare(name, builder, data_dir)
    file_format = str(getattr(builder.info, "file_format", "") or "").lower()
    if file_format and "array_record" not in file_format and "parquet" not in file_format:
        raise RuntimeError(
            f"TFDS dataset {name!r} in {builder.data_dir} is prepared as {file_format}, which has "
            "no random access; prepare it again with file_format='array_record' in another data_dir"
        )
    _check_split_not_empty(builder, name, split)
    read = _read_records(name, split, data_dir, text_key, label_key)
    if read is None:  # records that are not plain tf.train.Examples: let TFDS decode them
        read = _read_decoded(name, split, data_dir, text_key, label_key)
    texts, labels = read
    classes = list(builder.info.features[label_key].names)
    return TextDataset(texts, np.asarray(labels, dtype=np.int32), classes)


def _check_split_not_empty(builder: Any, name: str, split: str) -> None:
    """An empty split (``"train[:0]"``, ``"test[5:5]"``) is an error that says so; TFDS itself
    fails on it with a message about file paths."""
    try:
        size = builder.info.splits[split].num_examples
    except Exception:  # an unknown split or a bad slice: _open_source reports it
        return
    if size == 0:
        raise ValueError(f"TFDS dataset {name!r}: split {split!r} is empty (0 examples)")


def _open_source(name: str, split: str, data_dir: str | None, **kwargs: Any) -> Any:
    import tensorflow_datasets as tfds

    try:
        return tfds.data_source(name, split=split, data_dir=data_dir, download=False, **kwargs)
    except ValueError as e:  # unknown split, bad slice
        raise ValueError(f"TFDS dataset {name!r}: {e}") from None


def _get_items(source: Any, lo: int, hi: int) -> list[Any]:
    if hasattr(source, "__getitems__"):
        return list(source.__getitems__(list(range(lo, hi))))
    return [source[i] for i in range(lo, hi)]


def _decode_text(t: Any, where: str) -> str:
    if isinstance(t, bytes):
        try:
            return t.decode("utf-8")
        except UnicodeDecodeError:
            raise ValueError(f"{where} is not valid UTF-8") from None
    return str(t)


def _read_decoded(
    name: str, split: str, data_dir: str | None, text_key: str, label_key: str
) -> tuple[list[str], list[int]]:
    """Texts and labels of a split, decoded by TFDS: the reference path."""
    source = _open_source(name, split, data_dir)
    texts: list[str] = []
    labels: list[int] = []
    for lo in range(0, len(source), _TFDS_READ_CHUNK):
        items = _get_items(source, lo, min(lo + _TFDS_READ_CHUNK, len(source)))
        for i, item in enumerate(items, start=lo):
            texts.append(_decode_text(item[text_key], f"{name} {split}: text {i}"))
            labels.append(int(item[label_key]))
    return texts, labels


def _read_records(
    name: str, split: str, data_dir: str | None, text_key: str, label_key: str
) -> tuple[list[str], list[int]] | None:
    """``_read_decoded``, about 2x faster: raw records, parsing only the two features.

    TFDS stores a Text feature as one ``bytes_list`` value and a ClassLabel as one ``int64_list``
    value of a ``tf.train.Example``; TFDS's own decoding spends most of its time in Python around
    the protobuf parser. Returns None where the records do not look like that.
    """
    import tensorflow_datasets as tfds

    try:
        from google.protobuf.message import DecodeError
        from tensorflow_datasets.core.example_parser import tf_example_pb2

        raw = tfds.decode.DeserializeMethod.RAW_BYTES
    except (ImportError, AttributeError):
        return None
    source = _open_source(name, split, data_dir, deserialize_method=raw)
    parse = tf_example_pb2.Example.FromString
    raw_texts: list[bytes] = []
    labels: list[int] = []
    try:
        for lo in range(0, len(source), _TFDS_READ_CHUNK):
            for record in _get_items(source, lo, min(lo + _TFDS_READ_CHUNK, len(source))):
                feature = parse(record).features.feature
                (text,) = feature[text_key].bytes_list.value  # exactly one value, or fall back
                (label,) = feature[label_key].int64_list.value
                raw_texts.append(text)
                labels.append(int(label))
    except (DecodeError, TypeError, ValueError):
        return None
    texts = [_decode_text(t, f"{name} {split}: text {i}") for i, t in enumerate(raw_texts)]
    return texts, labels


def _check_tfds_name(source: str) -> None:
    """Raise, in one line, unless ``source`` (not a file or folder) may name a TFDS dataset.

    TFDS answers a name it cannot parse (``"data/reviews"``, ``"my-data"``) with 17 lines of name
    syntax; a source whose dataset name is no registered builder is instead a missing file or
    folder if it looks like a path, else an unknown dataset (with a did-you-mean).
    """
    import tensorflow_datasets as tfds

    first = source.split("/")[0]
    if ":" in first and not source.startswith((".", "~")):
        return  # "namespace:name": a community dataset; TFDS resolves the namespace
    try:
        known = sorted(set(tfds.list_builders(with_community_datasets=False)))
    except Exception:  # cannot tell: let TFDS try
        return
    base = first.split(":")[0]
    if base in known:
        return
    if any(c in source for c in "/\\") or source.startswith((".", "~")):
        raise FileNotFoundError(
            f"no such file or folder: {Path(source).absolute()} (nor a TFDS dataset of that name)"
        )
    close = difflib.get_close_matches(base, known, n=3)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownDatasetError(
        f"unknown TFDS dataset {quoted(source)}{hint} (and there is no file or folder "
        f"{quoted(source)})"
    )
