"""The classifier's heads and parameter roles, declared once: ``HeadSpec`` and ``combine_heads``.

``seqclf.model`` builds the heads; training (the loss, the optimizer's labels, the head-weight and
NBSVM fits, lazy Adam) asks ``HeadSpec.of(model)`` what they are instead of importing names.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp

# Top-level parameter names of the fastText head (its bag and its output layer) and of the NBSVM
# head (TrainConfig.ngram_learning_rate applies to them all).
NGRAM_BAG, NGRAM_OUTPUT = ("ngram_bag", "ngram_output")
NB_HEAD = "nb_head"
NGRAM_PARAMS = (NGRAM_BAG, NGRAM_OUTPUT, NB_HEAD)
# Parameter (K,) of a several-head model: each head's weight in the prediction. Not trained by
# gradient (the optimizer leaves it as it is); fitted on the validation split after every epoch
# (seqclf.head_weights), and saved with the other parameters.
HEAD_WEIGHTS = "head_weights"
# Collection where a model with several output heads sows each head's logits (B, C), under the
# names of ``head_names(config)``, in the order of the HEAD_WEIGHTS parameter.
HEAD_LOGITS = "head_logits"
HEADS = ("recurrent_head", "nbsvm_head", "ngram_head")  # every head, in that order
# The embedding module's (and parameter's) name, and the name of the perturbation that marks its
# looked-up vectors (lazy Adam reads their gradient through it: seqclf.lazy_embedding).
EMBEDDING = "embedding"
EMBEDDED = "embedded"


@dataclasses.dataclass(frozen=True)
class HeadSpec:
    """What training asks of a model about its heads and parameters, declared in one place.

    The loss, the optimizer's labels, the head-weight fit and lazy Adam read this (from
    ``HeadSpec.of(model)``) instead of the model's parameter names. Any Flax module trains with
    the default (one head, every parameter trained alike, no lazy embedding); seqclf's classifier
    gives its own (``SequenceClassifier.head_spec``).

    Attributes:
      heads: the output heads, in the order of the head weights (``ClassifierConfig.heads``).
      fitted_head: the top-level parameter of a head fitted to the training split before any
        gradient step (the NBSVM head, ``seqclf.naive_bayes``); None: none. A training step
        leaves it out of the loss and the optimizer leaves it as it is.
      head_weights: the (K,) parameter of each head's weight in the prediction
        (``combine_heads``), fitted on the validation split after every epoch
        (``seqclf.head_weights``), never by gradient; None: one head.
      ngram_params: top-level parameters trained at ``TrainConfig.ngram_learning_rate``.
      logits_collection: the collection the model sows each head's logits (B, C) into.
      embedding: the embedding module whose ``embedding`` parameter is the (V, E) table; None:
        no table lazy Adam can update (``TrainConfig.lazy_embedding=True`` is refused, its
        default None then means dense Adam).
      embedded: the name the model perturbs its looked-up vectors (B, T, E) with.
    """

    heads: tuple[str, ...] = ()
    fitted_head: str | None = None
    head_weights: str | None = None
    ngram_params: tuple[str, ...] = ()
    logits_collection: str = HEAD_LOGITS
    embedding: str | None = None
    embedded: str | None = None

    @classmethod
    def of(cls, model: Any) -> HeadSpec:
        """``model.head_spec`` where the model declares one, else the default."""
        spec = getattr(model, "head_spec", None)
        return spec if isinstance(spec, HeadSpec) else cls()

    @property
    def trained_heads(self) -> int:
        """How many heads' losses a training step sums: all but the fitted one (at least 1)."""
        return max(len(self.heads) - (self.fitted_head is not None), 1)

    def label(self, name: str, lazy: bool = False) -> str:
        """The optimizer of top-level parameter ``name``: "fitted" (no gradient step changes
        it), "ngram", "lazy" (the embedding table under lazy Adam) or "rest"."""
        if name in (self.head_weights, self.fitted_head):
            return "fitted"
        if name in self.ngram_params:
            return "ngram"
        return "lazy" if lazy and name == self.embedding else "rest"

    def param_labels(self, params: Any, lazy: bool = False) -> Any:
        """``label`` of each leaf of ``params`` (by its top-level name), for ``optax.partition``."""
        return jax.tree_util.tree_map_with_path(
            lambda path, _: self.label(path[0].key, lazy), params
        )

    def trained_logits(self, logits: jax.Array, sown: Any) -> list[jax.Array]:
        """The logits (B, C) each trained on its own loss: each sown head's (a training pass
        sows all but the fitted head), or the output's for a one-head model."""
        return jax.tree_util.tree_leaves(sown.get(self.logits_collection, {})) or [logits]

    def head_log_probs(self, sown: Any) -> jax.Array:
        """(B, K, C) each head's log-probabilities, in ``heads`` order, from an evaluation pass."""
        heads = sown[self.logits_collection]
        stacked = jnp.stack([heads[name][0] for name in self.heads if name in heads], axis=1)
        return jax.nn.log_softmax(stacked, axis=-1)


def combine_heads(
    weights: jax.Array, head_logits: dict[str, jax.Array], heads: tuple[str, ...]
) -> jax.Array:
    """The several-head prediction: ``sum_k w_k · log_softmax(z_k)`` over the heads present.

    Args:
      weights: (K,) each head's weight (``HeadSpec.head_weights``).
      head_logits: head name → logits (B, C).
      heads: the K head names, in the weights' order.

    Returns:
      (B, C) logits (unnormalised log-probabilities; ``seqclf.head_weights.weighted_log_probs``
      is their NumPy, normalised twin).
    """
    return sum(
        w * jax.nn.log_softmax(head_logits[name])
        for w, name in zip(weights, heads, strict=True)
        if name in head_logits
    )
