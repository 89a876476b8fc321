"""Integrated-gradients explanations: completeness, shapes, HTML and ``seqclf explain``."""

from __future__ import annotations

import functools
import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from tiny_run import MAX_LEN, tiny_run

import seqclf
from seqclf.cli import main
from seqclf.explain import Explanation, explanation_html, trapezoid
from seqclf.model import build_classifier

TEXTS = [
    "",
    "Great!",
    "The film was great, and the plot fine.",
    "the movie was boring but the actors were superb " * 4,  # > max_len: truncated
]


@pytest.fixture(scope="module")
def predictor(tmp_path_factory):
    return seqclf.load(tiny_run(tmp_path_factory))


@pytest.fixture(scope="module")
def explanations(predictor):
    return predictor.explain(TEXTS)  # steps=32, the predicted class


def _output(predictor, text_ids, target, weight):
    """f(weight · 1): the model's output for ``target`` with every token weighted by ``weight``,
    computed here independently of seqclf.explain (a batch of one, padded to max_len, the
    padding weighted like the tokens: it must not matter)."""
    tokens = jnp.zeros((1, MAX_LEN), jnp.int32).at[0, : len(text_ids)].set(text_ids)
    weights = jnp.full(tokens.shape, weight, jnp.float32)
    out = _apply(predictor.config)(predictor._params, tokens, jnp.array([len(text_ids)]), weights)
    return float(out[0, target])


@functools.cache
def _apply(config):
    model = build_classifier(config)
    return jax.jit(lambda p, t, n, w: model.apply({"params": p}, t, n, token_weights=w))


def test_attributions_sum_to_the_output_difference_from_the_baseline(predictor, explanations):
    for e in explanations[1:]:
        ids = predictor.vocabulary.encode(e.text)[-MAX_LEN:]  # truncating "pre" keeps the end
        target = predictor.classes.index(e.label)
        delta = _output(predictor, ids, target, 1.0) - _output(predictor, ids, target, 0.0)
        gap = abs(e.attributions.sum() - delta)
        # The stated tolerance at 32 steps: 1e-3 + 2 % of the attributions' total size.
        assert gap <= 1e-3 + 0.02 * np.abs(e.attributions).sum()
        assert e.completeness_error == pytest.approx(gap, abs=1e-4)
        assert np.abs(e.attributions).max() > 10 * gap  # the check is not trivially met


def test_more_steps_integrate_more_exactly(predictor, explanations):
    coarse = predictor.explain(TEXTS[2], steps=2)[0]
    fine = explanations[2]
    assert fine.completeness_error < coarse.completeness_error
    assert coarse.tokens == fine.tokens and coarse.label == fine.label


def test_explanations_describe_what_the_model_saw(predictor, explanations):
    probs = predictor.predict_proba(TEXTS[1:])
    empty, great, sentence, long = explanations
    assert empty.tokens == [] and empty.attributions.shape == (0,)
    assert empty.completeness_error == 0.0  # nothing to attribute, f(text) = f(baseline)
    assert great.tokens == ["great", "!"]
    assert sentence.tokens == [
        "the", "film", "was", "great", ",", "and", "the", "plot", "fine", ".",
    ]  # fmt: skip
    assert len(long.tokens) == MAX_LEN and long.tokens[-1] == "superb"
    for e, p in zip(explanations[1:], probs, strict=True):
        assert isinstance(e, Explanation) and e.attributions.shape == (len(e.tokens),)
        assert list(e.probabilities) == predictor.classes
        np.testing.assert_allclose(list(e.probabilities.values()), p, rtol=1e-6)
        assert e.label == predictor.classes[int(p.argmax())]
    d = json.loads(json.dumps(sentence.to_dict()))
    assert d["tokens"] == sentence.tokens and len(d["attributions"]) == 10
    assert set(d) == {
        "text",
        "tokens",
        "attributions",
        "label",
        "probabilities",
        "completeness_error",
    }


def test_a_given_target_is_explained(predictor, explanations):
    other = next(c for c in predictor.classes if c != explanations[2].label)
    (e,) = predictor.explain([TEXTS[2]], target=other)
    assert e.label == other and e.completeness_error < 1e-2
    assert not np.allclose(e.attributions, explanations[2].attributions)
    with pytest.raises(ValueError, match="unknown target class 'nope'"):
        predictor.explain("good", target="nope")
    with pytest.raises(ValueError, match="steps must be >= 2"):
        predictor.explain("good", steps=1)


def test_trapezoid_weights():
    alphas, weights = trapezoid(5)
    np.testing.assert_allclose(alphas, [0, 0.25, 0.5, 0.75, 1])
    np.testing.assert_allclose(weights, [0.125, 0.25, 0.25, 0.25, 0.125])
    assert weights @ alphas**2 == pytest.approx(1 / 3 + 1 / 96)  # the rule's known error on α²


def test_html_colours_each_word_by_its_attribution():
    e = Explanation(
        text="Good <b>bad</b>",
        tokens=["good", "<b>", "bad"],
        attributions=np.array([0.5, 0.0, -0.25]),
        label="pos",
        probabilities={"neg": 0.2, "pos": 0.8},
        completeness_error=1e-4,
    )
    page = explanation_html(e)
    assert page.count("<span") == 3 and "&lt;b&gt;" in page and "<b>bad" not in page
    assert "rgba(22, 163, 74, 0.850)" in page  # the largest, towards the label: full green
    assert "rgba(220, 38, 38, 0.425)" in page  # half as large, against it: half red
    assert "<b>pos</b> (pos 0.800, neg 0.200)" in page


def test_cli_explain_prints_and_writes_html(predictor, tmp_path, capsys, tmp_path_factory):
    run = tiny_run(tmp_path_factory)
    page = tmp_path / "why.html"
    assert (
        main(["explain", str(run), "The film was great, and the plot fine.", "--html", str(page)])
        == 0
    )
    out = capsys.readouterr().out
    assert "great" in out and "completeness error" in out
    text = page.read_text()
    assert text.startswith("<!doctype html>") and text.count("<span") == 10
    assert main(["explain", str(run), "good", "--target", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("seqclf explain: error: unknown target class") and "Traceback" not in err
