"""The classical baselines of the accuracy suite: TF-IDF + LR, NBSVM, fastText.

Each baseline is ``fit_predict(train_texts, train_labels, test_texts) -> (predictions, train_s,
predict_s)``: it sees the training rows only (hyperparameters chosen by cross-validation inside
them) and returns one predicted label name per test text.

All three read a text the same way: lowercased, words (``\\w+``) and single punctuation marks as
tokens (``TOKEN_PATTERN``), so none is handicapped by its tokenizer.
"""

from __future__ import annotations

import os
import re
import tempfile
import time
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV, StratifiedKFold
from sklearn.multiclass import OneVsRestClassifier

TOKEN_PATTERN = r"(?u)\w+|[^\w\s]"
_TOKEN = re.compile(TOKEN_PATTERN)
# TF-IDF + LR: C over a log grid, chosen by INNER_FOLDS-fold cross-validation on the training rows.
CS = (0.1, 1.0, 10.0, 100.0, 1000.0)
INNER_FOLDS = 5
SEED = 0
# NBSVM features scaled by r are not normalized: their C grid sits lower.
NB_CS = (0.01, 0.1, 1.0, 10.0, 100.0)
NBSVM_ALPHA = 1.0


def _inner_cv(labels: np.ndarray) -> StratifiedKFold:
    """Stratified inner folds, fewer where the smallest class has fewer than INNER_FOLDS rows."""
    smallest = int(np.unique(labels, return_counts=True)[1].min())
    return StratifiedKFold(max(2, min(INNER_FOLDS, smallest)), shuffle=True, random_state=SEED)


def _one_vs_rest(model: BaseEstimator, num_classes: int) -> BaseEstimator:
    # liblinear (the fast solver for sparse, wide problems) fits binary problems only.
    return model if num_classes == 2 else OneVsRestClassifier(model)


# ---------------------------------------------------------------------------------------------
# TF-IDF (1-2-grams) + logistic regression
# ---------------------------------------------------------------------------------------------


def tfidf_lr(
    train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str]
) -> tuple[list[str], float, float]:
    """TF-IDF of word 1-2-grams (sublinear tf) + L2 logistic regression, C by inner CV.

    The vocabulary and IDF are fitted on all training rows (no labels involved); C is chosen
    from ``CS`` by stratified ``INNER_FOLDS``-fold CV on them; one-vs-rest for > 2 classes.
    """
    start = time.perf_counter()
    vectorizer = TfidfVectorizer(
        ngram_range=(1, 2), token_pattern=TOKEN_PATTERN, sublinear_tf=True, dtype=np.float32
    )
    x = vectorizer.fit_transform(train_texts)
    y = np.asarray(train_labels)
    num_classes = len(set(y.tolist()))
    # dual=True: same solution as the primal, ~8x faster here where features outnumber rows.
    lr = LogisticRegression(solver="liblinear", dual=True, max_iter=10000)
    key = "C" if num_classes == 2 else "estimator__C"
    search = GridSearchCV(
        _one_vs_rest(lr, num_classes), {key: list(CS)}, cv=_inner_cv(y), scoring="accuracy"
    )
    search.fit(x, y)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    predictions = search.predict(vectorizer.transform(test_texts)).tolist()
    return predictions, train_s, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# NBSVM (Wang & Manning 2012), logistic regression as its linear classifier
# ---------------------------------------------------------------------------------------------


def nb_log_count_ratio(x: sp.spmatrix, positive: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """The NB log-count ratio r = log((p / |p|_1) / (q / |q|_1)).

    p = alpha + sum of the rows of the positive class, q = alpha + sum of the other rows.

    Args:
      x: (N, F) feature counts (binarized for NBSVM).
      positive: bool (N,), the rows of the positive class.
      alpha: smoothing.

    Returns:
      float64 (F,).

    References:
      Wang & Manning 2012, "Baselines and Bigrams: Simple, Good Sentiment and Topic
      Classification", section 2.1.
    """
    positive = np.asarray(positive, dtype=bool)
    p = alpha + np.asarray(x[positive].sum(axis=0), dtype=np.float64).ravel()
    q = alpha + np.asarray(x[~positive].sum(axis=0), dtype=np.float64).ravel()
    return np.log(p / p.sum()) - np.log(q / q.sum())


class NBLogisticRegression(ClassifierMixin, BaseEstimator):
    """NBSVM's features with an L2 logistic regression on r ∘ x; one-vs-rest for > 2 classes.

    Fitting computes r from the rows it is given, so in a cross-validation each inner fold has
    its own r and no inner validation label leaks into the features it is scored on.
    """

    def __init__(self, C: float = 1.0, alpha: float = NBSVM_ALPHA):
        self.C = C
        self.alpha = alpha

    def fit(self, x: sp.spmatrix, y: np.ndarray) -> NBLogisticRegression:
        y = np.asarray(y)
        self.classes_ = np.unique(y)
        # Two classes: one problem, classes_[1] against classes_[0]; more: one per class.
        targets = self.classes_[1:] if len(self.classes_) == 2 else self.classes_
        self.ratios_, self.models_ = [], []
        for c in targets:
            r = nb_log_count_ratio(x, y == c, self.alpha)
            lr = LogisticRegression(C=self.C, solver="liblinear", dual=True, max_iter=10000)
            self.models_.append(lr.fit(x @ sp.diags(r), y == c))
            self.ratios_.append(r)
        return self

    def decision_function(self, x: sp.spmatrix) -> np.ndarray:
        """(N,) for 2 classes, else (N, C): the margin of each one-vs-rest problem."""
        scores = np.stack(
            [
                m.decision_function(x @ sp.diags(r))
                for r, m in zip(self.ratios_, self.models_, strict=True)
            ],
            1,
        )
        return scores[:, 0] if len(self.classes_) == 2 else scores

    def predict(self, x: sp.spmatrix) -> np.ndarray:
        scores = self.decision_function(x)
        if scores.ndim == 1:
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[scores.argmax(axis=1)]


def nbsvm(
    train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str]
) -> tuple[list[str], float, float]:
    """Binarized word 1-3-gram counts scaled by r (alpha = 1) + logistic regression, C by CV."""
    start = time.perf_counter()
    vectorizer = CountVectorizer(
        ngram_range=(1, 3), token_pattern=TOKEN_PATTERN, binary=True, dtype=np.float32
    )
    x = vectorizer.fit_transform(train_texts).tocsr()
    y = np.asarray(train_labels)
    search = GridSearchCV(
        NBLogisticRegression(), {"C": list(NB_CS)}, cv=_inner_cv(y), scoring="accuracy"
    )
    search.fit(x, y)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    predictions = search.predict(vectorizer.transform(test_texts).tocsr()).tolist()
    return predictions, train_s, time.perf_counter() - start


# ---------------------------------------------------------------------------------------------
# fastText
# ---------------------------------------------------------------------------------------------

_LABEL = "__label__"


def fasttext_line(text: str) -> str:
    """One text as fastText reads it: the suite's tokens, space-separated, on one line."""
    return " ".join(_TOKEN.findall(text.lower()))


def fasttext_bigrams(
    train_texts: Sequence[str], train_labels: Sequence[str], test_texts: Sequence[str]
) -> tuple[list[str], float, float]:
    """``fasttext.train_supervised`` with its defaults and ``wordNgrams=2``.

    Labels are written as indices (``__label__3``) so that any label name survives fastText's
    whitespace tokenization.
    """
    import fasttext

    names = sorted(set(train_labels))
    index = {name: i for i, name in enumerate(names)}
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "train.txt")
        with open(path, "w", encoding="utf-8") as f:
            for text, label in zip(train_texts, train_labels, strict=True):
                f.write(f"{_LABEL}{index[label]} {fasttext_line(text)}\n")
        model = fasttext.train_supervised(input=path, wordNgrams=2, verbose=0)
    train_s = time.perf_counter() - start
    start = time.perf_counter()
    # fasttext-wheel 0.9.2's predict(str) calls np.array(..., copy=False), which numpy 2 refuses;
    # predict(list) goes through the C++ multilinePredict and returns plain lists.
    labels, _ = model.predict([fasttext_line(t) for t in test_texts], k=1)
    predictions = [names[int(top[0][len(_LABEL) :])] if top else names[0] for top in labels]
    return predictions, train_s, time.perf_counter() - start


BASELINES = {"tfidf_lr": tfidf_lr, "nbsvm": nbsvm, "fasttext": fasttext_bigrams}
