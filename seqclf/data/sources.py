"""Labelled texts from CSV/TSV/JSON Lines tables or class folders, and ``read_dataset``, which
picks the reader (a folder, a file, else a TFDS name: ``seqclf.data.tfds_source``).

``TextDataset`` and the helpers the readers share are in ``seqclf.data.dataset``; their names
are importable from here too, as before the split. This module runs past ~400 lines because
each way a table can be malformed (encoding, quoting, a missing column, extra fields, empty or
look-alike labels) has its own check and one-line message, each next to the parser it guards.
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
from os import PathLike
from pathlib import Path
from typing import Any

import numpy as np

from seqclf.data.dataset import QUOTE_LIMIT as QUOTE_LIMIT
from seqclf.data.dataset import LabelWarning as LabelWarning
from seqclf.data.dataset import TextDataset as TextDataset
from seqclf.data.dataset import check_file as check_file
from seqclf.data.dataset import cut as cut
from seqclf.data.dataset import quoted as quoted
from seqclf.data.tfds_source import PREPARE_PACKAGES as PREPARE_PACKAGES
from seqclf.data.tfds_source import UnknownDatasetError as UnknownDatasetError
from seqclf.data.tfds_source import _check_tfds_name
from seqclf.data.tfds_source import _read_decoded as _read_decoded
from seqclf.data.tfds_source import _read_records as _read_records
from seqclf.data.tfds_source import read_tfds as read_tfds
from seqclf.data.tfds_source import resolve_data_dir as resolve_data_dir

TABLE_FORMATS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
}
_UTF8_BOM = b"\xef\xbb\xbf"


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
