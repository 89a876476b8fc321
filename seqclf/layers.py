"""Flax linen layers: thin wrappers that hold parameters and call the pure functions in seqclf.ops.

Every layer takes and returns ``(x, lengths)`` so that valid lengths travel with the data: a layer
that changes the time axis (convolution, pooling) maps the lengths too, and padded steps are zeroed
on the way out, so padding never changes a valid output. Names and defaults follow Keras.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp

from seqclf import ops

ACTIVATIONS: dict[str, Callable[[jax.Array], jax.Array] | None] = {
    "relu": jax.nn.relu,
    "tanh": jnp.tanh,
    "gelu": jax.nn.gelu,
    "linear": None,
    "none": None,
}


def activation_fn(name: str | None) -> Callable[[jax.Array], jax.Array] | None:
    """Look up an activation by its Keras name (``None``/``"linear"`` is the identity)."""
    key = "none" if name is None else name.lower()
    if key not in ACTIVATIONS:
        raise ValueError(f"unknown activation {name!r}; choose one of {sorted(ACTIVATIONS)}")
    return ACTIVATIONS[key]


def _pad_time_to(x: jax.Array, minimum: int) -> jax.Array:
    """Zero-pad (B, T, C) on the right up to ``minimum`` steps, so a VALID window always fits.

    Without it a batch of very short texts (shorter than a kernel) would have no output steps at
    all; the extra steps are padding, masked by the lengths like any other.
    """
    if x.shape[1] >= minimum:
        return x
    return jnp.pad(x, ((0, 0), (0, minimum - x.shape[1]), (0, 0)))


class Dropout(nn.Module):
    """Inverted dropout with seqclf's cheaper mask (``seqclf.ops.dropout``); ``(x, train) -> x``.

    A drop-in for ``flax.linen.Dropout`` (same ``broadcast_dims``, same ``"dropout"`` rng stream)
    that hashes half as many random words. Active only with ``train=True``.
    """

    rate: float
    broadcast_dims: tuple[int, ...] = ()

    @nn.compact
    def __call__(self, x: jax.Array, train: bool = False) -> jax.Array:
        if not train or self.rate == 0.0:
            return x
        return ops.dropout(x, self.rate, self.make_rng("dropout"), self.broadcast_dims)


class Conv1D(nn.Module):
    """Keras-style ``Conv1D`` over (B, T, C) with lengths: ``(x, lengths) -> (y, out_lengths)``.

    Attributes:
      filters: C_out.
      kernel_size: K.
      strides, padding ("valid"/"same"), dilation_rate: as in Keras (see ``seqclf.ops.conv1d``).
      activation: Keras name or None.
      use_bias: add a (C_out,) bias.
    """

    filters: int
    kernel_size: int
    strides: int = 1
    padding: str = "valid"
    dilation_rate: int = 1
    activation: str | None = "relu"
    use_bias: bool = True
    dtype: Any = jnp.float32

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        kernel = self.param(
            "kernel",
            nn.initializers.glorot_uniform(),  # Keras' default for Conv1D
            (self.kernel_size, x.shape[-1], self.filters),
        )
        bias = self.param("bias", nn.initializers.zeros, (self.filters,)) if self.use_bias else None
        x = ops.mask_padding(x.astype(self.dtype), lengths)  # zeros, as the padding SAME adds
        x = _pad_time_to(x, self.dilation_rate * (self.kernel_size - 1) + 1)
        y = ops.conv1d(
            x,
            kernel.astype(self.dtype),
            None if bias is None else bias.astype(self.dtype),
            stride=self.strides,
            padding=self.padding,
            dilation=self.dilation_rate,
        )
        act = activation_fn(self.activation)
        if act is not None:
            y = act(y)
        out_lengths = ops.output_lengths(
            lengths,
            self.kernel_size,
            stride=self.strides,
            padding=self.padding,
            dilation=self.dilation_rate,
        )
        return ops.mask_padding(y, out_lengths), out_lengths


class MaxPooling1D(nn.Module):
    """Keras-style ``MaxPooling1D``: ``(x, lengths) -> (y, out_lengths)``; strides default to K.

    ``ceil_mode=True`` (PyTorch's name; windows that do not overlap only) keeps the last, partial
    window of each text: a text of L steps gives ``ceil(L / K)`` outputs instead of
    ``floor(L / K)``, so no step is dropped and a text shorter than the pool still gives one.
    """

    pool_size: int = 2
    strides: int | None = None
    padding: str = "valid"
    ceil_mode: bool = False

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array) -> tuple[jax.Array, jax.Array]:
        stride = self.pool_size if self.strides is None else self.strides
        if self.ceil_mode:
            if stride != self.pool_size or self.padding.lower() != "valid":
                raise ValueError("ceil_mode needs padding='valid' and strides equal to pool_size")
            # Steps past each text are -inf (they never win a max); the time axis is padded to
            # whole windows, so the partial window at the end of a text is a window like any.
            size = self.pool_size
            x = ops.mask_padding(x, lengths, -jnp.inf)
            x = jnp.pad(x, ((0, 0), (0, -x.shape[1] % size), (0, 0)), constant_values=-jnp.inf)
            out_lengths = (lengths + size - 1) // size
            return ops.mask_padding(ops.max_pool1d(x, size), out_lengths), out_lengths
        x = _pad_time_to(x, self.pool_size)
        y = ops.max_pool1d(x, self.pool_size, stride, self.padding, lengths=lengths)
        out_lengths = ops.output_lengths(
            lengths, self.pool_size, stride=stride, padding=self.padding
        )
        return y, out_lengths


class Recurrent(nn.Module):
    """Stacked, optionally bidirectional RNN / LSTM / GRU over (B, T, F): a wrapper over
    ``seqclf.ops.recurrent_stack``.

    Parameters are stored per layer as ``layer{k}`` (and ``layer{k}_reverse``), each the plain
    dict documented in ``seqclf.ops.recurrent`` (PyTorch layout, transposed).

    Returns ``(ys, h_n)``: ys (B, T, D) the last layer's outputs (zero at padded steps) and h_n
    (B, D) its final hidden state at each sequence's last valid step, with D = H, or 2H when
    bidirectional (forward and backward concatenated).

    ``dtype`` is the compute dtype: the inputs are cast to it and the matmuls run in it (with
    float32 accumulation), ys comes out in it. The parameters stay float32 (master weights, and
    float32 gradients), and the recurrent state is carried in float32 even under bfloat16 (the
    dtype rules of ``seqclf.ops.recurrent``), so h_n is float32.

    ``fused`` (default True) runs the fast custom-VJP path (``seqclf.ops.lstm`` ...), in every
    dtype; False the plain autodiff scans (``seqclf.ops.lstm_reference`` ...), equal within
    float rounding and slower to train.
    """

    kind: str = "lstm"
    hidden_size: int = 128
    num_layers: int = 1
    bidirectional: bool = False
    unroll: int = 1
    dtype: Any = jnp.float32
    fused: bool = True  # False: the *_reference scans

    @nn.compact
    def __call__(self, x: jax.Array, lengths: jax.Array | None) -> tuple[jax.Array, jax.Array]:
        if self.kind not in ops.GATES:
            raise ValueError(f"unknown recurrent kind {self.kind!r}; choose rnn, lstm or gru")
        directions = 2 if self.bidirectional else 1
        layers = []
        for k in range(self.num_layers):
            features = x.shape[-1] if k == 0 else self.hidden_size * directions
            names = [f"layer{k}", f"layer{k}_reverse"][:directions]
            params = [
                self.param(
                    name, ops.init_params, self.kind, features, self.hidden_size, jnp.float32
                )
                for name in names
            ]
            layers.append(tuple(params) if self.bidirectional else params[0])
        ys, states = ops.recurrent_stack(
            self.kind,
            layers,
            x.astype(self.dtype),
            lengths,
            bidirectional=self.bidirectional,
            unroll=self.unroll,
            reference=not self.fused,
        )
        last = states[-1]
        if self.bidirectional:
            h_n = jnp.concatenate([ops.final_hidden(self.kind, s) for s in last], axis=-1)
        else:
            h_n = ops.final_hidden(self.kind, last)
        return ys, h_n


class NGramBag(nn.Module):
    """fastText's bag of n-grams: ``(tokens, lengths) -> (B, dim)``, the mean of the word and
    hashed-bigram embeddings of each text (see ``seqclf.ops.ngram_bag``).

    Attributes:
      vocab_size: token ids.
      buckets: bigram hash buckets.
      dim: embedding size.
    """

    vocab_size: int
    buckets: int
    dim: int

    @nn.compact
    def __call__(
        self, tokens: jax.Array, lengths: jax.Array, token_weights: jax.Array | None = None
    ) -> jax.Array:
        words = self.param("words", keras_embedding_init, (self.vocab_size, self.dim))
        bigrams = self.param("bigrams", keras_embedding_init, (self.buckets, self.dim))
        word_vectors = words[tokens]
        bigram_vectors = bigrams[ops.hashed_bigrams(tokens, self.buckets)]
        if token_weights is not None:  # a bigram fades in with both of its words
            pair = ops.ngram_token_weights(token_weights, 2)
            word_vectors = word_vectors * pair[..., 0:1]
            bigram_vectors = bigram_vectors * pair[..., 1:2]
        return ops.ngram_bag(word_vectors, bigram_vectors, lengths)


class NaiveBayesBag(nn.Module):
    """NBSVM as a layer: ``(tokens, lengths) -> (B, num_classes)`` logits of a linear model over
    the distinct hashed n-grams of each text, each scaled by its NB log-count ratio
    (``seqclf.ops.naive_bayes``).

    ``logits[c] = bias[c] + sum over distinct n-grams g of r[g, c] * weights[g, c]``, with ``r``
    the log-count ratios of ``counts`` (buckets, C): in how many training texts of each class
    each bucket occurs. None of the three is trained by gradient: ``seqclf.naive_bayes.fit_nbsvm``
    counts and fits them on the training split, as NBSVM is fitted (until then they are zero and
    the head says nothing).

    Attributes:
      buckets: n-gram hash buckets.
      num_classes: C.
      max_n: longest n-gram (3: words, bigrams and trigrams).
    """

    buckets: int
    num_classes: int
    max_n: int = 3

    @nn.compact
    def __call__(
        self, tokens: jax.Array, lengths: jax.Array, token_weights: jax.Array | None = None
    ) -> jax.Array:
        shape = (self.buckets, self.num_classes)
        counts = self.param("counts", nn.initializers.zeros, shape, jnp.float32)
        weights = self.param("weights", nn.initializers.zeros, shape, jnp.float32)
        bias = self.param("bias", nn.initializers.zeros, (self.num_classes,), jnp.float32)
        if token_weights is None:  # the usual forward: no need to know where each n-gram was
            ids, first = ops.distinct_ngram_ids(tokens, lengths, self.max_n, self.buckets)
            present = first.astype(jnp.float32)
        else:
            ids, first, where = ops.distinct_ngrams(tokens, lengths, self.max_n, self.buckets)
            grid = ops.ngram_token_weights(token_weights.astype(jnp.float32), self.max_n)
            weight = jnp.take_along_axis(grid.reshape(first.shape), where, axis=1)
            present = first.astype(jnp.float32) * weight
        ids = jnp.minimum(ids, self.buckets - 1)  # absent entries (masked) read any bucket
        ratios = ops.selected_log_count_ratios(counts[ids], ops.class_totals(counts), self.buckets)
        evidence = ratios * weights[ids]  # (B, T * max_n, C)
        return bias + jnp.einsum("bk,bkc->bc", present, evidence)


def keras_embedding_init(key: jax.Array, shape: tuple[int, ...], dtype: Any = jnp.float32):
    """Uniform in ±0.05, like Keras' Embedding default (Flax's ``uniform`` draws from [0, s))."""
    return jax.random.uniform(key, shape, dtype, -0.05, 0.05)
