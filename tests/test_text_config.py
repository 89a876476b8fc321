"""TextConfig: how text becomes ids, saved with the checkpoint and read by the predictor; older
checkpoints (text settings inside train_config) still load; one rule for unknown keys."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import seqclf
from seqclf.checkpoint import CheckpointStore
from seqclf.data.preprocessing import TextConfig
from seqclf.model import ClassifierConfig, build_classifier
from seqclf.train import TrainConfig

TEXTS = ["a good film", "a bad film", "good good", "bad plot", "fine film", "dull plot"]
# The cheapest model to compile: what is tested is the text pipeline around it.
CHEAP = {"embed_dim": 8, "conv_filters": (), "rnn": "rnn", "hidden_size": 8,
         "bidirectional": False, "reduce": "last", "nb_buckets": 0, "fused": False}  # fmt: skip
CONFIG = ClassifierConfig(vocab_size=9, **CHEAP)


def write_checkpoint(out, *, old: bool, tokenizer: str = "words_and_punctuation"):
    """A checkpoint as ``train_text_classifier`` writes it (untrained parameters); ``old``: as
    seqclf wrote it before TextConfig, the text settings only in train_config. Before the
    tokenizer was saved with the vocabulary (``tokenizer="words"`` here), the vocabulary's dict
    had no "tokenizer" key."""
    vocabulary = seqclf.Vocabulary.build(TEXTS, vocab_size=9, tokenizer=tokenizer)
    saved_vocabulary = vocabulary.to_dict()
    if old or tokenizer == "words":
        del saved_vocabulary["tokenizer"]
    model = build_classifier(CONFIG)
    params = model.init(jax.random.PRNGKey(0), jnp.ones((1, 4), int), jnp.ones(1, int))["params"]
    train = TrainConfig(epochs=1, batch_size=4).to_dict()
    if old:
        train.update(max_len=3, truncating="pre", num_buckets=1, max_words=9)
    meta = {
        "model_config": CONFIG.to_dict(),
        "vocabulary": saved_vocabulary,
        "classes": ["neg", "pos"],
        "train_config": train,
        "progress": {},
        "history": [],
    }
    if not old:
        meta["text_config"] = TextConfig(
            tokenizer=tokenizer, vocab_size=9, max_len=2, truncating="post", num_buckets=1
        ).to_dict()
    store = CheckpointStore(out)
    store.save(1, {"params": params, "step": 1}, meta, 0.5)
    store.close()
    return out


@pytest.mark.parametrize("old", [True, False])
def test_the_predictor_reads_the_text_config_and_old_checkpoints_still_load(tmp_path, old):
    predictor = seqclf.load(write_checkpoint(tmp_path / "run", old=old))
    if old:  # from train_config: max_len 3, truncating "pre"; punctuation dropped
        assert predictor.text == TextConfig(
            tokenizer="words", vocab_size=9, max_len=3, truncating="pre", num_buckets=1
        )
        assert predictor.vocabulary.tokenizer == "words"
    else:
        assert predictor.text == TextConfig(
            vocab_size=9, max_len=2, truncating="post", num_buckets=1
        )
    assert (predictor.max_len, predictor.buckets) == (
        predictor.text.max_len,
        predictor.text.buckets,
    )
    assert predictor.predict_proba(TEXTS).shape == (len(TEXTS), 2)
    # The text settings reach the encoding: 'post' keeps the start, 'pre' the end.
    long = "good " * 2 + "bad " * 5
    ids = predictor.vocabulary.encode(long)
    kept = seqclf.data.truncate(ids, predictor.max_len, predictor.truncating)
    assert list(kept) == (list(ids[-3:]) if old else list(ids[:2]))


def test_a_run_saved_before_punctuation_tokens_still_reads_words_only(tmp_path):
    """Runs written before the "words_and_punctuation" tokenizer (their text_config says
    "words", their vocabulary saved no tokenizer) predict as they did: "!" is not a token."""
    predictor = seqclf.load(write_checkpoint(tmp_path / "run", old=False, tokenizer="words"))
    assert predictor.text.tokenizer == predictor.vocabulary.tokenizer == "words"
    assert predictor.vocabulary.encode("good film!!").tolist() == [
        predictor.vocabulary.id_of("good"),
        predictor.vocabulary.id_of("film"),
    ]
    np.testing.assert_array_equal(
        predictor.predict_proba(["good film!!"]), predictor.predict_proba(["good film"])
    )
    new = seqclf.load(write_checkpoint(tmp_path / "new", old=False))
    assert new.vocabulary.tokenize("good film!") == ["good", "film", "!"]
    assert len(new.vocabulary.encode("good film!")) == 3  # "!" is a token (unknown to it: OOV)


def test_resuming_an_old_run_reports_only_the_settings_the_user_changed():
    """A run saved with the tokenizer of before, resumed with no options: the new default
    tokenizer is not the user's choice, so it is not reported as "given now and not used"."""
    from seqclf.experiment import settings_not_used

    saved = TextConfig(tokenizer="words", max_len=600, vocab_size=30002)
    assert settings_not_used(TextConfig(), saved) == []
    assert settings_not_used(TextConfig(max_len=100), saved) == ["max_len"]
    assert settings_not_used(TextConfig(truncating="post"), saved) == ["truncating"]
    assert settings_not_used(TextConfig(tokenizer="words"), saved) == []
    assert settings_not_used(TextConfig(tokenizer="words"), TextConfig()) == ["tokenizer"]
    assert settings_not_used(TextConfig(max_len=600), saved) == []  # the same as saved
    saved_train = TrainConfig(epochs=3, batch_size=32)
    assert settings_not_used(TrainConfig(epochs=9), saved_train) == []  # epochs may change
    assert settings_not_used(TrainConfig(batch_size=64), saved_train) == ["batch_size"]


def test_a_checkpoint_whose_vocabulary_and_text_config_disagree_is_refused(tmp_path):
    run = write_checkpoint(tmp_path / "run", old=False)
    store = CheckpointStore(run)
    meta = store.restore_meta()
    meta["text_config"]["tokenizer"] = "words"
    store.save(2, {"params": store.restore_params(1), "step": 2}, meta, 0.4)
    store.close()
    with pytest.raises(seqclf.CheckpointError, match="tokenizer 'words_and_punctuation' is not"):
        seqclf.load(run, step=2)


def test_round_trip_and_unknown_keys_raise_naming_them():
    text = TextConfig(vocab_size=50, max_len=20, truncating="post", num_buckets=2)
    assert TextConfig.from_dict(text.to_dict()) == text
    with pytest.raises(ValueError, match="unknown TextConfig key.*'max_length'"):
        TextConfig.from_dict({**text.to_dict(), "max_length": 3})
    with pytest.raises(ValueError, match="unknown ClassifierConfig key.*'layers'"):
        ClassifierConfig.from_dict({**CONFIG.to_dict(), "layers": 2})
    assert TextConfig.from_train_config({"max_words": 7, "max_len": 5}) == TextConfig(
        tokenizer="words", vocab_size=7, max_len=5
    )


def test_bad_values_are_rejected_naming_the_field():
    for kwargs, field in (
        ({"tokenizer": "bpe"}, "tokenizer"),
        ({"truncating": "middle"}, "truncating"),
        ({"vocab_size": 2}, "vocab_size"),
        ({"max_len": 0}, "max_len"),
        ({"num_buckets": 1.5}, "num_buckets"),
    ):
        with pytest.raises(ValueError, match=field):
            TextConfig(**kwargs)
    with pytest.raises(ValueError, match="max_len or num_buckets is None"):
        _ = TextConfig().buckets


def test_the_text_settings_are_only_in_the_text_config():
    """TrainConfig says how to train, TextConfig how texts become ids: a text setting given to
    TrainConfig is an error, while the train_config an older checkpoint saved (text settings
    inside) still reads, without them."""
    for name in ("max_len", "truncating", "num_buckets", "max_words"):
        assert name not in {f.name for f in dataclasses.fields(TrainConfig)}
    with pytest.raises(TypeError, match="max_len"):
        TrainConfig(max_len=9)
    old = {**TrainConfig(epochs=2).to_dict(), "max_len": 9, "max_words": 90, "num_buckets": 1}
    assert TrainConfig.from_dict({**old, "truncating": "post"}) == TrainConfig(epochs=2)
    with pytest.raises(ValueError, match="unknown TrainConfig key.*'max_length'"):
        TrainConfig.from_dict({**old, "max_length": 9})


def test_a_training_run_saves_its_text_config(tmp_path):
    from tiny_run import synthetic_reviews

    run = seqclf.train_text_classifier(
        synthetic_reviews(40, seed=1),
        tmp_path / "run",
        model_options=CHEAP,
        text_config=TextConfig(vocab_size=30, max_len=16),
        train_config=TrainConfig(epochs=1, batch_size=8),
        progress=False,
    )
    assert run.text_config == TextConfig(vocab_size=30, max_len=16, num_buckets=1)
    meta = CheckpointStore(tmp_path / "run", create=False).restore_meta()
    assert TextConfig.from_dict(meta["text_config"]) == run.text_config
    assert "max_len" not in meta["train_config"]  # one place for each setting
    assert seqclf.load(tmp_path / "run").text == run.text_config
    assert len(repr(run)) < 300 and "Array" not in repr(run)
    np.testing.assert_array_equal(
        run.vocabulary.encode("great"), seqclf.load(tmp_path / "run").vocabulary.encode("great")
    )
