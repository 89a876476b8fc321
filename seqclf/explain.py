"""Which words drove a prediction: integrated gradients over per-token weights, in every head.

For a text of n tokens, the model is run with ``token_weights`` w (one weight per token, which
scales everything the model looks up for that token: its embedding in the CNN-LSTM, its word and
bigram vectors in the fastText bag, its n-grams in the NBSVM head; ``SequenceClassifier``). At
w = 1 the model sees the text as it is; at the baseline w = 0 no token contributes. The
attribution of token t is (Sundararajan et al. 2017, "Axiomatic Attribution for Deep Networks")

    a_t = ∫₀¹ ∂f/∂w_t (α·1) dα        (trapezoid rule over ``steps`` points α = 0, 1/(S-1), ..., 1)

where f is the model's output for the target class: the value ``SequenceClassifier`` returns
for it, before the softmax that gives the probabilities. For a one-head model that is the
class logit; for a several-head model it is the weighted sum of the heads' log-probabilities,
``Σ_h w_h · log softmax(logits_h)[target]``. Completeness — Σ_t a_t = f(1) − f(0) — holds for
the exact integral; ``Explanation.completeness_error`` is |Σ_t a_t − (f(1) − f(0))| for the
trapezoid sum, which shrinks as ``steps`` grows (the model is piecewise smooth: ReLU, max
pooling, so the error falls roughly as 1/steps near kinks and 1/steps² elsewhere).

All ``steps`` points of one text run as one batch through one jit-compiled gradient (one
compilation per length bucket and number of steps).
"""

from __future__ import annotations

import dataclasses
import functools
import html
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from seqclf.data.batching import truncate

DEFAULT_STEPS = 32


@dataclasses.dataclass(frozen=True)
class Explanation:
    """Per-token attributions of one text, by integrated gradients (``seqclf.explain``).

    Attributes:
      text: the input text.
      tokens: the tokens as the model saw them: split by its vocabulary's tokenizer (lowercased)
        and truncated like the model's input (``max_len``, ``truncating``); out-of-vocabulary
        words are shown as written (the model saw them as ``<unk>``).
      attributions: float (len(tokens),): each token's share of f(text) − f(baseline), in the
        units of the model's output for ``label`` (see the module docstring); > 0 pushes towards
        ``label``.
      label: the class explained: the predicted one unless a target was given.
      probabilities: class name → predicted probability.
      completeness_error: |Σ attributions − (f(text) − f(baseline))|, the integration error.
    """

    text: str
    tokens: list[str]
    attributions: np.ndarray
    label: str
    probabilities: dict[str, float]
    completeness_error: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict with the same keys (``attributions`` as a list of floats)."""
        return {
            "text": self.text,
            "tokens": list(self.tokens),
            "attributions": [float(a) for a in self.attributions],
            "label": self.label,
            "probabilities": {k: float(v) for k, v in self.probabilities.items()},
            "completeness_error": float(self.completeness_error),
        }


def trapezoid(steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Points α (S,) evenly spaced over [0, 1] and their trapezoid-rule weights (S,), summing to 1.

    ``steps`` must be >= 2 (the two ends are always among the points)."""
    if steps < 2:
        raise ValueError(f"steps must be >= 2 (the baseline and the input), got {steps}")
    alphas = np.linspace(0.0, 1.0, steps, dtype=np.float32)
    weights = np.full(steps, 1.0 / (steps - 1), np.float32)
    weights[[0, -1]] /= 2
    return alphas, weights


@functools.lru_cache(maxsize=16)
def integrated_gradients_fn(config: Any) -> Callable[..., tuple[jax.Array, jax.Array]]:
    """A jit-compiled ``(params, tokens (T,), length (), target (), alphas (S,), weights (S,))
    -> (attributions (T,), outputs (S,))`` for the ``SequenceClassifier`` of ``config``.

    One function per configuration, shared by every predictor of it in the process, so that
    loading the same model again does not compile again.

    Row k of the batch is the text with ``token_weights = alphas[k]`` on its ``length`` tokens
    (padding keeps weight 1: a constant along the path, so it gets no attribution); ``outputs``
    is f(alphas[k]), the model's output for ``target``; attributions are the weighted sum of
    the gradients over the rows. Padding positions' attributions are 0.
    """

    from seqclf.model import build_classifier

    model = build_classifier(config)

    def outputs(params, tokens, lengths, token_weights, target):
        out = model.apply({"params": params}, tokens, lengths, token_weights=token_weights)
        return out[:, target]

    @jax.jit
    def integrated_gradients(params, tokens, length, target, alphas, weights):
        steps, width = alphas.shape[0], tokens.shape[0]
        real = jnp.arange(width) < length
        token_weights = jnp.where(real[None, :], alphas[:, None], 1.0)
        batch_tokens = jnp.broadcast_to(tokens, (steps, width))
        batch_lengths = jnp.full((steps,), length, jnp.int32)

        def total(w):
            f = outputs(params, batch_tokens, batch_lengths, w, target)
            return f.sum(), f  # rows are independent: d(sum)/d(row k) = d f_k / d row k

        grads, f = jax.grad(total, has_aux=True)(token_weights)
        attributions = jnp.where(real, weights @ grads, 0.0)
        return attributions, f

    return integrated_gradients


def explain_texts(
    predictor: Any, texts: list[str], steps: int, target: str | None
) -> list[Explanation]:
    """``Predictor.explain``: see there."""
    if target is not None and target not in predictor.classes:
        raise ValueError(f"unknown target class {target!r}; the model knows {predictor.classes}")
    alphas, weights = trapezoid(steps)
    ids = predictor.vocabulary.encode_batch(texts)  # errors name the text's position
    probabilities = predictor.predict_proba(texts) if texts else np.zeros((0, 0))
    out = []
    for text, text_ids, probs in zip(texts, ids, probabilities, strict=True):
        words = predictor.vocabulary.tokenize(
            text if isinstance(text, str) else bytes(text).decode("utf-8")
        )
        if len(words) != len(text_ids):  # the two tokenizer paths are tested to agree
            raise RuntimeError(f"tokenizer paths disagree on {text[:50]!r}")
        kept = truncate(np.arange(len(words)), predictor.max_len, predictor.truncating)
        words = [words[i] for i in kept.tolist()]
        text_ids = text_ids[kept]
        label = predictor.classes[int(np.argmax(probs))] if target is None else target
        width = next((b for b in predictor.buckets if b >= len(text_ids)), predictor.max_len)
        tokens = np.zeros(width, np.int32)
        tokens[: len(text_ids)] = text_ids
        attributions, f = predictor._integrated_gradients(
            predictor._params,
            jnp.asarray(tokens),
            jnp.int32(len(text_ids)),
            jnp.int32(predictor.classes.index(label)),
            jnp.asarray(alphas),
            jnp.asarray(weights),
        )
        attributions = np.asarray(attributions, np.float64)[: len(text_ids)]
        f = np.asarray(f, np.float64)
        error = abs(attributions.sum() - (f[-1] - f[0]))
        out.append(
            Explanation(
                text=text,
                tokens=words,
                attributions=attributions,
                label=label,
                probabilities={c: float(p) for c, p in zip(predictor.classes, probs, strict=True)},
                completeness_error=float(error),
            )
        )
    return out


def _colour(value: float, scale: float) -> str:
    """Green for attributions towards the label, red against; opacity = |value| / scale."""
    strength = min(abs(value) / scale, 1.0) if scale > 0 else 0.0
    rgb = "22, 163, 74" if value >= 0 else "220, 38, 38"
    return f"rgba({rgb}, {0.85 * strength:.3f})"


def _ink(value: float, scale: float) -> str:
    """White text on the strongest backgrounds, where black would be hard to read."""
    return "color:white;" if scale > 0 and abs(value) / scale > 0.6 else ""


def explanation_html(explanation: Explanation) -> str:
    """An HTML fragment (one ``<div>``, inline styles, no scripts): the label and the
    probabilities, then the words, each on a background green (pushes towards the label) or red
    (pushes away), as strong as its share of the largest attribution; hovering a word shows its
    attribution."""
    e = explanation
    scale = float(np.max(np.abs(e.attributions))) if len(e.attributions) else 0.0
    words = " ".join(
        f'<span title="{a:+.4f}" style="background:{_colour(a, scale)};{_ink(a, scale)}'
        f'padding:1px 3px;border-radius:3px">{html.escape(token)}</span>'
        for token, a in zip(e.tokens, e.attributions.tolist(), strict=True)
    )
    probs = ", ".join(
        f"{html.escape(name)} {p:.3f}"
        for name, p in sorted(e.probabilities.items(), key=lambda kv: -kv[1])
    )
    return (
        '<div class="seqclf-explanation" style="font-family:sans-serif;line-height:1.9;'
        'margin:1em 0">'
        f"<div><b>{html.escape(e.label)}</b> ({probs})</div>"
        f"<div>{words or '<i>(no words)</i>'}</div>"
        '<div style="font-size:smaller;color:#555">green: towards '
        f"{html.escape(e.label)}, red: against; integrated gradients, completeness error "
        f"{e.completeness_error:.2g}</div></div>"
    )
