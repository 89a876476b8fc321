"""Training callbacks: each extra behaviour of ``fit`` in a file of its own.

``base``           ``Callback`` (the hooks, in the loop's order) and ``CallbackList``
``checkpoint``     ``Checkpoint``: resume, save per epoch and every ``save_every`` steps
``early_stopping`` ``EarlyStopping``: ``patience`` epochs without a better validation accuracy
``loss_watch``     ``LossGuard`` + ``LossWatch``: NaN, infinite and exploding losses
``metrics_log``    ``MetricsLog``: ``metrics.jsonl``, the curves, the epoch's console line
``progress``       ``ProgressBar``: tqdm bars, the devices, unpredicted classes
``head_weights``   ``FitNbsvmHead`` and ``FitHeadWeights``: the heads fitted, not trained
``time_budget``    ``TimeBudget``: ``TrainConfig.time_budget``
``signals``        ``StopOnSignal``: SIGINT/SIGTERM stop after the current step
"""

from seqclf.training.callbacks.base import Callback, CallbackList
from seqclf.training.callbacks.checkpoint import Checkpoint, explain_divergence
from seqclf.training.callbacks.early_stopping import EarlyStopping
from seqclf.training.callbacks.head_weights import FitHeadWeights, FitNbsvmHead
from seqclf.training.callbacks.loss_watch import (
    EXPLODED_FACTOR,
    EXPLODED_STEPS,
    LossGuard,
    LossWatch,
    TrainingDiverged,
)
from seqclf.training.callbacks.metrics_log import MetricsLog, write_logs
from seqclf.training.callbacks.progress import ProgressBar, warn_unpredicted_classes
from seqclf.training.callbacks.signals import StopOnSignal, exit_at_once, watch_signals
from seqclf.training.callbacks.time_budget import TimeBudget

__all__ = [
    "EXPLODED_FACTOR",
    "EXPLODED_STEPS",
    "Callback",
    "CallbackList",
    "Checkpoint",
    "EarlyStopping",
    "FitHeadWeights",
    "FitNbsvmHead",
    "LossGuard",
    "LossWatch",
    "MetricsLog",
    "ProgressBar",
    "StopOnSignal",
    "TimeBudget",
    "TrainingDiverged",
    "exit_at_once",
    "explain_divergence",
    "warn_unpredicted_classes",
    "watch_signals",
    "write_logs",
]
