"""Data: labelled texts from TFDS, tables or folders; how text becomes ids (``TextConfig``,
tokenization, vocabulary); padded batches."""

from typing import Any

from seqclf.data.aliases import OLD_NAMES, old_name
from seqclf.data.batching import (
    batches,
    bucket_boundaries,
    num_batches,
    pad_batch,
    truncate,
)
from seqclf.data.preprocessing import TextConfig
from seqclf.data.sources import (
    LabelWarning,
    TextDataset,
    UnknownDatasetError,
    read_dataset,
    read_folder,
    read_numbered_texts,
    read_table,
    read_texts,
    read_tfds,
    resolve_data_dir,
    train_validation_split,
)
from seqclf.data.text import (
    OOV,
    OOV_TOKEN,
    PAD,
    PAD_TOKEN,
    TOKENIZERS,
    Vocabulary,
    standardize,
    tokenize,
)

__all__ = [
    "LabelWarning",
    "OOV",
    "OOV_TOKEN",
    "PAD",
    "PAD_TOKEN",
    "TOKENIZERS",
    "TextConfig",
    "TextDataset",
    "UnknownDatasetError",
    "Vocabulary",
    "batches",
    "bucket_boundaries",
    "read_dataset",
    "read_folder",
    "read_table",
    "read_tfds",
    "num_batches",
    "pad_batch",
    "read_numbered_texts",
    "read_texts",
    "resolve_data_dir",
    "standardize",
    "tokenize",
    "train_validation_split",
    "truncate",
]


def __getattr__(name: str) -> Any:
    if name in OLD_NAMES:  # load_table & co., the readers' older names
        return old_name(name)
    raise AttributeError(f"module 'seqclf.data' has no attribute {name!r}")
