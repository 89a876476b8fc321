"""seqclf: sequence classification in JAX/Flax, from readable pure functions.

The pure functions live in ``seqclf.ops`` (recurrent cells and drivers, Conv1D, max pooling);
``seqclf.interop`` converts PyTorch recurrent weights; ``seqclf.exported`` runs an exported
model with jax and numpy alone; ``seqclf.serve`` (the ``serve`` extra: FastAPI, uvicorn) serves a
predictor over HTTP (``create_app``, ``ServeSettings``, ``serve``), left out of the names below so
that ``from seqclf import *`` never needs the extra; the rest is listed below.

Every public name is imported on first use (PEP 562 module ``__getattr__``), so that
``import seqclf.exported`` or ``import seqclf.data`` does not pull in Flax and the model code;
``from seqclf import X`` and ``seqclf.X`` work as if everything were imported here.
"""

from __future__ import annotations

import importlib
import importlib.util
from typing import TYPE_CHECKING, Any

# public name -> the module that defines it
_EXPORTS = {
    "CheckpointError": "seqclf.checkpoint",
    "CheckpointSuperseded": "seqclf.checkpoint",
    "DiskFullError": "seqclf.checkpoint",
    "RunInUseError": "seqclf.run_lock",
    "run_lock": "seqclf.run_lock",
    "LossWatch": "seqclf.training",
    "CheckpointStore": "seqclf.checkpoint",
    "MicroBatcher": "seqclf.batcher",
    "keep_freed_memory": "seqclf.cpu_allocator",
    "LabelWarning": "seqclf.data",
    "TextDataset": "seqclf.data",
    "Vocabulary": "seqclf.data",
    "batches": "seqclf.data",
    "load_any": "seqclf.data",
    "load_folder": "seqclf.data",
    "load_table": "seqclf.data",
    "load_tfds": "seqclf.data",
    "read_texts": "seqclf.data",
    "train_validation_split": "seqclf.data",
    "TrainingRun": "seqclf.experiment",
    "train_text_classifier": "seqclf.experiment",
    "Conv1D": "seqclf.layers",
    "MaxPooling1D": "seqclf.layers",
    "Recurrent": "seqclf.layers",
    "ClassifierConfig": "seqclf.model",
    "SequenceClassifier": "seqclf.model",
    "build_classifier": "seqclf.model",
    "EmptyTextWarning": "seqclf.predict",
    "Predictor": "seqclf.predict",
    "load": "seqclf.predict",
    "SettingWarning": "seqclf.recipe",
    "EvaluationReport": "seqclf.report",
    "Explanation": "seqclf.explain",
    "explanation_html": "seqclf.explain",
    "evaluation_report": "seqclf.report",
    "FitResult": "seqclf.training",
    "TrainConfig": "seqclf.training",
    "TrainingDiverged": "seqclf.training",
    "TrainState": "seqclf.training",
    "create_train_state": "seqclf.training",
    "eval_step": "seqclf.training",
    "evaluate": "seqclf.training",
    "fit": "seqclf.training",
    "train_step": "seqclf.training",
}
_SUBMODULES = ("exported", "ops", "presets", "recipe")

if TYPE_CHECKING:  # the same names, imported eagerly, for type checkers and the API docs
    from seqclf import exported, ops, presets, recipe
    from seqclf.batcher import (
        MicroBatcher,
    )
    from seqclf.checkpoint import (
        CheckpointError,
        CheckpointStore,
        CheckpointSuperseded,
        DiskFullError,
    )
    from seqclf.cpu_allocator import (
        keep_freed_memory,
    )
    from seqclf.data import (
        LabelWarning,
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
    from seqclf.experiment import (
        TrainingRun,
        train_text_classifier,
    )
    from seqclf.explain import (
        Explanation,
        explanation_html,
    )
    from seqclf.layers import (
        Conv1D,
        MaxPooling1D,
        Recurrent,
    )
    from seqclf.model import (
        ClassifierConfig,
        SequenceClassifier,
        build_classifier,
    )
    from seqclf.predict import (
        EmptyTextWarning,
        Predictor,
        load,
    )
    from seqclf.recipe import (
        SettingWarning,
    )
    from seqclf.report import (
        EvaluationReport,
        evaluation_report,
    )
    from seqclf.run_lock import (
        RunInUseError,
        run_lock,
    )
    from seqclf.training import (
        FitResult,
        LossWatch,
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
    "CheckpointSuperseded",
    "ClassifierConfig",
    "Conv1D",
    "DiskFullError",
    "EmptyTextWarning",
    "EvaluationReport",
    "Explanation",
    "FitResult",
    "LabelWarning",
    "LossWatch",
    "MaxPooling1D",
    "MicroBatcher",
    "Predictor",
    "Recurrent",
    "RunInUseError",
    "SequenceClassifier",
    "SettingWarning",
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
    "explanation_html",
    "exported",
    "fit",
    "keep_freed_memory",
    "load",
    "load_any",
    "load_folder",
    "load_table",
    "load_tfds",
    "ops",
    "presets",
    "read_texts",
    "recipe",
    "run_lock",
    "train_step",
    "train_text_classifier",
    "train_validation_split",
]
assert set(__all__) == {*_EXPORTS, *_SUBMODULES}  # one list for both
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        # ``seqclf.model`` etc. after a bare ``import seqclf``, as when everything was imported
        if not name.startswith("_") and importlib.util.find_spec(f"seqclf.{name}") is not None:
            return importlib.import_module(f"seqclf.{name}")
        raise AttributeError(f"module 'seqclf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
