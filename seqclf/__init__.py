"""seqclf: sequence classification in JAX/Flax, from readable pure functions.

The pure functions live in ``seqclf.ops`` (recurrent cells and drivers, Conv1D, max pooling);
``seqclf.interop`` converts PyTorch recurrent weights; the rest is listed below.
"""

from seqclf import ops
from seqclf.checkpoint import CheckpointError, CheckpointStore
from seqclf.cpu_allocator import keep_freed_memory
from seqclf.data import (
    TextDataset,
    Vocabulary,
    batches,
    load_any,
    load_folder,
    load_table,
    load_tfds,
    read_texts,
    train_validation_split,
)
from seqclf.experiment import TrainingRun, train_text_classifier
from seqclf.layers import Conv1D, MaxPooling1D, Recurrent
from seqclf.model import ClassifierConfig, SequenceClassifier, build_classifier
from seqclf.predict import EmptyTextWarning, Predictor, load
from seqclf.report import EvaluationReport, evaluation_report
from seqclf.train import (
    FitResult,
    TrainConfig,
    TrainingDiverged,
    TrainState,
    create_train_state,
    eval_step,
    evaluate,
    fit,
    train_step,
)

__all__ = [
    "CheckpointError",
    "CheckpointStore",
    "ClassifierConfig",
    "EmptyTextWarning",
    "EvaluationReport",
    "Conv1D",
    "FitResult",
    "MaxPooling1D",
    "Predictor",
    "Recurrent",
    "SequenceClassifier",
    "TextDataset",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "TrainingRun",
    "Vocabulary",
    "batches",
    "build_classifier",
    "create_train_state",
    "eval_step",
    "evaluate",
    "evaluation_report",
    "fit",
    "keep_freed_memory",
    "load",
    "load_any",
    "load_folder",
    "load_table",
    "load_tfds",
    "ops",
    "read_texts",
    "train_step",
    "train_text_classifier",
    "train_validation_split",
]
__version__ = "0.1.0"
