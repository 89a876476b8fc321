"""The default recipe: settings resolved from the data, NBSVM features, short texts, imbalance."""

import csv
import math
import types
import warnings
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqclf
from seqclf import ops, recipe
from seqclf.data.preprocessing import TextConfig
from seqclf.data.sources import TextDataset
from seqclf.model import build_classifier
from seqclf.naive_bayes import bag_matrix, fit_nbsvm
from seqclf.presets import CLASSIC
from seqclf.recipe import DataProfile, SettingWarning
from seqclf.training import TrainConfig
from seqclf.training.callbacks.progress import warn_unpredicted_classes

TINY = {"embed_dim": 16, "hidden_size": 8, "conv_filters": (8,)}


def _profile(lengths, labels=None, num_classes=2):
    lengths = np.asarray(lengths)
    labels = np.arange(lengths.size) % num_classes if labels is None else np.asarray(labels)
    return DataProfile.of([np.ones(n, np.int32) for n in lengths], labels, num_classes)


def _resolve(profile, given=None, model=None):
    """``(settings, model, chosen)``: the resolved ``TrainConfig`` and ``TextConfig`` fields as
    one namespace; ``given`` is either config (the other at its defaults)."""
    train = given if isinstance(given, TrainConfig) else TrainConfig()
    text = given if isinstance(given, TextConfig) else TextConfig()
    text, chosen_text = recipe.resolve_text_config(text, profile)
    config, chosen = recipe.resolve_train_config(train, profile)
    model, chosen_model = recipe.resolve_model_config(
        model,
        profile,
        vocab_size=100,
        num_classes=len(profile.class_counts),
        max_len=text.max_len,
    )
    settings = types.SimpleNamespace(**config.to_dict(), **text.to_dict())
    return settings, model, {**chosen_text, **chosen, **chosen_model}


def test_short_texts_get_a_short_max_len_and_no_pooling():
    lengths = np.random.default_rng(0).integers(1, 6, 5000)  # phrases of 1-5 words (MPQA)
    config, model, chosen = _resolve(_profile(lengths))
    assert config.max_len == 8 and model.pool_size == 1 and config.num_buckets == 1
    wanted = {
        "max_len",
        "num_buckets",
        "batch_size",
        "epochs",
        "vocab_size",
        "pool_size",
        "nb_buckets",
    }
    assert wanted <= set(chosen)


def test_long_texts_get_their_95th_percentile_and_pooling():
    lengths = np.random.default_rng(0).lognormal(5.2, 0.7, 25000).astype(int) + 10  # reviews
    config, model, _ = _resolve(_profile(lengths))
    expected = math.ceil(np.ceil(np.percentile(lengths, 95)) / 8) * 8
    assert config.max_len == expected
    assert model.pool_size == 4 and config.batch_size == 64 and config.epochs == 3
    assert config.num_buckets == min(4, expected // 64)


def test_tiny_and_large_sets():
    tiny, tiny_model, _ = _resolve(_profile(np.full(3000, 20)))
    assert tiny.batch_size == 16 and tiny.epochs == 10  # few steps per epoch: more epochs
    large, large_model, _ = _resolve(_profile(np.full(1_000_000, 200)))
    assert large.batch_size == 64 and large.epochs == 3
    assert large_model.nb_buckets == 2**22 > tiny_model.nb_buckets >= 2**16


def test_many_classes_keep_the_nbsvm_table_bounded():
    profile = _profile(np.full(50_000, 100), num_classes=100)
    _, model, _ = _resolve(profile)
    assert model.nb_buckets * model.num_classes <= 2**24 and model.nb_buckets >= 2**16


def test_given_settings_are_kept_and_wasteful_ones_clamped():
    profile = _profile(np.full(1000, 20))
    config, model, chosen = _resolve(profile, TextConfig(max_len=50), {})
    assert config.max_len == 50 and "max_len" not in chosen
    config, model, chosen = _resolve(profile, TrainConfig(batch_size=32), {})
    assert config.batch_size == 32 and "batch_size" not in chosen
    with pytest.warns(SettingWarning, match="max_len 100000 is more than 10x"):
        config, _, _ = _resolve(profile, TextConfig(max_len=100_000))
    assert config.max_len == 24
    with pytest.warns(SettingWarning, match="batch_size 100000 is more than 10x"):
        config, _, _ = _resolve(profile, TrainConfig(batch_size=100_000))
    assert config.batch_size == 1024
    with pytest.warns(SettingWarning, match="conv_kernel_size 100 is longer than every"):
        _, model, _ = _resolve(profile, None, {"conv_kernel_size": 100})
    assert model.conv_kernel_size == 20


def test_class_weights():
    counts = [1003, 100]
    balanced = recipe.class_weights(counts, "balanced")
    assert balanced[1] / balanced[0] == pytest.approx(10.03)
    root = recipe.class_weights(counts, "sqrt")
    assert root[1] / root[0] == pytest.approx(math.sqrt(10.03))
    for weights in (balanced, root):
        assert np.dot(weights, counts) / sum(counts) == pytest.approx(1.0)
    assert recipe.class_weights(counts, "none").tolist() == [1.0, 1.0]


@pytest.mark.parametrize("preset", ["default", "classic"])
def test_a_one_token_text_reaches_the_classifier(preset):
    """Different one-token texts, and the empty text, give different outputs, whatever the
    convolution and pooling (the classic model's 'valid' conv 5 + pool 4 used to leave nothing
    of texts under 8 tokens: they all got the empty text's output)."""
    base = CLASSIC if preset == "classic" else seqclf.ClassifierConfig(nb_buckets=257)
    model = build_classifier(base, vocab_size=30, **TINY)
    tokens = jnp.array([[5, 0, 0], [9, 0, 0], [0, 0, 0], [5, 9, 0]], jnp.int32)
    lengths = jnp.array([1, 1, 0, 2], jnp.int32)
    variables = model.init(jax.random.PRNGKey(0), tokens, lengths)
    out = np.asarray(model.apply(variables, tokens, lengths))
    for i in range(4):
        for j in range(i):
            assert np.abs(out[i] - out[j]).max() > 1e-6, (i, j, out)


def test_token_weights_of_one_change_nothing_and_zero_silences_a_token():
    model = build_classifier(vocab_size=30, nb_buckets=257, ngram_buckets=31, **TINY)
    tokens = jnp.array([[5, 7, 9, 0]], jnp.int32)
    lengths = jnp.array([3], jnp.int32)
    variables = model.init(jax.random.PRNGKey(0), tokens, lengths)
    plain = model.apply(variables, tokens, lengths)
    ones = model.apply(variables, tokens, lengths, token_weights=jnp.ones((1, 4)))
    np.testing.assert_allclose(ones, plain, atol=1e-6)
    weights = jnp.array([[1.0, 0.0, 1.0, 1.0]])
    assert np.abs(model.apply(variables, tokens, lengths, token_weights=weights) - plain).max() > 0


def test_nbsvm_features_count_each_ngram_once():
    tokens = jnp.array([[5, 5, 5, 0]], jnp.int32)
    ids, valid = ops.hashed_ngrams(tokens, jnp.array([3]), 3, 1 << 20)
    assert valid[0].sum(axis=0).tolist() == [3, 2, 1]  # 3 words, 2 bigrams, 1 trigram
    _, first, _ = ops.distinct_ngrams(tokens, jnp.array([3]), 3, 1 << 20)
    assert int(first.sum()) == 3  # "5", "5 5" and "5 5 5", each once


def test_the_sort_only_distinct_ngrams_are_the_argsorted_ones():
    """distinct_ngram_ids (the prediction path: a sort of the ids alone) gives exactly the ids and
    first-occurrence mask of distinct_ngrams (an argsort), padding and repeats included."""
    rng = np.random.default_rng(3)
    tokens = jnp.asarray(rng.integers(0, 6, (5, 11)), jnp.int32)  # few words: many repeats
    lengths = jnp.array([11, 7, 1, 0, 4])
    for buckets in (7, 1 << 20):
        ids, first, _ = ops.distinct_ngrams(tokens, lengths, 3, buckets)
        fast_ids, fast_first = ops.distinct_ngram_ids(tokens, lengths, 3, buckets)
        np.testing.assert_array_equal(fast_ids, ids)
        np.testing.assert_array_equal(fast_first, first)
        hashed = ops.hashed_ngrams(tokens, lengths, 3, buckets)
        flat, valid = (np.asarray(a).reshape(5, -1) for a in hashed)
        for row in range(5):  # each row's distinct buckets, each once
            expected = sorted(set(flat[row][valid[row]].tolist()))
            assert np.asarray(fast_ids)[row][np.asarray(fast_first)[row]].tolist() == expected


def test_log_count_ratios_are_wang_and_mannings():
    counts = np.array([[3.0, 0.0], [1.0, 2.0], [0.0, 0.0]])
    p = 1 + counts[:, 1]
    q = 1 + counts[:, 0]
    expected = np.log(p / p.sum()) - np.log(q / q.sum())
    np.testing.assert_allclose(ops.log_count_ratios(counts)[:, 1], expected, rtol=1e-6)
    np.testing.assert_allclose(ops.log_count_ratios(counts)[:, 0], -expected, rtol=1e-6)


@pytest.mark.parametrize("rows", [2048, 1000])  # read in wide rows / not a multiple of 512
@pytest.mark.parametrize("classes", [2, 5])
def test_class_totals_are_the_column_sums_of_the_count_table(rows, classes):
    counts = np.random.default_rng(rows + classes).integers(0, 50, (rows, classes))
    totals = ops.class_totals(counts.astype(np.float32))
    assert totals.shape == (classes,) and totals.dtype == jnp.float32
    np.testing.assert_array_equal(np.asarray(totals), counts.sum(axis=0))  # integers: exact


def test_bag_matrix_counts_each_ngram_once_per_text():
    rng = np.random.default_rng(0)
    texts = [rng.integers(2, 12, rng.integers(1, 9)).astype(np.int32) for _ in range(40)]
    buckets, max_n = 64, 2
    x = bag_matrix(texts, buckets, max_n, TextConfig(max_len=8, num_buckets=1))
    for i, ids in enumerate(texts):
        hashed, valid = ops.hashed_ngrams(jnp.asarray(ids)[None], jnp.array([len(ids)]), 2, 64)
        expected = sorted(set(np.asarray(hashed)[np.asarray(valid)].tolist()))
        assert x[i].indices.tolist() == expected and set(x[i].data.tolist()) == {1.0}


def test_the_fitted_nbsvm_head_is_what_the_model_computes():
    """fit_nbsvm's logistic regression, on its own features, and the model's NBSVM head with
    the fitted parameters give the same logits (same hashing, same ratios)."""
    data = _keyword_data([60, 60, 60], noise_words=4)
    vocab = seqclf.Vocabulary.build(data.texts)
    ids = vocab.encode_batch(data.texts)
    config = TextConfig(max_len=8, num_buckets=1)
    train, valid = (ids[:150], data.labels[:150]), (ids[150:], data.labels[150:])
    head, report = fit_nbsvm(train, valid, 3, 512, 2, config)
    assert "kept C=" in report
    model = build_classifier(vocab_size=len(vocab), num_classes=3, nb_buckets=512, nb_ngrams=2)
    batch = next(seqclf.data.batches(ids[150:], None, 30, max_len=8))
    tokens, lengths = jnp.asarray(batch["tokens"]), jnp.asarray(batch["lengths"])
    params = model.init(jax.random.PRNGKey(0), tokens, lengths)["params"]
    params = {**params, "nb_head": jax.tree_util.tree_map(jnp.asarray, head)}
    _, sown = model.apply({"params": params}, tokens, lengths, mutable=["head_logits"])
    got = np.asarray(sown["head_logits"]["nbsvm_head"][0])
    x = bag_matrix(ids[150:], 512, 2, config)
    ratios = np.asarray(ops.log_count_ratios(head["counts"]))
    np.testing.assert_allclose(got, x @ (ratios * head["weights"]) + head["bias"], atol=1e-4)
    assert np.mean(got.argmax(1) == data.labels[150:]) > 0.9


def _keyword_data(n_per_class, seed=0, noise_words=6):
    """Texts whose class is given by one keyword among random filler words (the first six
    classes' keywords are words of their own, "alpha" ..., the others "key6", "key7" ...)."""
    rng = np.random.default_rng(seed)
    keywords = ["alpha", "bravo", "charlie", "delta", "echo", "foxtrot"]
    keywords += [f"key{c}" for c in range(len(keywords), len(n_per_class))]
    filler = [f"w{i}" for i in range(40)]
    texts, labels = [], []
    for c, n in enumerate(n_per_class):
        for _ in range(n):
            words = list(rng.choice(filler, rng.integers(1, noise_words)))
            words.insert(int(rng.integers(0, len(words) + 1)), keywords[c])
            texts.append(" ".join(words))
            labels.append(c)
    order = rng.permutation(len(texts))
    classes = [f"class{c}" for c in range(len(n_per_class))]
    return TextDataset([texts[i] for i in order], np.asarray(labels)[order], classes)


def test_a_small_multiclass_task_is_learned_well_above_chance(tmp_path):
    data = _keyword_data([120] * 4)
    train, test = data.subset(range(380)), data.subset(range(380, 480))
    seqclf.train_text_classifier(
        train, tmp_path, model_options=TINY, train_config=TrainConfig(epochs=4), progress=False
    )
    predictor = seqclf.load(tmp_path)
    assert predictor.evaluate(test)["accuracy"] > 0.999  # chance: 0.25
    alone = predictor.predict_proba(test.texts, head="recurrent_head")  # the CNN-LSTM alone
    assert alone.shape == (100, 4) and np.mean(alone.argmax(1) == test.labels) > 0.35  # chance 0.25
    # One-word texts and the empty text all get their own answer through the whole pipeline.
    probs = predictor.predict_proba(["alpha", "delta", "w3"])
    assert probs[0].argmax() == 0 and probs[1].argmax() == 3
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        empty = predictor.predict_proba([""])
    assert np.abs(probs - empty).max(axis=1).min() > 1e-4


def test_a_hundred_and_twenty_classes_train_and_predict_through_the_defaults(tmp_path):
    """120 classes, 16 texts each, each class named by a word of its own among shared fillers:
    the default recipe (its NBSVM head's table bounded by the class count) learns them."""
    data = _keyword_data([16] * 120, noise_words=8)
    train, test = data.subset(range(1680)), data.subset(range(1680, 1920))
    run = seqclf.train_text_classifier(
        train, tmp_path, model_options=TINY, train_config=TrainConfig(epochs=2), progress=False
    )
    assert 2**16 <= run.model_config.nb_buckets <= 2**24 // 120  # the table stays bounded
    predictor = seqclf.load(tmp_path)
    assert predictor.classes == data.classes
    assert predictor.evaluate(test)["accuracy"] > 0.9  # chance: 1/120 (measured: 0.996)


def test_a_rare_class_is_learned_and_a_never_predicted_one_is_named(tmp_path, capsys):
    data = _keyword_data([1003, 100], seed=1)
    run = seqclf.train_text_classifier(
        data, tmp_path, model_options=TINY, train_config=TrainConfig(epochs=3), progress=False
    )
    recall = run.fit.history[-1]["val_recall"]
    assert len(recall) == 2 and recall[1] > 0.5  # the rare class, 10 validation examples
    warn_unpredicted_classes([0.98, 0.0])
    assert "recalls none of class(es) [1]" in capsys.readouterr().out


def test_seqclf_train_with_no_options_resolves_and_saves_the_settings(tmp_path, capsys):
    data = _keyword_data([60, 60])
    path = tmp_path / "train.csv"
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["text", "label"])
        writer.writerows(zip(data.texts, [data.classes[i] for i in data.labels], strict=True))
    from seqclf.cli import main

    argv = ["train", "--train", str(path), "--output-dir", str(tmp_path / "run"), "--no-progress"]
    assert main([*argv, "--epochs", "1", "--hidden-size", "8", "--embed-dim", "16"]) == 0
    out = capsys.readouterr().out
    assert "Settings from the data: max_len=8" in out and "pool_size=1" in out
    predictor = seqclf.load(tmp_path / "run")
    assert predictor.max_len == 8 and predictor.config.pool_size == 1
    assert predictor.config.hidden_size == 8 and predictor.config.nb_buckets >= 2**16


def test_the_clamping_messages_are_the_documented_ones():
    doc = (Path(__file__).resolve().parents[1] / "docs" / "what-happens-when.md").read_text()
    profile = _profile(np.full(1000, 20))
    cases = [
        (TextConfig(max_len=100_000), None),
        (TrainConfig(batch_size=100_000), None),
        (None, {"conv_kernel_size": 100}),
    ]
    for train, model in cases:
        with pytest.warns(SettingWarning) as caught:
            _resolve(profile, train, model)
        assert str(caught[0].message) in doc
    assert "the model recalls none of class(es) [1]" in doc
