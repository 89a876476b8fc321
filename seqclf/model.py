"""The classifier: Embedding → Dropout → [Conv1D → MaxPooling1D]* → RNN/LSTM/GRU → Dense.

``build_classifier()`` with no arguments is the classic Keras IMDB CNN-LSTM (Embedding 128,
Dropout 0.25, Conv1D 64×5 relu, MaxPooling1D 4, LSTM 70, Dense); every part is a field of
``ClassifierConfig``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqclf import ops
from seqclf.layers import (
    Conv1D,
    Dropout,
    MaxPooling1D,
    NGramBag,
    Recurrent,
    activation_fn,
    keras_embedding_init,
)
from seqclf.lazy_embedding import EMBEDDED, EMBEDDING

# Top-level parameter names of the fastText head: its bag and its output layer
# (TrainConfig.ngram_learning_rate applies to them).
NGRAM_BAG, NGRAM_OUTPUT = NGRAM_PARAMS = ("ngram_bag", "ngram_output")
# Parameter (K,) of a several-head model: each head's weight in the prediction. Not trained by
# gradient (the optimizer leaves it as it is); fitted on the validation split after every epoch
# (seqclf.head_weights), and saved with the other parameters.
HEAD_WEIGHTS = "head_weights"
REDUCTIONS = ("last", "max", "mean")
# Collection where a model with several output heads sows each head's logits (B, C), under the
# names HEADS, in the order of the HEAD_WEIGHTS parameter.
HEAD_LOGITS = "head_logits"
HEADS = ("recurrent_head", "ngram_head")
# embed_dropout_mode -> axes of (B, T, E) that share one dropout decision.
DROPOUT_MODES = {"element": (), "word": (2,), "channel": (1,)}
DTYPES = {"float32": jnp.float32, "bfloat16": jnp.bfloat16, "float16": jnp.float16}


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
      conv_padding: "valid" or "same".
      conv_activation: Keras activation name.
      pool_size: MaxPooling1D size after each conv block (1 for none).
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
      unroll: ``lax.scan`` unroll of the recurrent layers.
      fused: train the recurrent layers with the hand-written cuDNN-style backward pass of
        ``seqclf.ops.fused`` (float32; same results within rounding, faster). False uses plain
        autodiff of ``seqclf.ops.recurrent``.
      dtype: compute dtype ("float32" or "bfloat16"). Parameters (and so gradients and the
        optimizer state) stay float32 and are cast at use; under bfloat16 the embedding output,
        convolutions and the recurrent input projections run in bfloat16, while the recurrent
        state (h, c) and its gate arithmetic, the output layer, the loss and the softmax stay
        float32.
    """

    vocab_size: int = 20000
    num_classes: int = 2
    embed_dim: int = 128
    embed_dropout: float = 0.25
    embed_dropout_mode: str = "element"
    conv_filters: tuple[int, ...] = (64,)
    conv_kernel_size: int = 5
    conv_padding: str = "valid"
    conv_activation: str = "relu"
    pool_size: int = 4
    rnn: str = "lstm"
    hidden_size: int = 70
    num_layers: int = 1
    bidirectional: bool = False
    reduce: str = "last"
    dropout: float = 0.0
    ngram_buckets: int = 0
    ngram_dim: int = 32
    unroll: int = 1
    fused: bool = True
    dtype: str = "float32"

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
        ):
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.ngram_buckets < 0:
            problems.append(f"ngram_buckets must be >= 0 (0 for none), got {self.ngram_buckets}")
        if any(f < 1 for f in self.conv_filters):
            problems.append(f"conv_filters must be positive, got {self.conv_filters}")
        if self.rnn not in ops.RECURRENCES:
            problems.append(f"rnn must be one of {sorted(ops.RECURRENCES)}, got {self.rnn!r}")
        if self.reduce not in REDUCTIONS:
            problems.append(f"reduce must be one of {REDUCTIONS}, got {self.reduce!r}")
        if self.conv_padding.lower() not in ("valid", "same"):
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
        """Inverse of ``to_dict``; unknown keys are an error (a config from elsewhere)."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - known)
        if unknown:
            raise ValueError(f"unknown classifier config keys: {unknown}")
        return cls(**d)


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

    ``__call__(tokens, lengths, train=False)``: tokens (B, T) int ids padded at the end,
    lengths (B,) valid lengths; returns logits (B, num_classes) in float32. With ``train=True``
    dropout is active and needs ``rngs={"dropout": key}``.
    """

    config: ClassifierConfig

    @nn.compact
    def __call__(self, tokens: jax.Array, lengths: jax.Array, train: bool = False) -> jax.Array:
        cfg = self.config
        if tokens.ndim != 2:
            raise ValueError(f"tokens must be (batch, time) ids, got shape {tokens.shape}")
        if lengths.shape != tokens.shape[:1]:
            raise ValueError(
                f"lengths must have shape (batch,) = ({tokens.shape[0]},), got {lengths.shape}"
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
        x = x.astype(dtype)
        x = Dropout(
            cfg.embed_dropout,
            broadcast_dims=DROPOUT_MODES[cfg.embed_dropout_mode],
            name="embed_dropout",
        )(x, train)
        for k, filters in enumerate(cfg.conv_filters):
            x, lengths = Conv1D(
                filters,
                cfg.conv_kernel_size,
                padding=cfg.conv_padding,
                activation=cfg.conv_activation,
                dtype=dtype,
                name=f"conv{k}",
            )(x, lengths)
            if cfg.pool_size > 1:
                x, lengths = MaxPooling1D(cfg.pool_size, name=f"pool{k}")(x, lengths)
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
        if not cfg.ngram_buckets:
            return logits
        # The bag is a second classifier with its own output layer. Each head is trained by its
        # own loss (train_step reads the sown HEAD_LOGITS), so neither leans on the other: the
        # recurrent head fits the training set within an epoch or two, and a shared output layer
        # would then leave the bag nothing to learn. Prediction sums the two heads'
        # log-probabilities, each times a weight fitted on validation: an ensemble of two
        # different models, calibrated.
        bag = NGramBag(cfg.vocab_size, cfg.ngram_buckets, cfg.ngram_dim, name=NGRAM_BAG)
        bag_logits = nn.Dense(cfg.num_classes, name=NGRAM_OUTPUT)(bag(tokens, token_lengths))
        for name, head_logits in zip(HEADS, (logits, bag_logits), strict=True):
            self.sow(HEAD_LOGITS, name, head_logits)
        weights = self.param(HEAD_WEIGHTS, nn.initializers.ones, (len(HEADS),), jnp.float32)
        return weights[0] * jax.nn.log_softmax(logits) + weights[1] * jax.nn.log_softmax(bag_logits)


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
