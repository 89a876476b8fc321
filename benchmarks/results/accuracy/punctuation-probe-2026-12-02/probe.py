"""Would punctuation tokens help the NBSVM head? (issue 17) Validation only, never a test split.

seqclf's tokenizer drops punctuation; the suite's scikit-learn NBSVM keeps each mark as a token
(``\\w+|[^\\w\\s]``) and beats the head on IMDB's test split (0.9174 vs 0.9133). This fits
NBSVM-LR (binarized exact 1-3-grams, NB log-count ratios, liblinear L2 LR, C in 0.1 / 1 / 10 as
the head) on three tokenizations of the same standardized text:

  words        seqclf's tokens (``seqclf.data.text.tokenize``)
  words+marks  the same, plus every punctuation character as a token of its own
  words+runs   the same, plus every run of punctuation (``!!!``, ``...``, ``:)``) as one token

Rows scored: IMDB, its training split cut 90 / 10 by a seeded permutation; MR, Subj, CR, MPQA,
5-fold CV inside the training rows of the suite's fold 0 (``benchmarks/accuracy.py``'s split),
so no held-out row of the suite is looked at. Printed: accuracy for each C, pooled over the folds.

    python probe.py [DATA_DIR] > probe.txt
"""

import re
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse
from sklearn.feature_extraction.text import CountVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/, for the suite's split
from accuracy import load_set  # noqa: E402

from seqclf.data.text import _strip_apostrophes, standardize, tokenize  # noqa: E402

DATA_DIR = sys.argv[1] if len(sys.argv) > 1 else "../shared/tensorflow_datasets"
STRENGTHS = (0.1, 1.0, 10.0)
_MARKS = re.compile(r"[^\W_]+|[^\w\s]")
_RUNS = re.compile(r"[^\W_]+|[^\w\s]+")
TOKENIZERS = {
    "words": tokenize,
    "words+marks": lambda t: _MARKS.findall(_strip_apostrophes(standardize(t))),
    "words+runs": lambda t: _RUNS.findall(_strip_apostrophes(standardize(t))),
}


def ngrams(tokens: list[str]) -> list[str]:
    grams = list(tokens)
    grams += [a + " " + b for a, b in zip(tokens, tokens[1:], strict=False)]
    triples = zip(tokens, tokens[1:], tokens[2:], strict=False)
    grams += [a + " " + b + " " + c for a, b, c in triples]
    return grams


def correct_per_c(grams, y, train, val) -> np.ndarray:
    """(len(STRENGTHS),) number of validation rows right for each C."""
    counts = CountVectorizer(analyzer=lambda g: g, binary=True, dtype=np.float32)
    x = counts.fit_transform([grams[i] for i in train])
    xv = counts.transform([grams[i] for i in val])
    yt = y[train]
    p = 1.0 + np.asarray(x[yt == 1].sum(0)).ravel()
    q = 1.0 + np.asarray(x[yt == 0].sum(0)).ravel()
    scale = scipy.sparse.diags((np.log(p / p.sum()) - np.log(q / q.sum())).astype(np.float32))
    right = []
    for c in STRENGTHS:
        lr = LogisticRegression(C=c, max_iter=1000, solver="liblinear").fit(x @ scale, yt)
        right.append(int((lr.predict(xv @ scale) == y[val]).sum()))
    return np.array(right)


def main() -> None:
    for name in ("cr", "mpqa", "subj", "mr", "imdb"):
        ds = load_set(name, 10, 1, DATA_DIR)
        rows = ds.splits[0].train
        classes = sorted(set(rows.labels))
        y = np.array([classes.index(label) for label in rows.labels])
        if name == "imdb":
            order = np.random.default_rng(0).permutation(len(y))
            cut = int(0.9 * len(y))
            pairs = [(order[:cut], order[cut:])]
        else:
            pairs = list(StratifiedKFold(5, shuffle=True, random_state=0).split(y, y))
        n = sum(len(v) for _, v in pairs)
        print(f"{name}: {len(y)} training rows of fold 0, {len(pairs)} validation cut(s), n={n}")
        for tok_name, tok in TOKENIZERS.items():
            start = time.time()
            grams = [ngrams(tok(t)) for t in rows.texts]
            right = sum(correct_per_c(grams, y, tr, va) for tr, va in pairs)
            accs = "  ".join(f"C={c:g} {r / n:.4f}" for c, r in zip(STRENGTHS, right, strict=True))
            seconds = time.time() - start
            best = right.max() / n
            print(f"  {tok_name:12s} {accs}  best {best:.4f}  {seconds:.0f} s", flush=True)


if __name__ == "__main__":
    main()
