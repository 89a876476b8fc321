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
from typing import Any

# public name -> the module that defines it
_EXPORTS = {
    "CheckpointError": "seqclf.checkpoint",
    "CheckpointSuperseded": "seqclf.checkpoint",
    "DiskFullError": "seqclf.checkpoint",
    "RunInUseError": "seqclf.run_lock",
    "run_lock": "seqclf.run_lock",
    "LossWatch": "seqclf.train",
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
    "FitResult": "seqclf.train",
    "TrainConfig": "seqclf.train",
    "TrainingDiverged": "seqclf.train",
    "TrainState": "seqclf.train",
    "create_train_state": "seqclf.train",
    "eval_step": "seqclf.train",
    "evaluate": "seqclf.train",
    "fit": "seqclf.train",
    "train_step": "seqclf.train",
}
_SUBMODULES = ("exported", "ops", "presets", "recipe")

__all__ = sorted([*_EXPORTS, *_SUBMODULES])
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
