"""Training, top-down, one concern per module:

``config``       ``TrainConfig``: how to train (saved with every checkpoint)
``state``        ``TrainState``, ``make_optimizer`` (one optax pipeline), ``create_train_state``
``step``         ``train_step`` (the one jitted optimizer step), ``eval_step``
``evaluation``   ``evaluate``, ``predict_probabilities``, ``fit_head_weights_and_evaluate``
``run``          ``Run``, ``Progress``, ``RunningMetrics``: what the loop shares with callbacks
``loop``         ``train_epoch`` and ``fit``: the loop
``callbacks``    ``Callback`` and every behaviour plugged into the loop, one file each
"""

from seqclf.training.callbacks import Callback, LossWatch, TrainingDiverged
from seqclf.training.config import TrainConfig
from seqclf.training.evaluation import evaluate, predict_probabilities
from seqclf.training.loop import FitResult, fit, train_epoch
from seqclf.training.run import FINISHED, Progress, Run, RunningMetrics, StepMetrics
from seqclf.training.state import TrainState, create_train_state, make_optimizer
from seqclf.training.step import eval_step, train_step

__all__ = [
    "FINISHED",
    "Callback",
    "FitResult",
    "LossWatch",
    "Progress",
    "Run",
    "RunningMetrics",
    "StepMetrics",
    "TrainConfig",
    "TrainState",
    "TrainingDiverged",
    "create_train_state",
    "eval_step",
    "evaluate",
    "fit",
    "make_optimizer",
    "predict_probabilities",
    "train_epoch",
    "train_step",
]
