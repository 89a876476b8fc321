"""Which of the NBSVM head's differences from scikit-learn's NBSVM costs IMDB accuracy?

Validation only (never the test split): the IMDB training split is cut 90 / 10 by a seeded
permutation; each variant fits NBSVM-LR (binarized 1-3-grams of seqclf's tokens, NB log-count
ratios, L2 logistic regression, C in (0.1, 1, 10) as the head) on the 90 % and is scored on the
10 %. Variants: exact n-grams or hashed into 2^22 / 2^24 / 2^25 buckets; the whole text or its
last 600 tokens (the recipe's max_len on IMDB).

    python probe.py > probe.txt
"""

import sys
import time

import numpy as np
import scipy.sparse
import tensorflow_datasets as tfds
from sklearn.feature_extraction import FeatureHasher
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression

from seqclf.data.text import tokenize

DATA_DIR = sys.argv[1] if len(sys.argv) > 1 else "../shared/tensorflow_datasets"
MAX_LEN = 600
STRENGTHS = (0.1, 1.0, 10.0)


def ngrams(tokens: list[str]) -> list[str]:
    grams = list(tokens)
    grams += [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]
    triples = zip(tokens, tokens[1:], tokens[2:], strict=False)
    grams += [a + " " + b + " " + c for a, b, c in triples]
    return grams


def nbsvm(x_train, y_train, x_val, y_val) -> tuple[float, float]:
    x_train = (x_train > 0).astype(np.float32)
    x_val = (x_val > 0).astype(np.float32)
    p = 1.0 + np.asarray(x_train[y_train == 1].sum(0)).ravel()
    q = 1.0 + np.asarray(x_train[y_train == 0].sum(0)).ravel()
    r = np.log(p / p.sum()) - np.log(q / q.sum())
    scale = scipy.sparse.diags(r.astype(np.float32))
    best = (0.0, 0.0)
    for c in STRENGTHS:
        lr = LogisticRegression(C=c, max_iter=300, solver="liblinear")
        lr.fit(x_train @ scale, y_train)
        best = max(best, (float((lr.predict(x_val @ scale) == y_val).mean()), c))
    return best


def main() -> None:
    source = tfds.data_source("imdb_reviews", split="train", data_dir=DATA_DIR)
    texts = [r["text"].decode("utf-8") for r in source]
    labels = np.array([int(r["label"]) for r in source])
    order = np.random.default_rng(0).permutation(len(texts))
    cut = int(0.9 * len(texts))
    train, val = order[:cut], order[cut:]
    tokens = [tokenize(t) for t in texts]
    print(f"IMDB train {len(texts)} texts -> fit {len(train)}, validation {len(val)}")
    for window in (None, MAX_LEN):
        grams = [ngrams(t if window is None else t[-window:]) for t in tokens]
        name = "whole text" if window is None else f"last {window} tokens"
        start = time.time()
        counts = CountVectorizer(analyzer=lambda g: g, binary=True)
        x = counts.fit_transform([grams[i] for i in train])
        xv = counts.transform([grams[i] for i in val])
        acc, c = nbsvm(x, labels[train], xv, labels[val])
        print(
            f"{name:18s} exact ({x.shape[1]:,} n-grams)  val {acc:.4f}  C={c}"
            f"  {time.time() - start:.0f} s",
            flush=True,
        )
        for bits in (22, 24, 25):
            start = time.time()
            hasher = FeatureHasher(2**bits, input_type="string", alternate_sign=False)
            x = hasher.transform([grams[i] for i in train]).tocsr()
            xv = hasher.transform([grams[i] for i in val]).tocsr()
            used = int((np.asarray(x.sum(0)).ravel() > 0).sum())
            acc, c = nbsvm(x, labels[train], xv, labels[val])
            print(
                f"{name:18s} 2^{bits} buckets ({used:,} used)  val {acc:.4f}  C={c}"
                f"  {time.time() - start:.0f} s",
                flush=True,
            )


if __name__ == "__main__":
    main()
