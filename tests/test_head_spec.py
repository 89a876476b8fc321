"""The model declares its heads and parameters once (``HeadSpec``); training asks it."""

from __future__ import annotations

import flax.linen as nn
import jax
import numpy as np

import seqclf
from seqclf.heads import HeadSpec


def _params(model):
    tokens, lengths = np.full((2, 6), 3, np.int32), np.full(2, 6, np.int32)
    return model.init(jax.random.PRNGKey(0), tokens, lengths)["params"]


def test_the_classifier_labels_each_parameter_for_the_optimizer():
    model = seqclf.build_classifier(
        vocab_size=30, embed_dim=4, hidden_size=4, conv_filters=(), nb_buckets=61,
        ngram_buckets=17, ngram_dim=4,
    )  # fmt: skip
    spec = model.head_spec
    assert spec.heads == ("recurrent_head", "nbsvm_head", "ngram_head")
    assert spec.trained_heads == 2  # the NBSVM head is fitted, not trained
    params = _params(model)
    top = {name: set(jax.tree_util.tree_leaves(labels)) for name, labels in
           spec.param_labels(params).items()}  # fmt: skip
    assert top[spec.head_weights] == {"fitted"} and top[spec.fitted_head] == {"fitted"}
    assert top["ngram_bag"] == top["ngram_output"] == {"ngram"}
    assert top["embedding"] == top["output"] == {"rest"}
    lazy = spec.param_labels(params, lazy=True)
    assert set(jax.tree_util.tree_leaves(lazy[spec.embedding])) == {"lazy"}


def test_a_one_head_classifier_has_nothing_fitted():
    spec = seqclf.build_classifier(vocab_size=30, nb_buckets=0).head_spec
    assert spec.heads == ("recurrent_head",)
    assert spec.head_weights is None and spec.fitted_head is None and spec.trained_heads == 1


def test_any_flax_module_gets_the_plain_spec():
    class Plain(nn.Module):
        @nn.compact
        def __call__(self, tokens, lengths, train=False):
            return nn.Dense(2)(nn.Embed(30, 4)(tokens).mean(1))

    spec = HeadSpec.of(Plain())
    assert spec == HeadSpec() and spec.embedding is None and spec.trained_heads == 1
    params = _params(Plain())
    assert set(jax.tree_util.tree_leaves(spec.param_labels(params))) == {"rest"}
    logits = np.zeros((2, 2), np.float32)
    assert spec.trained_logits(logits, {}) == [logits]
