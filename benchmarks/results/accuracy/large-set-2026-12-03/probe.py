"""The default recipe on a large set of short texts: IMDB reviews cut into sentences.

Each sentence of three or more words is a text and carries its review's label (so many are
not sentiment-bearing: the ceiling is well under IMDB's). Train: the sentences of the 25,000
training reviews; test: those of the 25,000 test reviews (no review is in both).

    python probe.py make RUN_DIR             # writes RUN_DIR/train.csv and RUN_DIR/test.csv
    seqclf train --train RUN_DIR/train.csv --output-dir RUN_DIR/seqclf   # the defaults
    python probe.py score RUN_DIR [METHODS]  # seqclf's test accuracy and the baselines'
"""

import csv
import re
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve()
REPO = HERE.parents[4]
sys.path.insert(0, str(REPO / "benchmarks"))

SENTENCE_END = re.compile(r"(?<=[.!?])\s+")


def make(out: Path) -> None:
    import tensorflow_datasets as tfds

    out.mkdir(parents=True, exist_ok=True)
    for split in ("train", "test"):
        data_dir = str(REPO.parent / "shared" / "tensorflow_datasets")
        source = tfds.data_source("imdb_reviews", data_dir=data_dir, split=split)
        n = 0
        with open(out / f"{split}.csv", "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["text", "label"])
            for example in source:
                review = example["text"].decode().replace("<br />", " ")
                label = "pos" if example["label"] else "neg"
                for sentence in SENTENCE_END.split(review):
                    if len(sentence.split()) >= 3:
                        writer.writerow([sentence, label])
                        n += 1
        print(split, n, "sentences")


def score(out: Path, methods: list[str]) -> None:
    import baselines
    import numpy as np

    import seqclf

    train, test = (seqclf.read_table(out / f"{s}.csv") for s in ("train", "test"))
    train_texts = list(train.texts)
    train_labels = [train.classes[i] for i in train.labels]
    test_texts = list(test.texts)
    truth = np.array([test.classes[i] for i in test.labels])
    n = len(truth)
    for method in methods:
        if method == "seqclf":
            start = time.perf_counter()
            predicted = np.array(seqclf.load(out / "seqclf").predict(test_texts))
            train_s, predict_s = float("nan"), time.perf_counter() - start
        else:
            labels, train_s, predict_s = baselines.BASELINES[method](
                train_texts, train_labels, test_texts
            )
            predicted = np.array(labels)
        acc = float(np.mean(predicted == truth))
        se = (acc * (1 - acc) / n) ** 0.5
        print(
            f"{method:10s} test {acc:.4f} ± {se:.4f} (n {n})  train {train_s:.0f} s  "
            f"predict {predict_s:.0f} s",
            flush=True,
        )


if __name__ == "__main__":
    if sys.argv[1] == "make":
        make(Path(sys.argv[2]))
    else:
        score(
            Path(sys.argv[2]),
            (sys.argv[3] if len(sys.argv) > 3 else "seqclf,fasttext,tfidf_lr,nbsvm").split(","),
        )
