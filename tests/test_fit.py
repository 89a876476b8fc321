"""seqclf.fit: a model you built, raw texts and labels in, a classifier out (Keras' model.fit)."""

from __future__ import annotations

import warnings

import flax.linen as nn
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_run import synthetic_reviews

import seqclf
from seqclf.fitting import as_dataset

# The cheapest model to compile: what is tested is the path around it.
TINY = {"embed_dim": 8, "conv_filters": (), "rnn": "rnn", "hidden_size": 8,
        "bidirectional": False, "reduce": "last", "nb_buckets": 0, "fused": False}  # fmt: skip
ONE_EPOCH = seqclf.TrainConfig(epochs=1, batch_size=8, learning_rate=1e-2)


def raw(n: int, seed: int):
    """(texts, label names) as a user has them."""
    data = synthetic_reviews(n, seed=seed)
    return data.texts, [data.classes[i] for i in data.labels]


class MeanBag(nn.Module):
    """A model of one's own: the mean of its word vectors → Dense."""

    vocab_size: int
    num_classes: int = 2

    @nn.compact
    def __call__(self, tokens, lengths, train=False):
        mask = (jnp.arange(tokens.shape[1]) < lengths[:, None])[..., None]
        x = nn.Embed(self.vocab_size, 8)(tokens) * mask
        return nn.Dense(self.num_classes)(x.sum(1) / jnp.maximum(lengths, 1)[:, None])


class EpochRecords(seqclf.Callback):
    """A user's own callback: keeps every epoch's record."""

    def __init__(self):
        self.records = []

    def on_epoch_end(self, run, record):
        self.records.append(record)


def test_fit_a_built_classifier_on_raw_texts_then_save_and_load(tmp_path):
    model = seqclf.build_classifier(vocab_size=60, **TINY)
    mine = EpochRecords()
    clf = seqclf.fit(
        model, raw(48, 0), raw(16, 1), config=ONE_EPOCH, progress=False, callbacks=[mine]
    )
    assert isinstance(clf, seqclf.Predictor) and clf.classes == ["neg", "pos"]
    assert len(clf.history) == 1 and clf.stopped_by == "completed"
    assert mine.records == clf.history  # the user's callback saw the epoch fit recorded
    assert len(clf.vocabulary) <= 60 and clf.config.vocab_size == len(clf.vocabulary)
    texts = ["a great film", "an awful plot"]
    probs = clf.predict_proba(texts)
    assert probs.shape == (2, 2) and np.allclose(probs.sum(1), 1, atol=1e-5)
    assert set(clf.predict(texts)) <= {"neg", "pos"}
    metrics = clf.evaluate(synthetic_reviews(16, seed=2))
    assert 0.0 <= metrics["accuracy"] <= 1.0 and metrics["loss"] > 0
    loaded = seqclf.load(clf.save(tmp_path / "mine"))
    np.testing.assert_allclose(loaded.predict_proba(texts), probs, rtol=1e-5, atol=1e-6)
    assert loaded.text == clf.text
    with pytest.raises(seqclf.CheckpointError, match="already holds a checkpoint"):
        clf.save(tmp_path / "mine")
    assert len(repr(clf)) < 300 and "Array" not in repr(clf)


def test_fit_a_module_of_ones_own(tmp_path):
    texts, labels = raw(40, 3)
    labels = [int(c == "pos") for c in labels]  # integer labels are class names too
    with pytest.raises(ValueError, match="vocab_size"):
        seqclf.fit(MeanBag(50), (texts, labels), config=ONE_EPOCH, progress=False)
    clf = seqclf.fit(
        MeanBag(50),
        (texts, labels),
        text=seqclf.TextConfig(vocab_size=50, max_len=16),
        config=ONE_EPOCH,
        progress=False,
    )
    assert clf.classes == ["0", "1"] and clf.config is None and clf.heads == ("output",)
    probs = clf.predict_proba(texts[:3])
    clf.save(tmp_path / "own")
    with pytest.raises(seqclf.CheckpointError, match="model=the_same_module"):
        seqclf.load(tmp_path / "own")
    again = seqclf.load(tmp_path / "own", model=MeanBag(50))
    np.testing.assert_allclose(again.predict_proba(texts[:3]), probs, rtol=1e-5, atol=1e-6)
    with pytest.raises(NotImplementedError, match="explain needs a seqclf model"):
        clf.explain("a great film")


def test_bad_data_is_refused_with_one_sentence():
    texts, labels = raw(20, 4)
    with pytest.raises(ValueError, match=r"label 'meh' \(position 1\) is not one of the classes"):
        as_dataset((texts[:2], ["neg", "meh"]), classes=["neg", "pos"])
    with pytest.raises(TypeError, match="TextDataset or a \\(texts, labels\\) pair"):
        as_dataset(texts)
    model = seqclf.build_classifier(vocab_size=60, num_classes=3, **TINY)
    with pytest.raises(ValueError, match="num_classes=3 but the data has 2 classes"):
        seqclf.fit(model, (texts, labels), config=ONE_EPOCH, progress=False)
    with pytest.raises(ValueError, match="more than the model's vocab_size 60"):
        seqclf.fit(
            seqclf.build_classifier(vocab_size=60, **TINY),
            (texts, labels),
            text=seqclf.TextConfig(vocab_size=100),
            progress=False,
        )


def test_the_data_readers_older_names_still_work_and_say_the_new_one(tmp_path):
    path = tmp_path / "r.csv"
    path.write_text("text,label\ngood film,pos\nbad film,neg\n")
    with pytest.warns(DeprecationWarning, match="seqclf.load_table is now seqclf.read_table"):
        old = seqclf.load_table(path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert seqclf.read_table(path) == old
    with pytest.warns(DeprecationWarning, match="read_dataset"):
        assert seqclf.data.load_any(str(path)) == old
    assert "load_table" not in seqclf.__all__


def test_a_saved_train_config_with_an_unknown_key_is_refused_naming_it():
    saved = {**seqclf.TrainConfig(epochs=2).to_dict(), "epoks": 3}
    with pytest.raises(ValueError, match="unknown TrainConfig key.*'epoks'"):
        seqclf.TrainConfig.from_dict(saved)
    assert seqclf.TrainConfig.from_dict(seqclf.TrainConfig(epochs=2).to_dict()).epochs == 2
