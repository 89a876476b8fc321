"""Labelled texts from TFDS, CSV/TSV/JSON Lines tables or class folders, as one ``TextDataset``.

TFDS datasets are read with ``tfds.data_source`` (random access to array_record files), which needs
no TensorFlow: only preparing a dataset that is not on disk yet does (``seqclf[prepare]``). Raw
records are parsed for just the text and label features (``_read_records``), with TFDS's own
decoding (``_read_decoded``) as the reference and the fallback.
"""

from __future__ import annotations

import csv
import difflib
import io
import itertools
import json
import math
import os
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_UTF8_BOM = b"\xef\xbb\xbf"
_TFDS_READ_CHUNK = 5000
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


# ---------------------------------------------------------------------------------------------
# TFDS
# ---------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------
# Tables: CSV, TSV, JSON Lines
# ---------------------------------------------------------------------------------------------


def _decode_file(path: Path) -> str:
    raw = path.read_bytes()
    if raw.startswith(_UTF8_BOM):
        raw = raw[len(_UTF8_BOM) :]
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        line = raw.count(b"\n", 0, e.start) + 1
        raise ValueError(f"{path}: line {line} is not valid UTF-8 ({e.reason})") from None


def _missing_column(path: Path, what: str, column: str, columns: Sequence[str], where: str) -> str:
    close = difflib.get_close_matches(column, list(columns), n=1)
    hint = f" (did you mean {quoted(close[0])}?)" if close else ""
    return (
        f"{path}{where}: no {what} column {column!r}{hint}; the columns are "
        f"{quoted(list(columns))}. Pass {what}_column= (--{what}-column) to name it."
    )


def _too_many_fields(path: Path, where: str, fields: int, header: int, fmt: str) -> str:
    """The message for a CSV/TSV row longer than the header: an unquoted delimiter in a text."""
    mark = "tab must be in double quotes"
    if fmt == "csv":
        mark = 'comma must be in double quotes ("like, this")'
    return (
        f"{path}: {where} has {fields} fields, the header {header}; a text holding a {mark}, "
        'with any " inside it doubled'
    )


def _table_rows(
    path: Path, content: str, fmt: str, text_column: str, label_column: str
) -> Iterator[tuple[str, Any, Any]]:
    """(location, text, label) of each record; location is e.g. ``"line 7"``."""
    if fmt in ("csv", "tsv"):
        csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
        reader = csv.reader(
            io.StringIO(content, newline=""), delimiter="," if fmt == "csv" else "\t"
        )
        header = next(reader, None)
        if header is None:
            raise ValueError(f"{path} is empty")
        header = [h.strip() for h in header]
        for what, column in (("text", text_column), ("label", label_column)):
            if column not in header:
                raise ValueError(_missing_column(path, what, column, header, ""))
        ti, li = header.index(text_column), header.index(label_column)
        line = reader.line_num + 1
        for row in reader:
            where, line = f"line {line}", reader.line_num + 1
            if not row:  # blank line
                continue
            if len(row) > len(header):
                raise ValueError(_too_many_fields(path, where, len(row), len(header), fmt))
            if len(row) <= max(ti, li):
                raise ValueError(f"{path}: {where} has {len(row)} fields, the header {len(header)}")
            yield where, row[ti], row[li]
        return
    if fmt != "jsonl":
        raise ValueError(f"unknown table format {fmt!r}; use one of csv, tsv, jsonl")
    if content.lstrip().startswith("["):  # a .json file holding one array of objects
        try:
            records = json.loads(content)
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        numbered = ((f"item {i}", r) for i, r in enumerate(records))
    else:
        numbered = (
            (f"line {n}", line) for n, line in enumerate(content.splitlines(), 1) if line.strip()
        )
    for where, record in numbered:
        if isinstance(record, str):
            try:
                record = json.loads(record)
            except json.JSONDecodeError as e:
                raise ValueError(f"{path}: {where} is not valid JSON: {e.msg}") from None
        if not isinstance(record, dict):
            raise ValueError(f"{path}: {where} is not a JSON object")
        for what, column in (("text", text_column), ("label", label_column)):
            if column not in record:
                raise ValueError(_missing_column(path, what, column, list(record), f": {where}"))
        yield where, record[text_column], record[label_column]


def _table_format(path: Path, format: str | None) -> str:
    """``"csv"``, ``"tsv"`` or ``"jsonl"``: ``format`` if given, else from the suffix."""
    fmt = (format or TABLE_FORMATS.get(path.suffix.lower(), "")).lower()
    if fmt not in ("csv", "tsv", "jsonl"):
        raise ValueError(
            f"{path}: cannot tell the table format from the suffix {path.suffix!r}; "
            f"pass format='csv', 'tsv' or 'jsonl' (suffixes: {sorted(TABLE_FORMATS)})"
        )
    return fmt


def utf8_lines(path: str | PathLike) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a UTF-8 file, read one line at a time, line endings kept.

    A leading BOM is dropped; a line that is not valid UTF-8 raises ValueError naming the file and
    the line when it is reached.
    """
    with open(path, "rb") as f:
        for n, raw in enumerate(f, 1):
            if n == 1 and raw.startswith(_UTF8_BOM):
                raw = raw[len(_UTF8_BOM) :]
            try:
                yield n, raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(f"{path}: line {n} is not valid UTF-8 ({e.reason})") from None


def read_texts(
    path: str | PathLike, text_column: str = "text", format: str | None = None
) -> Iterator[str]:
    """Streams the texts (no labels) of a CSV, TSV or JSON Lines file, for prediction.

    Rows are read one at a time, so a file of any size can be scored with
    ``Predictor.iter_predict_proba``. The format and (for CSV/TSV) the header are checked when
    ``read_texts`` is called; a bad row (not UTF-8, too few fields, not a JSON object, no text
    column, a text that is not a string) raises ValueError naming the file and the line when it is
    reached. A ``.json`` file holding one JSON array is read whole.

    Args:
      path: the file; its suffix gives the format unless ``format`` is given.
      text_column: the column (CSV/TSV header) or key (JSON) of the texts.
      format: ``"csv"``, ``"tsv"`` or ``"jsonl"``.

    Returns:
      An iterator over the texts, in file order; it raises ValueError at its end if the file has
      no rows.
    """
    return (text for _, text in read_numbered_texts(path, text_column, format))


def read_numbered_texts(
    path: str | PathLike, text_column: str = "text", format: str | None = None
) -> Iterator[tuple[str, str]]:
    """``read_texts``, each text with its place in the file: ``("line 7", text)`` (the line its
    row starts on, counted from 1), or ``("item 3", text)`` in a ``.json`` array (from 0)."""
    path = Path(path)
    fmt = _table_format(path, format)
    check_file(path)
    lines = utf8_lines(path)
    if fmt == "jsonl":
        return _json_texts(path, lines, text_column)
    csv.field_size_limit(max(csv.field_size_limit(), 2**31 - 1))
    reader = csv.reader((line for _, line in lines), delimiter="," if fmt == "csv" else "\t")
    header = next(reader, None)
    if header is None:
        raise ValueError(f"{path} is empty")
    header = [h.strip() for h in header]
    if text_column not in header:
        raise ValueError(_missing_column(path, "text", text_column, header, ""))
    return _csv_texts(path, reader, header.index(text_column), len(header), fmt)


def _csv_texts(
    path: Path, reader: Any, column: int, width: int, fmt: str
) -> Iterator[tuple[str, str]]:
    line = reader.line_num + 1
    rows = 0
    for row in reader:
        where, line = f"line {line}", reader.line_num + 1
        if not row:  # blank line
            continue
        if len(row) > width:
            raise ValueError(_too_many_fields(path, where, len(row), width, fmt))
        if len(row) <= column:
            raise ValueError(f"{path}: {where} has {len(row)} fields, the header {width}")
        rows += 1
        yield where, row[column]
    if not rows:
        raise ValueError(f"{path} has no rows")


def _json_texts(
    path: Path, lines: Iterator[tuple[int, str]], text_column: str
) -> Iterator[tuple[str, str]]:
    first = next(((n, line) for n, line in lines if line.strip()), None)
    if first is None:
        raise ValueError(f"{path} is empty")
    records: Iterator[tuple[str, Any]]
    if first[1].lstrip().startswith("["):  # one JSON array of objects: read it whole
        try:
            array = json.loads(_decode_file(path))
        except json.JSONDecodeError as e:
            raise ValueError(f"{path}: invalid JSON at line {e.lineno}: {e.msg}") from None
        records = ((f"item {i}", r) for i, r in enumerate(array))
    else:
        records = (
            (f"line {n}", _parse_json_line(path, n, line))
            for n, line in itertools.chain([first], lines)
            if line.strip()
        )
    rows = 0
    for where, record in records:
        if not isinstance(record, dict):
            raise ValueError(f"{path}: {where} is not a JSON object")
        if text_column not in record:
            raise ValueError(_missing_column(path, "text", text_column, list(record), f": {where}"))
        text = record[text_column]
        if not isinstance(text, str):
            raise ValueError(f"{path}: {where}: text must be a string, got {quoted(text, 40)}")
        rows += 1
        yield where, text
    if not rows:
        raise ValueError(f"{path} has no rows")


def _parse_json_line(path: Path, n: int, line: str) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {n} is not valid JSON: {e.msg}") from None


def _label_name(value: Any) -> str | None:
    """A label value as a class name: str (stripped) or int; None if it is not one."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, str) and value.strip():
        return value.strip()
    return None


def _as_int(name: str) -> int | None:
    try:
        return int(name)
    except ValueError:
        return None


def sort_class_names(names: Sequence[str]) -> list[str]:
    """Unique class names, sorted numerically if they are all integers, else alphabetically."""
    unique = set(names)
    if unique and all(_as_int(n) is not None for n in unique):
        return sorted(unique, key=lambda n: (int(n), n))
    return sorted(unique)


def _label_ids(
    path: Path | str, wheres: list[str], names: list[str], classes: list[str]
) -> np.ndarray:
    """Class id of each label name; an integer label that is not a class name is taken as an id
    when no class name is an integer (e.g. labels 0/1 for classes ['neg', 'pos'])."""
    index = {c: i for i, c in enumerate(classes)}
    ids_allowed = not any(_as_int(c) is not None for c in classes)
    out = np.empty(len(names), dtype=np.int32)
    for k, (where, name) in enumerate(zip(wheres, names, strict=True)):
        i = index.get(name)
        if i is None and ids_allowed:
            j = _as_int(name)
            i = j if j is not None and 0 <= j < len(classes) else None
        if i is None:
            same = [c for c in classes if c.casefold() == name.casefold()]
            hint = f" (it differs only in case from {quoted(same[0])})" if same else ""
            raise ValueError(
                f"{path}: {where}: label {quoted(name)} is not one of the classes "
                f"{quoted(classes)}{hint}"
            )
        out[k] = i
    return out


def similar_labels_message(spellings: dict[str, set[str]]) -> str | None:
    """What a ``LabelWarning`` says about the label names (stripped) and their spellings as read,
    or None when no two labels differ only in case or in surrounding spaces."""
    parts = []
    spaced = {name: raw for name, raw in spellings.items() if len(raw) > 1}
    if spaced:
        merged = "; ".join(
            f"{', '.join(quoted(r) for r in sorted(raw))} as {quoted(name)}"
            for name, raw in sorted(spaced.items())
        )
        parts.append(f"labels that differ only in surrounding spaces were read as one: {merged}")
    by_case: dict[str, list[str]] = {}
    for name in sorted(spellings):
        by_case.setdefault(name.casefold(), []).append(name)
    cased = [names for names in by_case.values() if len(names) > 1]
    if cased:
        groups = "; ".join(", ".join(quoted(n) for n in names) for names in cased)
        parts.append(f"labels that differ only in case are different classes: {groups}")
    return cut("; ".join(parts), 4 * QUOTE_LIMIT) if parts else None


def read_table(
    path: str | PathLike,
    text_column: str = "text",
    label_column: str = "label",
    format: str | None = None,
    classes: Sequence[str] | None = None,
) -> TextDataset:
    """Loads labelled texts from a CSV, TSV or JSON Lines file (UTF-8).

    Args:
      path: the file; its suffix (``.csv``, ``.tsv``, ``.jsonl``/``.ndjson``/``.json``) gives the
        format unless ``format`` is given. A ``.json`` file may also hold one array of objects.
      text_column, label_column: the column (CSV/TSV header) or key (JSON) names.
      format: ``"csv"``, ``"tsv"`` or ``"jsonl"``.
      classes: the class list to map labels onto (e.g. the training classes, at evaluation). A
        label that is not in it raises ValueError; an integer label that is not a class name
        is read as a class id when no class name is an integer. None: the sorted unique labels
        (numerically if they are all integers).

    Returns:
      A ``TextDataset`` whose ``classes`` are strings.
    """
    path = Path(path)
    fmt = _table_format(path, format)
    check_file(path)
    content = _decode_file(path)
    if not content.strip():
        raise ValueError(f"{path} is empty")
    texts, wheres, names = [], [], []
    spellings: dict[str, set[str]] = {}  # label name (stripped) -> its spellings in the file
    for where, text, label in _table_rows(path, content, fmt, text_column, label_column):
        if not isinstance(text, str):
            raise ValueError(f"{path}: {where}: text must be a string, got {quoted(text, 40)}")
        name = _label_name(label)
        if name is None:
            raise ValueError(
                f"{path}: {where}: label must be a class name or integer, got {quoted(label)}"
            )
        spellings.setdefault(name, set()).add(label if isinstance(label, str) else name)
        texts.append(text)
        wheres.append(where)
        names.append(name)
    if not texts:
        raise ValueError(f"{path} has no rows")
    similar = similar_labels_message(spellings)
    if similar:
        warnings.warn(f"{path}: {similar}", LabelWarning, stacklevel=2)
    class_list = sort_class_names(names) if classes is None else [str(c) for c in classes]
    return TextDataset(texts, _label_ids(path, wheres, names, class_list), class_list)


# ---------------------------------------------------------------------------------------------
# Folders: one subfolder of .txt files per class (aclImdb)
# ---------------------------------------------------------------------------------------------


def read_folder(path: str | PathLike, classes: Sequence[str] | None = None) -> TextDataset:
    """Loads ``path/<class>/*.txt`` (the aclImdb layout: ``train/pos/0_9.txt``, ...).

    Args:
      path: the folder holding one subfolder per class.
      classes: the subfolders to read, in class-id order. None: every subfolder that holds .txt
        files, sorted by name. Note that aclImdb's ``train/`` also holds ``unsup/`` (unlabelled
        reviews): pass ``classes=["neg", "pos"]`` there. Subfolders not in ``classes`` are ignored.

    Returns:
      A ``TextDataset``, files in class order, then by file name.
    """
    root = Path(path)
    if not root.is_dir():
        raise NotADirectoryError(f"{root} is not a folder")
    if classes is None:
        class_list = sorted(d.name for d in root.iterdir() if d.is_dir() and any(d.glob("*.txt")))
        if not class_list:
            raise ValueError(
                f"{root}: no subfolder holds .txt files; expected one folder per class, "
                "e.g. pos/ and neg/"
            )
    else:
        class_list = [str(c) for c in classes]
    texts: list[str] = []
    labels: list[int] = []
    for label, name in enumerate(class_list):
        for f in sorted((root / name).glob("*.txt")):
            try:
                texts.append(f.read_bytes().decode("utf-8"))
            except UnicodeDecodeError as e:
                raise ValueError(f"{f} is not valid UTF-8 ({e.reason} at byte {e.start})") from None
            labels.append(label)
    if not texts:
        raise ValueError(f"{root}: no .txt files in the class folders {class_list}")
    return TextDataset(texts, np.asarray(labels, dtype=np.int32), class_list)


# ---------------------------------------------------------------------------------------------
# Dispatch and splitting
# ---------------------------------------------------------------------------------------------


def read_dataset(
    path_or_name: str | PathLike,
    *,
    split: str = "train",
    data_dir: str | PathLike | None = None,
    download: bool = True,
    text_column: str = "text",
    label_column: str = "label",
    format: str | None = None,
    classes: Sequence[str] | None = None,
) -> TextDataset:
    """A folder -> ``read_folder``, a file -> ``read_table``, anything else -> ``read_tfds``.

    ``split``, ``data_dir`` and ``download`` apply to TFDS; ``text_column``, ``label_column`` and
    ``format`` to tables; ``classes`` to all three (for TFDS: renumber to these classes).
    """
    p = Path(path_or_name)
    if p.is_dir():
        return read_folder(p, classes=classes)
    if p.exists() or p.suffix.lower() in TABLE_FORMATS:
        check_file(p)  # a FIFO, a socket: say what it is before the suffix matters
        return read_table(p, text_column, label_column, format=format, classes=classes)
    _check_tfds_name(os.fspath(path_or_name))
    try:
        ds = read_tfds(os.fspath(path_or_name), split=split, data_dir=data_dir, download=download)
    except UnknownDatasetError as e:
        raise UnknownDatasetError(f"{e} (and there is no file or folder {str(p)!r})") from None
    return ds if classes is None else ds.with_classes(classes)


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


def train_validation_split(
    ds: TextDataset, fraction: float = 0.1, seed: int = 0
) -> tuple[TextDataset, TextDataset]:
    """Holds out ``fraction`` of each class (stratified, seeded) for validation.

    Each class gives ``round(fraction * its size)`` examples. Both parts keep the original order.

    Returns:
      ``(train, validation)``.
    """
    if not 0.0 < fraction < 1.0:
        raise ValueError(
            f"the validation fraction (valid_fraction=, --valid-fraction) must be in (0, 1), "
            f"got {fraction}"
        )
    rng = np.random.default_rng(seed)
    held = [np.zeros(0, np.int64)]
    for c in range(ds.num_classes):
        idx = np.flatnonzero(ds.labels == c)
        held.append(rng.permutation(idx)[: math.floor(fraction * idx.size + 0.5)])
    val = np.sort(np.concatenate(held))
    if val.size == 0 or val.size == len(ds):
        side = "validation" if val.size == 0 else "training"
        raise ValueError(
            f"fraction={fraction} of {len(ds)} examples leaves the {side} split empty; pass "
            "another valid_fraction= (--valid-fraction), or validation data (valid=, --valid)"
        )
    keep = np.ones(len(ds), dtype=bool)
    keep[val] = False
    return ds.subset(np.flatnonzero(keep)), ds.subset(val)
