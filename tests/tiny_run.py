"""One tiny trained run shared by the report, export and explain tests (trained once a session).

Two-class synthetic reviews (positive and negative words among filler), a model with every part
the predictor uses: embedding, Conv1D, max pooling, LSTM, and the fastText head beside it; two
length buckets, so that anything done per bucket is done more than once.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

POSITIVE = ["great", "wonderful", "superb", "loved", "fine"]
NEGATIVE = ["awful", "boring", "terrible", "hated", "dull"]
FILLER = ["the", "film", "was", "a", "plot", "and", "actors", "it", "movie", "story"]
MAX_LEN = 24
MODEL = {
    "embed_dim": 8,
    "conv_filters": (8,),
    "conv_kernel_size": 3,
    "pool_size": 2,
    "hidden_size": 8,
    "ngram_buckets": 64,
    "ngram_dim": 8,
    "nb_buckets": 256,
    "fused": False,
}
_RUNS: dict[str, Path] = {}


def synthetic_reviews(n: int, seed: int = 0, max_words: int = 12, noise: float = 0.2):
    """``n`` labelled texts of up to ``max_words`` filler words and 1-3 sentiment words, all
    positive or all negative; the label says which, but a share ``noise`` of them is flipped."""
    import seqclf

    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for _ in range(n):
        label = int(rng.integers(2))
        words = list(rng.choice(FILLER, int(rng.integers(1, max_words))))
        for _ in range(int(rng.integers(1, 4))):
            kind = POSITIVE if label else NEGATIVE
            words.insert(int(rng.integers(len(words) + 1)), str(rng.choice(kind)))
        texts.append(" ".join(words).capitalize() + "!")
        # Some labels flipped, so that no model is sure of everything (the fitted head weights
        # stay moderate and the probabilities away from 0 and 1).
        labels.append(1 - label if rng.uniform() < noise else label)
    return seqclf.TextDataset(texts, np.array(labels), ["neg", "pos"])


def tiny_run(tmp_path_factory) -> Path:
    """The directory of the shared tiny run (trained on first use)."""
    if "run" not in _RUNS:
        import seqclf

        out = tmp_path_factory.mktemp("tiny_run")
        seqclf.train_text_classifier(
            synthetic_reviews(240),
            out,
            model_options=MODEL,
            text_config=seqclf.TextConfig(vocab_size=100, max_len=MAX_LEN, num_buckets=2),
            train_config=seqclf.TrainConfig(epochs=2, batch_size=16, learning_rate=1e-2),
            progress=False,
        )
        _RUNS["run"] = out
    return _RUNS["run"]
