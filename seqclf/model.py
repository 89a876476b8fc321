"""The classifier: Embedding → Dropout → [Conv1D → MaxPooling1D]* → RNN/LSTM/GRU → Dense,
with an NBSVM head (and optionally a fastText head) beside it.

``build_classifier()`` with no arguments is seqclf's default: the course's CNN-LSTM (Embedding
128, Conv1D 64×5 relu, MaxPooling1D 4, a bidirectional LSTM 64 max-pooled over time) plus an
NBSVM head over hashed 1–3-grams, the two stacked on validation (``seqclf.head_weights``). The
classic Keras model from the course is ``build_classifier(seqclf.presets.CLASSIC)``. Every part
is a field of ``ClassifierConfig``; ``seqclf.recipe`` fits the data-dependent ones (pool size,
n-gram buckets) to a training set.

No input vanishes: with the default 'same' convolution and ceil-mode pooling every text of at
least one token reaches the recurrent layer with at least one step, and with 'valid' layers the
model pads a text shorter than a window up to it (``SequenceClassifier``).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqclf import ops
from seqclf.config_dict import config_from_dict
from seqclf.heads import (  # the names are also the model's: seqclf.model.HEAD_LOGITS, ...
    EMBEDDED,
    EMBEDDING,
    HEAD_LOGITS,
    HEAD_WEIGHTS,
    HEADS,
    NB_HEAD,
    NGRAM_BAG,
    NGRAM_OUTPUT,
    NGRAM_PARAMS,
    HeadSpec,
    combine_heads,
)
from seqclf.layers import (
    Conv1D,
    Dropout,
    MaxPooling1D,
    NaiveBayesBag,
    NGramBag,
    Recurrent,
    activation_fn,
    keras_embedding_init,
)

REDUCTIONS = ("last", "max", "mean")
# embed_dropout_mode -> axes of (B, T, E) that share one dropout decision.
DROPOUT_MODES = {"element": (), "word": (2,), "channel": (1,)}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}
CONV_PADDINGS = ("same", "valid")


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
    """Everything that defines the model's architecture (saved with every checkpoint).

    Attributes:
      vocab_size: number of token ids (0 is padding, 1 out-of-vocabulary).
      num_classes: output classes (2 for binary; logits are always (B, num_classes)).
      embed_dim: embedding size.
      embed_dropout: dropout after the embedding (Keras' ``Dropout(0.25)``).
      embed_dropout_mode: what that dropout drops: "element" (single numbers, Keras' Dropout),
        "word" (whole token vectors, as if the word were missing) or "channel" (a feature across
        the whole text, Keras' SpatialDropout1D).
      conv_filters: filters of each Conv1D block; empty for no convolution.
      conv_kernel_size: kernel size of every conv block.
      conv_padding: "same" (every step gives an output) or "valid" (Keras' default).
      conv_activation: Keras activation name.
      pool_size: MaxPooling1D size after each conv block (1 for none).
      pool_ceil: keep the last, partial pooling window of each text (PyTorch's ``ceil_mode``),
        so that no step is dropped and a text shorter than the pool still gives one step.
      rnn: "rnn", "lstm" or "gru".
      hidden_size: recurrent hidden size H.
      num_layers: stacked recurrent layers.
      bidirectional: run the recurrent layers both ways.
      reduce: how the recurrent outputs become one vector: "last" (final state), "max" or "mean"
        over the valid steps.
      dropout: dropout before the output layer.
      ngram_buckets: 0 for none; else a fastText classifier is trained beside the recurrent one
        and the prediction is ``softmax(w_1 · log p_recurrent + w_2 · log p_ngram)``, with the
        weights fitted on the validation split (``seqclf.head_weights``). The fastText head is
        a linear layer over the mean of the word and hashed-bigram embeddings of the whole text
        (``seqclf.ops.ngrams``), with this many bigram hash buckets.
      ngram_dim: embedding size of that bag.
      nb_buckets: 0 for none; else an NBSVM head (``seqclf.layers.NaiveBayesBag``: logistic
        regression over the distinct hashed 1..nb_ngrams-grams of each text, scaled by their
        naive-Bayes log-count ratios, fitted by ``seqclf.training.fit`` on the training split as
        NBSVM is, before the other heads train) is stacked with the others, with this many
        hash buckets.
      nb_ngrams: longest n-gram of the NBSVM head.
      unroll: ``lax.scan`` unroll of the recurrent layers.
      fused: run the recurrent layers on the fast path, ``seqclf.ops.lstm`` / ``gru`` /
        ``simple_rnn`` (a hand-written cuDNN-style backward pass, in float32 and bfloat16).
        False uses the plain autodiff scans ``seqclf.ops.*_reference`` (same results within
        rounding, slower to train).
      dtype: compute dtype ("float32", "bfloat16" or "float16"). Parameters (and so gradients
        and the optimizer state) stay float32 and are cast at use; under bfloat16 the embedding
        output, convolutions and every recurrent matmul run in bfloat16 (accumulating in
        float32), while the recurrent state (h, c) and its gate arithmetic, the output layer,
        the loss and the softmax stay float32.
    """

    vocab_size: int = 20000
    num_classes: int = 2
    embed_dim: int = 128
    embed_dropout: float = 0.4
    embed_dropout_mode: str = dataclasses.field(
        default="element", metadata={"choices": tuple(DROPOUT_MODES)}
    )
    conv_filters: tuple[int, ...] = (64,)
    conv_kernel_size: int = 5
    conv_padding: str = dataclasses.field(default="same", metadata={"choices": CONV_PADDINGS})
    conv_activation: str = "relu"
    pool_size: int = 4
    pool_ceil: bool = True
    rnn: str = dataclasses.field(default="lstm", metadata={"choices": tuple(ops.GATES)})
    hidden_size: int = 64
    num_layers: int = 1
    bidirectional: bool = True
    reduce: str = dataclasses.field(default="max", metadata={"choices": REDUCTIONS})
    dropout: float = 0.3
    ngram_buckets: int = 0
    ngram_dim: int = 32
    nb_buckets: int = 2**20
    nb_ngrams: int = 3
    unroll: int = 1
    fused: bool = True
    dtype: str = dataclasses.field(default="float32", metadata={"choices": tuple(DTYPES)})

    def __post_init__(self) -> None:
        object.__setattr__(self, "conv_filters", tuple(int(f) for f in self.conv_filters))
        problems = []
        if self.vocab_size < 3:
            problems.append(
                f"vocab_size must be >= 3 (padding, unknown, a word), got {self.vocab_size}"
            )
        if self.num_classes < 2:
            problems.append(f"num_classes must be >= 2, got {self.num_classes}")
        for name in (
            "embed_dim",
            "hidden_size",
            "num_layers",
            "conv_kernel_size",
            "pool_size",
            "unroll",
            "ngram_dim",
            "nb_ngrams",
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("ngram_buckets", "nb_buckets"):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0 (0 for none), got {getattr(self, name)}")
        if any(f < 1 for f in self.conv_filters):
            problems.append(f"conv_filters must be positive, got {self.conv_filters}")
        if self.rnn not in ops.GATES:
            problems.append(f"rnn must be one of {sorted(ops.GATES)}, got {self.rnn!r}")
        if self.reduce not in REDUCTIONS:
            problems.append(f"reduce must be one of {REDUCTIONS}, got {self.reduce!r}")
        if self.conv_padding.lower() not in CONV_PADDINGS:
            problems.append(f"conv_padding must be 'valid' or 'same', got {self.conv_padding!r}")
        if self.embed_dropout_mode not in DROPOUT_MODES:
            problems.append(
                f"embed_dropout_mode must be one of {sorted(DROPOUT_MODES)}, "
                f"got {self.embed_dropout_mode!r}"
            )
        if self.dtype not in DTYPES:
            problems.append(f"dtype must be one of {sorted(DTYPES)}, got {self.dtype!r}")
        for name in ("embed_dropout", "dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                problems.append(f"{name} must be in [0, 1), got {getattr(self, name)}")
        try:
            activation_fn(self.conv_activation)
        except ValueError as err:
            problems.append(str(err))
        if problems:
            raise ValueError("invalid classifier configuration: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (tuples become lists)."""
        d = dataclasses.asdict(self)
        d["conv_filters"] = list(self.conv_filters)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ClassifierConfig:
        """Inverse of ``to_dict``, by ``seqclf.config_dict``'s rule: an unknown key is an error
        naming it; a field that a saved config predates takes the value that reproduces the
        model it was saved from (``_BEFORE_FIELD``), not today's default."""
        return config_from_dict(cls, d, before_field=_BEFORE_FIELD)

    @property
    def heads(self) -> tuple[str, ...]:
        """The names of this model's output heads (``HEADS`` order)."""
        present = {
            "recurrent_head": True,
            "nbsvm_head": self.nb_buckets > 0,
            "ngram_head": self.ngram_buckets > 0,
        }
        return tuple(name for name in HEADS if present[name])


# What a config saved before a field existed meant (see ClassifierConfig.from_dict).
_BEFORE_FIELD = {"pool_ceil": False, "nb_buckets": 0}


def _masked_reduce(ys: jax.Array, lengths: jax.Array, how: str) -> jax.Array:
    """(B, T, D) → (B, D) float32: max or mean over the valid steps (0 for an empty sequence).

    The sum behind the mean runs in float32 even when ``ys`` is bfloat16.
    """
    ys = ys.astype(jnp.promote_types(ys.dtype, jnp.float32))
    mask = ops.sequence_mask(lengths, ys.shape[1])[:, :, None]
    if how == "max":
        peak = jnp.max(jnp.where(mask, ys, -jnp.inf), axis=1, initial=-jnp.inf)
        return jnp.where(lengths[:, None] > 0, peak, 0.0)
    total = jnp.sum(jnp.where(mask, ys, 0.0), axis=1)
    return total / jnp.maximum(lengths, 1)[:, None].astype(ys.dtype)


class SequenceClassifier(nn.Module):
    """Token ids and lengths → class logits. See ``ClassifierConfig`` for every option.

    ``__call__(tokens, lengths, train=False, token_weights=None)``: tokens (B, T) int ids padded
    at the end, lengths (B,) valid lengths; returns logits (B, num_classes) in float32 (with
    several heads: their stacked log-probabilities, see ``ClassifierConfig.nb_buckets``). With
    ``train=True`` dropout is active and needs ``rngs={"dropout": key}``. ``token_weights``
    (B, T) float, optional, multiplies everything the model looks up for each token, in every
    head (1 = as is, 0 = as if the token's vectors were zero): integrated gradients scale it
    from 0 to 1 (``seqclf.explain``).
    """

    config: ClassifierConfig

    @nn.compact
    def __call__(
        self,
        tokens: jax.Array,
        lengths: jax.Array,
        train: bool = False,
        token_weights: jax.Array | None = None,
    ) -> jax.Array:
        cfg = self.config
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (batch, time) ids, got shape {tokens.shape}")
        if lengths.shape != tokens.shape[:1]:
            raise ValueError(
                f"lengths must have shape (batch,) = ({tokens.shape[0]},), got {lengths.shape}"
            )
        if token_weights is not None and token_weights.shape != tokens.shape:
            raise ValueError(
                f"token_weights must have the shape of tokens {tokens.shape}, "
                f"got {token_weights.shape}"
            )
        dtype = DTYPES[cfg.dtype]
        lengths = jnp.minimum(lengths.astype(jnp.int32), tokens.shape[1])
        token_lengths = lengths
        x = nn.Embed(
            cfg.vocab_size,
            cfg.embed_dim,
            embedding_init=keras_embedding_init,
            name=EMBEDDING,
        )(tokens)
        # A no-op unless the train step passes a zero perturbation to read the looked-up
        # vectors' gradient (TrainConfig.lazy_embedding; seqclf.lazy_embedding). Not at init,
        # so that init's variables hold no perturbation of the example batch's shape.
        if not self.is_initializing():
            x = self.perturb(EMBEDDED, x)
        if token_weights is not None:
            x = x * token_weights[..., None].astype(x.dtype)
        x = x.astype(dtype)
        x = Dropout(
            cfg.embed_dropout,
            broadcast_dims=DROPOUT_MODES[cfg.embed_dropout_mode],
            name="embed_dropout",
        )(x, train)
        valid_conv = cfg.conv_padding.lower() == "valid"
        for k, filters in enumerate(cfg.conv_filters):
            if valid_conv:
                # A text shorter than the kernel would have no output step at all: pad it (with
                # the padding id's vectors) up to one window, so it still reaches the classifier.
                lengths = jnp.where(lengths > 0, jnp.maximum(lengths, cfg.conv_kernel_size), 0)
            x, lengths = Conv1D(
                filters,
                cfg.conv_kernel_size,
                padding=cfg.conv_padding,
                activation=cfg.conv_activation,
                dtype=dtype,
                name=f"conv{k}",
            )(x, lengths)
            if cfg.pool_size > 1:
                if not cfg.pool_ceil:  # the same for a text shorter than the pool
                    lengths = jnp.where(lengths > 0, jnp.maximum(lengths, cfg.pool_size), 0)
                x, lengths = MaxPooling1D(cfg.pool_size, ceil_mode=cfg.pool_ceil, name=f"pool{k}")(
                    x, lengths
                )
        ys, h_n = Recurrent(
            cfg.rnn,
            cfg.hidden_size,
            cfg.num_layers,
            cfg.bidirectional,
            cfg.unroll,
            fused=cfg.fused,
            dtype=dtype,
            name="recurrent",
        )(x, lengths)
        features = h_n if cfg.reduce == "last" else _masked_reduce(ys, lengths, cfg.reduce)
        features = Dropout(cfg.dropout, name="dropout")(features, train)
        logits = nn.Dense(cfg.num_classes, name="output")(features.astype(jnp.float32))
        if len(cfg.heads) == 1:
            return logits
        # The n-gram heads are classifiers of their own. Each head is trained by its own loss
        # (train_step reads the sown HEAD_LOGITS), so neither leans on the other: the recurrent
        # head fits the training set within an epoch or two, and a shared output layer would
        # then leave the others nothing to learn. Prediction sums the heads' log-probabilities,
        # each times a weight fitted on validation: an ensemble of different models, calibrated.
        head_logits = {"recurrent_head": logits}
        # The NBSVM head is fitted once, before training (seqclf.naive_bayes), never by gradient
        # steps: a training step leaves it out, so it costs the steps nothing.
        if cfg.nb_buckets and not train:
            head_logits["nbsvm_head"] = NaiveBayesBag(
                cfg.nb_buckets, cfg.num_classes, cfg.nb_ngrams, name=NB_HEAD
            )(tokens, token_lengths, token_weights)
        if cfg.ngram_buckets:
            bag = NGramBag(cfg.vocab_size, cfg.ngram_buckets, cfg.ngram_dim, name=NGRAM_BAG)
            head_logits["ngram_head"] = nn.Dense(cfg.num_classes, name=NGRAM_OUTPUT)(
                bag(tokens, token_lengths, token_weights)
            )
        for name in cfg.heads:
            if name in head_logits:
                self.sow(HEAD_LOGITS, name, head_logits[name])
        weights = self.param(HEAD_WEIGHTS, nn.initializers.ones, (len(cfg.heads),), jnp.float32)
        return combine_heads(weights, head_logits, cfg.heads)

    @property
    def head_spec(self) -> HeadSpec:
        """This model's heads and parameters as training sees them (``HeadSpec``)."""
        heads = self.config.heads
        return HeadSpec(
            heads=heads,
            fitted_head=NB_HEAD if "nbsvm_head" in heads else None,
            head_weights=HEAD_WEIGHTS if len(heads) > 1 else None,
            ngram_params=NGRAM_PARAMS,
            logits_collection=HEAD_LOGITS,
            embedding=EMBEDDING,
            embedded=EMBEDDED,
        )


def build_classifier(config: ClassifierConfig | None = None, **options: Any) -> SequenceClassifier:
    """The classic CNN-LSTM text classifier as a Flax module, every part configurable.

    Args:
      config: a full ``ClassifierConfig``; or leave it out and pass its fields as keywords,
        e.g. ``build_classifier(vocab_size=20000, rnn="gru", bidirectional=True)``.
      **options: ``ClassifierConfig`` fields overriding ``config`` (or the defaults).

    Returns:
      A ``SequenceClassifier``: ``model.init(key, tokens, lengths)`` and
      ``model.apply(variables, tokens, lengths)`` give logits (B, num_classes); pass
      ``train=True, rngs={"dropout": key}`` for training.
    """
    config = config or ClassifierConfig()
    return SequenceClassifier(dataclasses.replace(config, **options))
