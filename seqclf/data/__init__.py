"""Data: labelled texts from TFDS, tables or folders; how text becomes ids (``TextConfig``,
tokenization, vocabulary); padded batches."""

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
    load_any,
    load_folder,
    load_table,
    load_tfds,
    read_numbered_texts,
    read_texts,
    resolve_data_dir,
    train_validation_split,
)
from seqclf.data.text import OOV, OOV_TOKEN, PAD, PAD_TOKEN, Vocabulary, standardize, tokenize

__all__ = [
    "LabelWarning",
    "OOV",
    "OOV_TOKEN",
    "PAD",
    "PAD_TOKEN",
    "TextConfig",
    "TextDataset",
    "UnknownDatasetError",
    "Vocabulary",
    "batches",
    "bucket_boundaries",
    "load_any",
    "load_folder",
    "load_table",
    "load_tfds",
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
