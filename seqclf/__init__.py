"""seqclf: sequence classification in JAX/Flax, from readable pure functions."""

from seqclf import ops

__all__ = ["ops"]
__version__ = "0.1.0"
