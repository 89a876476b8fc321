"""build_classifier: shapes, parameter counts, every option, padding invariance, clear errors."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from seqclf import ClassifierConfig, build_classifier
from seqclf.layers import Dropout
from seqclf.presets import CLASSIC

VOCAB = 50


def _batch(lengths, max_len, seed=0):
    rng = np.random.default_rng(seed)
    tokens = rng.integers(2, VOCAB, size=(len(lengths), max_len))
    tokens = tokens * (np.arange(max_len)[None, :] < np.asarray(lengths)[:, None])
    return jnp.asarray(tokens, jnp.int32), jnp.asarray(lengths, jnp.int32)


def test_classic_preset_is_the_keras_cnn_lstm():
    model = build_classifier(CLASSIC, vocab_size=20000)
    tokens, lengths = _batch([100, 60], 100)
    variables = model.init(jax.random.PRNGKey(0), tokens, lengths)
    params = variables["params"]
    counts = {k: sum(x.size for x in jax.tree_util.tree_leaves(v)) for k, v in params.items()}
    # The same numbers Keras' model.summary() prints for the classic example.
    assert counts["embedding"] == 20000 * 128
    assert counts["conv0"] == 5 * 128 * 64 + 64
    assert counts["recurrent"] == 4 * 70 * (64 + 70) + 2 * 4 * 70  # PyTorch's two biases
    assert counts["output"] == 70 * 2 + 2
    logits = model.apply(variables, tokens, lengths)
    assert logits.shape == (2, 2) and logits.dtype == jnp.float32


def test_default_is_the_bidirectional_cnn_lstm_with_an_nbsvm_head():
    model = build_classifier(vocab_size=20000, nb_buckets=4096)
    tokens, lengths = _batch([100, 60], 100)
    params = model.init(jax.random.PRNGKey(0), tokens, lengths)["params"]
    counts = {k: sum(x.size for x in jax.tree_util.tree_leaves(v)) for k, v in params.items()}
    assert counts["embedding"] == 20000 * 128
    assert counts["conv0"] == 5 * 128 * 64 + 64
    assert counts["recurrent"] == 2 * (4 * 64 * (64 + 64) + 2 * 4 * 64)  # both directions
    assert counts["output"] == 128 * 2 + 2
    assert counts["nb_head"] == 2 * 4096 * 2 + 2  # ratios, corrections, bias
    assert counts["head_weights"] == 2
    assert model.config.heads == ("recurrent_head", "nbsvm_head")


OPTIONS = [
    {"nb_buckets": 997},
    {k: v for k, v in CLASSIC.to_dict().items() if k not in ("vocab_size", "num_classes")},
    {"rnn": "gru", "bidirectional": True, "reduce": "max", "num_layers": 2},
    {"rnn": "rnn", "conv_filters": (), "reduce": "mean", "num_classes": 5},
    {"conv_filters": (8, 8), "conv_padding": "same", "pool_size": 2, "dropout": 0.5},
    {"conv_filters": (8,), "conv_kernel_size": 3, "pool_size": 1, "hidden_size": 9},
    {"bidirectional": True, "reduce": "max", "ngram_buckets": 97, "ngram_dim": 6},
]


@pytest.mark.parametrize("options", OPTIONS)
def test_padding_and_neighbours_never_change_a_prediction(options):
    model = build_classifier(vocab_size=VOCAB, **options)
    tokens, lengths = _batch([37, 23, 5, 0], 40)
    variables = model.init(jax.random.PRNGKey(1), tokens, lengths)
    assert "perturbations" not in variables  # nothing that apply would add to other shapes
    apply = jax.jit(model.apply)
    batched = apply(variables, tokens, lengths)
    assert batched.shape == (4, options.get("num_classes", 2))
    # The same rows in the opposite order (other neighbours) and with 13 more padding steps.
    wider = jnp.pad(tokens[::-1], ((0, 0), (0, 13)))
    np.testing.assert_allclose(apply(variables, wider, lengths[::-1])[::-1], batched, atol=1e-5)
    # One row alone, padded to exactly its length.
    alone = apply(variables, tokens[1:2, :23], lengths[1:2])
    np.testing.assert_allclose(alone[0], batched[1], atol=1e-5)


def test_dropout_is_active_only_in_training():
    model = build_classifier(vocab_size=VOCAB, embed_dropout=0.5, dropout=0.5)
    tokens, lengths = _batch([30, 30], 30)
    variables = model.init(jax.random.PRNGKey(0), tokens, lengths)
    a = model.apply(variables, tokens, lengths)
    b = model.apply(variables, tokens, lengths)
    np.testing.assert_array_equal(a, b)
    t1 = model.apply(
        variables, tokens, lengths, train=True, rngs={"dropout": jax.random.PRNGKey(1)}
    )
    t2 = model.apply(
        variables, tokens, lengths, train=True, rngs={"dropout": jax.random.PRNGKey(2)}
    )
    assert not np.allclose(t1, t2)


def test_config_round_trips_and_rejects_bad_values():
    cfg = ClassifierConfig(rnn="gru", conv_filters=[32, 16])
    assert ClassifierConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ValueError, match="rnn must be one of"):
        build_classifier(rnn="transformer")
    with pytest.raises(ValueError, match="reduce must be one of"):
        build_classifier(reduce="sum")
    with pytest.raises(ValueError, match="num_classes must be >= 2"):
        build_classifier(num_classes=1)
    with pytest.raises(ValueError, match="unknown ClassifierConfig key.*layers"):
        ClassifierConfig.from_dict({**cfg.to_dict(), "layers": 3})
    with pytest.raises(ValueError, match="ngram_buckets must be >= 0"):
        build_classifier(ngram_buckets=-1)
    with pytest.raises(ValueError, match="nb_buckets must be >= 0"):
        build_classifier(nb_buckets=-1)
    # A config saved before pool_ceil and the NBSVM head existed means the model it was saved
    # from: no partial pooling window, no NBSVM head.
    old = {k: v for k, v in cfg.to_dict().items() if k not in ("pool_ceil", "nb_buckets")}
    assert ClassifierConfig.from_dict(old).pool_ceil is False
    assert ClassifierConfig.from_dict(old).heads == ("recurrent_head",)


def test_ngram_bag_is_a_second_head_weighted_in():
    model = build_classifier(
        vocab_size=VOCAB, hidden_size=8, ngram_buckets=97, ngram_dim=6, nb_buckets=0
    )
    tokens, lengths = _batch([20, 11, 3], 20)
    params = model.init(jax.random.PRNGKey(0), tokens, lengths)["params"]
    assert params["ngram_bag"]["words"].shape == (VOCAB, 6)
    assert params["ngram_bag"]["bigrams"].shape == (97, 6)
    assert params["output"]["kernel"].shape == (16, 2)  # bidirectional
    assert params["ngram_output"]["kernel"].shape == (6, 2)
    logits, sown = model.apply({"params": params}, tokens, lengths, mutable=["head_logits"])
    heads = sown["head_logits"]
    recurrent, ngram = heads["recurrent_head"][0], heads["ngram_head"][0]
    # Prediction = weighted sum of the heads' log-probabilities; the weights start at 1 (a
    # product of the probabilities) and are a parameter, fitted on validation after training.
    assert params["head_weights"].tolist() == [1.0, 1.0]
    expected = jax.nn.log_softmax(recurrent) + jax.nn.log_softmax(ngram)
    np.testing.assert_allclose(logits, expected, rtol=1e-6)
    params = {**params, "head_weights": jnp.array([0.25, 2.0])}
    logits = model.apply({"params": params}, tokens, lengths)
    expected = 0.25 * jax.nn.log_softmax(recurrent) + 2.0 * jax.nn.log_softmax(ngram)
    np.testing.assert_allclose(logits, expected, rtol=1e-6)
    # Each head depends on its own parameters only, so each can be trained by its own loss.
    g = jax.grad(
        lambda p: model.apply({"params": p}, tokens, lengths, mutable=["head_logits"])[1][
            "head_logits"
        ]["ngram_head"][0].sum()
    )(params)
    assert float(jnp.abs(g["embedding"]["embedding"]).max()) == 0.0
    assert float(jnp.abs(g["ngram_bag"]["words"]).max()) > 0.0
    # Only the buckets of bigrams that occur get a gradient: hashing, not a dense layer.
    touched = np.flatnonzero(np.abs(np.asarray(g["ngram_bag"]["bigrams"])).sum(1))
    assert 0 < touched.size <= 19 + 10 + 2


@pytest.mark.parametrize("mode", ["element", "word", "channel"])
def test_embedding_dropout_modes_drop_what_they_say(mode):
    model = build_classifier(
        vocab_size=VOCAB, embed_dropout=0.5, embed_dropout_mode=mode, hidden_size=4
    )
    tokens, lengths = _batch([40, 40], 40)
    variables = model.init(jax.random.PRNGKey(0), tokens, lengths)
    _, state = model.apply(
        variables,
        tokens,
        lengths,
        train=True,
        rngs={"dropout": jax.random.PRNGKey(3)},
        capture_intermediates=lambda module, _: isinstance(module, Dropout),
    )
    embedded = np.asarray(state["intermediates"]["embed_dropout"]["__call__"][0])  # (B, T, E)
    dropped = embedded == 0
    assert 0.3 < dropped.mean() < 0.7
    words_whole = (dropped.all(axis=2) | ~dropped.any(axis=2)).all()
    channels_whole = (dropped.all(axis=1) | ~dropped.any(axis=1)).all()
    assert words_whole == (mode == "word")
    assert channels_whole == (mode == "channel")
    with pytest.raises(ValueError, match="embed_dropout_mode must be one of"):
        build_classifier(embed_dropout_mode="token")
