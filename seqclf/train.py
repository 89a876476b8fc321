"""Compatibility: the names ``seqclf.train`` had before training became ``seqclf.training``.

New code imports from ``seqclf.training`` (``fit``, ``TrainConfig``, ...) and its modules
(``seqclf.training.step``, ``seqclf.training.callbacks``, ...); patch a function where it is
defined (e.g. ``seqclf.training.step.train_step``), not here.
"""

from __future__ import annotations

from seqclf.training.callbacks import (
    EXPLODED_FACTOR,
    EXPLODED_STEPS,
    Callback,
    LossWatch,
    TrainingDiverged,
    exit_at_once,
    watch_signals,
)
from seqclf.training.callbacks.progress import warn_unpredicted_classes
from seqclf.training.callbacks.signals import STOP_SIGNALS
from seqclf.training.config import CLASS_WEIGHTINGS, TrainConfig
from seqclf.training.evaluation import (
    evaluate,
    fit_head_weights_and_evaluate,
    predict_probabilities,
)
from seqclf.training.loop import FitResult, fit, train_epoch
from seqclf.training.run import FINISHED
from seqclf.training.state import (
    TrainState,
    create_train_state,
    learning_rate_schedule,
    make_optimizer,
)
from seqclf.training.step import (
    TRAIN_KEYS,
    eval_step,
    head_log_probs_step,
    train_step,
    train_step_in_place,
)

__all__ = [
    "CLASS_WEIGHTINGS",
    "EXPLODED_FACTOR",
    "EXPLODED_STEPS",
    "FINISHED",
    "STOP_SIGNALS",
    "TRAIN_KEYS",
    "Callback",
    "FitResult",
    "LossWatch",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "create_train_state",
    "eval_step",
    "evaluate",
    "exit_at_once",
    "fit",
    "fit_head_weights_and_evaluate",
    "head_log_probs_step",
    "learning_rate_schedule",
    "make_optimizer",
    "predict_probabilities",
    "train_epoch",
    "train_step",
    "train_step_in_place",
    "warn_unpredicted_classes",
    "watch_signals",
]
