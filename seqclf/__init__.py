"""seqclf: sequence classification in JAX/Flax, from readable pure functions.

The names below are what a user needs: read data (``read_table``, ``read_folder``, ``read_tfds``,
``read_dataset``), build a model (``build_classifier``, the layers), train it (``fit`` for a
model you built, ``train_text_classifier`` for a run directory like ``seqclf train``'s), load and
use it (``load`` → ``Predictor``). The pure functions live in ``seqclf.ops``; named models in
``seqclf.presets``; the settings resolved from the data in ``seqclf.recipe``; ``seqclf.exported``
runs an exported model with jax and numpy alone; ``seqclf.serve`` (the ``serve`` extra: FastAPI,
uvicorn) serves a predictor over HTTP, left out of the names below so that
``from seqclf import *`` never needs the extra. The training loop's pieces
(``create_train_state``, ``train_step``, the callbacks, ...) are in ``seqclf.training``, platform
tricks (``keep_freed_memory``) in ``seqclf.cpu_allocator``.

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
    # data
    "LabelWarning": "seqclf.data",
    "TextConfig": "seqclf.data",
    "TextDataset": "seqclf.data",
    "Vocabulary": "seqclf.data",
    "read_dataset": "seqclf.data",
    "read_folder": "seqclf.data",
    "read_table": "seqclf.data",
    "read_tfds": "seqclf.data",
    "read_texts": "seqclf.data",
    "train_validation_split": "seqclf.data",
    # the model
    "ClassifierConfig": "seqclf.model",
    "SequenceClassifier": "seqclf.model",
    "build_classifier": "seqclf.model",
    "Conv1D": "seqclf.layers",
    "MaxPooling1D": "seqclf.layers",
    "Recurrent": "seqclf.layers",
    # training
    "Classifier": "seqclf.fitting",
    "fit": "seqclf.fitting",
    "TrainingRun": "seqclf.experiment",
    "train_text_classifier": "seqclf.experiment",
    "Callback": "seqclf.training",
    "FitResult": "seqclf.training",
    "TrainConfig": "seqclf.training",
    "TrainingDiverged": "seqclf.training",
    "SettingWarning": "seqclf.recipe",
    # prediction
    "EmptyTextWarning": "seqclf.predict",
    "Predictor": "seqclf.predict",
    "load": "seqclf.loading",
    "Explanation": "seqclf.explain",
    "explanation_html": "seqclf.explain",
    "EvaluationReport": "seqclf.report",
    "evaluation_report": "seqclf.report",
    # errors
    "CheckpointError": "seqclf.checkpoint",
    "CheckpointSuperseded": "seqclf.checkpoint",
    "DiskFullError": "seqclf.checkpoint",
    "RunInUseError": "seqclf.run_lock",
}
_SUBMODULES = ("exported", "ops", "presets", "recipe")

if TYPE_CHECKING:  # the same names, imported eagerly, for type checkers and the API docs
    from seqclf import exported, ops, presets, recipe
    from seqclf.checkpoint import (
        CheckpointError,
        CheckpointSuperseded,
        DiskFullError,
    )
    from seqclf.data import (
        LabelWarning,
        TextConfig,
        TextDataset,
        Vocabulary,
        read_dataset,
        read_folder,
        read_table,
        read_texts,
        read_tfds,
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
    from seqclf.fitting import (
        Classifier,
        fit,
    )
    from seqclf.layers import (
        Conv1D,
        MaxPooling1D,
        Recurrent,
    )
    from seqclf.loading import (
        load,
    )
    from seqclf.model import (
        ClassifierConfig,
        SequenceClassifier,
        build_classifier,
    )
    from seqclf.predict import (
        EmptyTextWarning,
        Predictor,
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
    )
    from seqclf.training import (
        Callback,
        FitResult,
        TrainConfig,
        TrainingDiverged,
    )

__all__ = [
    "Callback",
    "CheckpointError",
    "CheckpointSuperseded",
    "Classifier",
    "ClassifierConfig",
    "Conv1D",
    "DiskFullError",
    "EmptyTextWarning",
    "EvaluationReport",
    "Explanation",
    "FitResult",
    "LabelWarning",
    "MaxPooling1D",
    "Predictor",
    "Recurrent",
    "RunInUseError",
    "SequenceClassifier",
    "SettingWarning",
    "TextConfig",
    "TextDataset",
    "TrainConfig",
    "TrainingDiverged",
    "TrainingRun",
    "Vocabulary",
    "build_classifier",
    "evaluation_report",
    "explanation_html",
    "exported",
    "fit",
    "load",
    "ops",
    "presets",
    "read_dataset",
    "read_folder",
    "read_table",
    "read_texts",
    "read_tfds",
    "recipe",
    "train_text_classifier",
    "train_validation_split",
]
assert set(__all__) == {*_EXPORTS, *_SUBMODULES}  # one list for both
__version__ = "0.1.0"


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        from seqclf.data.aliases import OLD_NAMES, old_name

        if name in OLD_NAMES:  # load_table & co., the data readers' older names
            return old_name(name)
        # ``seqclf.model`` etc. after a bare ``import seqclf``, as when everything was imported
        if not name.startswith("_") and importlib.util.find_spec(f"seqclf.{name}") is not None:
            return importlib.import_module(f"seqclf.{name}")
        raise AttributeError(f"module 'seqclf' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value  # later look-ups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
