"""End to end on a small slice of the shared IMDB copy: fit, checkpoints, resume, predict."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

import seqclf
from seqclf import training
from seqclf.data.batching import pad_batch
from seqclf.metrics import confusion_matrix, macro_f1
from seqclf.training import evaluation
from seqclf.training import step as step_module

SMALL_MODEL = dict(embed_dim=32, conv_filters=(), hidden_size=32, reduce="max", embed_dropout=0.1)
SMALL_TEXT = seqclf.TextConfig(vocab_size=5000, max_len=128, num_buckets=1)
SMALL_TRAINING = dict(
    epochs=3,
    batch_size=32,
    learning_rate=5e-3,
    patience=0,
    log_every=5,
)


@pytest.fixture(scope="module")
def imdb_slices(imdb_data_dir):
    train = seqclf.read_tfds(split="train[:2000]", data_dir=imdb_data_dir)
    test = seqclf.read_tfds(split="test[:500]", data_dir=imdb_data_dir)
    return train, test


@pytest.fixture(scope="module")
def trained(imdb_slices, tmp_path_factory):
    train, _ = imdb_slices
    out = tmp_path_factory.mktemp("imdb_run")
    run = seqclf.train_text_classifier(
        train,
        out,
        model_options=SMALL_MODEL,
        text_config=SMALL_TEXT,
        train_config=seqclf.TrainConfig(**SMALL_TRAINING),
        progress=False,
    )
    return run, out


def test_tiny_fit_beats_chance_clearly(trained, imdb_slices):
    run, out = trained
    _, test = imdb_slices
    assert run.fit.stopped_by == "completed"
    assert [h["epoch"] for h in run.fit.history] == [1, 2, 3]
    # The training loss falls and the model does far better than chance (0.5) on unseen test data.
    assert run.fit.history[-1]["train_loss"] < run.fit.history[0]["train_loss"]
    metrics = seqclf.load(out).evaluate(test)
    assert metrics["accuracy"] > 0.65, metrics
    # What a run leaves behind: a metrics log with one line per epoch and the curves.
    lines = (out / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(x)["epoch"] for x in lines] == [1, 2, 3]
    assert (out / "training_curves.png").stat().st_size > 1000


def test_best_and_latest_checkpoints_are_kept(trained):
    run, out = trained
    store = seqclf.checkpoint.CheckpointStore(out, create=False)
    # The best step has the highest validation accuracy (epochs may tie: the NBSVM head can
    # decide every epoch's predictions alone, and then any of the tied steps may be kept).
    by_step = {h["step"]: h for h in run.fit.history}
    best = store.best_step()
    assert by_step[best]["val_accuracy"] == max(h["val_accuracy"] for h in run.fit.history)
    assert store.latest_step() == run.fit.history[-1]["step"]
    assert set(store.all_steps()) == {best, run.fit.history[-1]["step"]}


def test_restore_in_a_new_process_gives_identical_predictions(trained, tmp_path):
    _, out = trained
    texts = ["a moving, beautiful film", "dull and far too long", "", "not bad at all"]
    here = seqclf.load(out).predict_proba(texts)
    script = (
        "import sys, json, numpy as np, seqclf\n"
        "p = seqclf.load(sys.argv[1])\n"
        "np.save(sys.argv[2], p.predict_proba(json.loads(sys.argv[3])))\n"
        "print(json.dumps(p.classes))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(out), str(tmp_path / "p.npy"), json.dumps(texts)],
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(result.stdout.strip().splitlines()[-1]) == ["neg", "pos"]
    np.testing.assert_array_equal(np.load(tmp_path / "p.npy"), here)


def test_predictor_contract(trained):
    _, out = trained
    predictor = seqclf.load(out)
    assert predictor.classes == ["neg", "pos"]
    probs = predictor.predict_proba(["great", "awful", "fine"])
    assert probs.shape == (3, 2) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    labels = predictor.predict(["great", "awful", "fine"])
    assert labels == [predictor.classes[i] for i in probs.argmax(axis=1)]
    # Batch size and streaming do not change a result.
    many = ["good movie"] * 70 + ["bad movie"] * 3
    np.testing.assert_allclose(
        predictor.predict_proba(many, batch_size=7), predictor.predict_proba(many), atol=1e-6
    )


def test_a_second_run_in_the_same_directory_needs_resume(trained, imdb_slices):
    _, out = trained
    train, _ = imdb_slices
    with pytest.raises(seqclf.CheckpointError, match="pass --resume"):
        seqclf.train_text_classifier(train, out, model_options=SMALL_MODEL, progress=False)


def _interrupt_after(monkeypatch, calls: int) -> None:
    """Send SIGINT to this process during the ``calls``-th training step."""
    real_step = step_module.train_step_in_place  # train_epoch's step
    count = {"n": 0}

    def step(state, batch):
        count["n"] += 1
        if count["n"] == calls:
            os.kill(os.getpid(), signal.SIGINT)
        return real_step(state, batch)

    monkeypatch.setattr(step_module, "train_step_in_place", step)


def _params(out: Path):
    store = seqclf.checkpoint.CheckpointStore(out, create=False)
    return store.restore_params(store.latest_step())


@pytest.mark.parametrize("lazy_embedding", [False, True])
def test_interrupted_run_resumes_from_the_right_step_and_ends_identical(
    imdb_slices, tmp_path, monkeypatch, lazy_embedding
):
    # Lazy Adam catches its table up at each epoch's end and before each checkpoint: the same
    # points in both runs, so the resumed one still ends bitwise as the uninterrupted one.
    train, _ = imdb_slices
    data = train.subset(np.arange(400))
    config = seqclf.TrainConfig(
        **{**SMALL_TRAINING, "epochs": 2, "save_every": 4, "lazy_embedding": lazy_embedding}
    )
    steps_per_epoch = 12  # 360 training examples (10% held out) / 32, rounded up

    full = seqclf.train_text_classifier(
        data,
        tmp_path / "full",
        model_options=SMALL_MODEL,
        text_config=SMALL_TEXT,
        train_config=config,
        progress=False,
    )
    assert int(full.fit.state.step) == 2 * steps_per_epoch

    _interrupt_after(monkeypatch, 18)  # in epoch 2, after its checkpoint at batch 4 (step 16)
    cut = seqclf.train_text_classifier(
        data,
        tmp_path / "cut",
        model_options=SMALL_MODEL,
        text_config=SMALL_TEXT,
        train_config=config,
        progress=False,
    )
    assert cut.fit.stopped_by == "SIGINT"
    assert int(cut.fit.state.step) == 18
    assert seqclf.checkpoint.CheckpointStore(tmp_path / "cut", create=False).latest_step() == 16
    monkeypatch.undo()

    resumed = seqclf.train_text_classifier(
        data,
        tmp_path / "cut",
        model_options=SMALL_MODEL,
        text_config=SMALL_TEXT,
        train_config=config,
        resume=True,
        progress=False,
    )
    assert resumed.fit.stopped_by == "completed"
    assert int(resumed.fit.state.step) == 2 * steps_per_epoch
    assert [h["epoch"] for h in resumed.fit.history] == [1, 2]
    for a, b in zip(
        jax.tree_util.tree_leaves(_params(tmp_path / "full")),
        jax.tree_util.tree_leaves(_params(tmp_path / "cut")),
        strict=True,
    ):
        np.testing.assert_array_equal(a, b)  # bitwise on CPU


def test_macro_f1_of_a_known_confusion_matrix():
    labels = np.array([0, 0, 1, 1, 2, 2])
    preds = np.array([0, 1, 1, 1, 2, 0])
    matrix = confusion_matrix(labels, preds, 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 2, 0], [1, 0, 1]]
    # F1 per class: 0.5, 0.8, 2/3.
    assert macro_f1(matrix) == pytest.approx((0.5 + 0.8 + 2 / 3) / 3)


def test_a_model_with_two_heads_trains_each_on_its_own_loss():
    import jax.numpy as jnp
    import optax

    model = seqclf.build_classifier(
        vocab_size=40,
        hidden_size=6,
        embed_dropout=0.0,
        dropout=0.0,
        ngram_buckets=31,
        ngram_dim=4,
        nb_buckets=0,
    )
    rng = np.random.default_rng(0)
    batch = {
        "tokens": rng.integers(2, 40, size=(8, 12)).astype(np.int32),
        "lengths": np.full(8, 12, np.int32),
        "labels": rng.integers(0, 2, size=8).astype(np.int32),
        "weights": np.ones(8, np.float32),
    }
    state = training.create_train_state(model, seqclf.TrainConfig(batch_size=8), 10, batch)
    _, sown = model.apply(
        {"params": state.params}, batch["tokens"], batch["lengths"], mutable=["head_logits"]
    )
    expected = sum(
        float(optax.softmax_cross_entropy_with_integer_labels(h[0], batch["labels"]).mean())
        for h in sown["head_logits"].values()
    )
    _, metrics = step_module.train_step(state, {k: jnp.asarray(v) for k, v in batch.items()})
    np.testing.assert_allclose(float(metrics[0]), expected, rtol=1e-5)


def test_the_ngram_head_can_have_its_own_learning_rate():
    model = seqclf.build_classifier(
        vocab_size=40, hidden_size=6, embed_dropout=0.0, ngram_buckets=31, ngram_dim=4
    )
    batch = {
        "tokens": np.arange(2, 26, dtype=np.int32).reshape(2, 12),
        "lengths": np.full(2, 12, np.int32),
        "labels": np.array([0, 1], np.int32),
        "weights": np.ones(2, np.float32),
    }
    params = training.create_train_state(model, seqclf.TrainConfig(batch_size=2), 10, batch).params
    grads = jax.tree_util.tree_map(lambda p: np.ones_like(p) * 0.1, params)

    def first_updates(**options):
        # Dense Adam: these gradients are dense (lazy Adam takes row-sparse ones).
        config = seqclf.TrainConfig(
            warmup_fraction=0.0, clip_norm=0.0, lazy_embedding=False, **options
        )
        tx = training.make_optimizer(config, total_steps=10, heads=model.head_spec)
        updates, _ = tx.update(grads, tx.init(params), params)
        return updates

    same = first_updates(learning_rate=1e-3, ngram_learning_rate=0.0)
    split = first_updates(learning_rate=1e-3, ngram_learning_rate=5e-2)
    for name in params:
        factor = 50.0 if name in model.head_spec.ngram_params else 1.0
        for a, b in zip(
            jax.tree_util.tree_leaves(split[name]),
            jax.tree_util.tree_leaves(same[name]),
            strict=True,
        ):
            np.testing.assert_allclose(np.asarray(a), factor * np.asarray(b), rtol=1e-5)
    assert set(model.head_spec.ngram_params) <= set(params)
    with pytest.raises(ValueError, match="ngram_learning_rate must be >= 0"):
        seqclf.TrainConfig(ngram_learning_rate=-1.0)


def test_head_weights_are_fitted_on_validation_not_trained(tmp_path):
    import jax.numpy as jnp

    from seqclf.head_weights import fit_head_weights

    rng = np.random.default_rng(1)
    # Class 1 iff token 5 occurs: both heads can learn it; ids 2..39 otherwise.
    tokens = [rng.integers(6, 40, size=rng.integers(4, 16)).astype(np.int32) for _ in range(96)]
    labels = np.arange(96) % 2
    for x, y in zip(tokens, labels, strict=True):
        if y:
            x[rng.integers(len(x))] = 5
    model = seqclf.build_classifier(
        vocab_size=40, hidden_size=6, conv_filters=(), ngram_buckets=31, ngram_dim=4
    )
    # Weight decay would shrink a trained parameter; the head weights are left alone by it.
    config = seqclf.TrainConfig(
        epochs=2,
        batch_size=16,
        learning_rate=2e-2,
        weight_decay=0.5,
        log_every=1,
    )
    text = seqclf.TextConfig(vocab_size=40, max_len=16, num_buckets=1)
    store = seqclf.checkpoint.CheckpointStore(tmp_path)
    result = training.fit(
        model,
        (tokens[:64], labels[:64]),
        (tokens[64:], labels[64:]),
        config,
        text=text,
        store=store,
        meta={},
        progress=False,
    )
    state = result.state
    # What fit stored is the fit on the validation split's per-head log-probabilities...
    per_head = np.moveaxis(
        training.predict_probabilities(
            state, tokens[64:], config, text, step=step_module.head_log_probs_step
        ),
        1,
        0,
    )
    fitted = np.asarray(state.params["head_weights"])
    np.testing.assert_allclose(fitted, fit_head_weights(per_head, labels[64:]), rtol=1e-4)
    assert not np.allclose(fitted, 1.0)
    assert result.history[-1]["head_weights"] == [round(float(w), 4) for w in fitted]
    # ...the validation metrics are those of the weighted prediction...
    val = training.evaluate(state, tokens[64:], labels[64:], config, text, progress=False)
    assert val["accuracy"] == pytest.approx(result.history[-1]["val_accuracy"], abs=1e-6)
    # (the history keeps 6 decimals)
    assert val["loss"] == pytest.approx(result.history[-1]["val_loss"], rel=1e-4, abs=1e-6)
    # ...and a train step leaves them as they are, weight decay or not.
    batch, _ = pad_batch(
        next(evaluation.config_batches(tokens[:16], labels[:16], config, text)), 16
    )
    after, _ = step_module.train_step(state, {k: jnp.asarray(v) for k, v in batch.items()})
    np.testing.assert_array_equal(np.asarray(after.params["head_weights"]), fitted)
    # The checkpoint carries them.
    saved = store.restore_params(store.latest_step())
    np.testing.assert_array_equal(np.asarray(saved["head_weights"]), fitted)
    store.close()


def test_a_training_step_leaves_the_fitted_nbsvm_head_out():
    model = seqclf.build_classifier(vocab_size=40, hidden_size=6, nb_buckets=61)
    tokens, lengths = np.full((2, 5), 7, np.int32), np.array([5, 3], np.int32)
    params = model.init(jax.random.PRNGKey(0), tokens, lengths)["params"]
    _, evaluating = model.apply({"params": params}, tokens, lengths, mutable=["head_logits"])
    _, training = model.apply(
        {"params": params},
        tokens,
        lengths,
        train=True,
        rngs={"dropout": jax.random.PRNGKey(1)},
        mutable=["head_logits"],
    )
    assert set(evaluating["head_logits"]) == {"recurrent_head", "nbsvm_head"}
    assert set(training["head_logits"]) == {"recurrent_head"}
