"""seqclf: sequence classification in JAX/Flax, from readable pure functions."""

from seqclf import ops
from seqclf.layers import Conv1D, MaxPooling1D, Recurrent
from seqclf.model import ClassifierConfig, SequenceClassifier, build_classifier

__all__ = [
    "ClassifierConfig",
    "Conv1D",
    "MaxPooling1D",
    "Recurrent",
    "SequenceClassifier",
    "build_classifier",
    "ops",
]
__version__ = "0.1.0"
