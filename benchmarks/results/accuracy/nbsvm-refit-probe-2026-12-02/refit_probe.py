"""Would refitting seqclf's NBSVM head on all training rows (after choosing C on the 10 %
validation split) beat fitting it on the 90 % alone? Held-out accuracy on fold 0 of each
sentence set; the test fold chooses nothing.

    python benchmarks/results/accuracy/nbsvm-refit-probe-2026-12-02/refit_probe.py mr cr subj mpqa
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[3]))  # benchmarks/
import accuracy  # noqa: E402

import seqclf  # noqa: E402
from seqclf import naive_bayes, ops  # noqa: E402
from seqclf.data.preprocessing import TextConfig  # noqa: E402
from seqclf.data.sources import TextDataset, train_validation_split  # noqa: E402
from seqclf.recipe import DataProfile, default_nb_buckets, resolve_text_config  # noqa: E402


def held_out_accuracy(weights, bias, ratios, x, labels) -> float:
    return float(np.mean((x @ (ratios * weights) + bias).argmax(1) == labels))


for name in sys.argv[1:]:
    (split,) = accuracy.load_set(name, 10, 1, None).splits
    classes = sorted(set(split.train.labels))
    ids_of = np.array([classes.index(label) for label in split.train.labels])
    full = TextDataset(split.train.texts, ids_of, classes)
    train, valid = train_validation_split(full, 0.1, seed=0)  # as seqclf train splits
    vocab = seqclf.Vocabulary.build(train.texts, vocab_size=100_002)
    train_ids, valid_ids = vocab.encode_batch(train.texts), vocab.encode_batch(valid.texts)
    test_ids = vocab.encode_batch(split.test.texts)
    test_labels = np.array([classes.index(label) for label in split.test.labels])
    profile = DataProfile.of(train_ids, train.labels, len(classes))
    text, _ = resolve_text_config(TextConfig(), profile)
    buckets = default_nb_buckets(profile, text.max_len, 3)
    k = len(classes)
    head, report = naive_bayes.fit_nbsvm(
        (train_ids, train.labels), (valid_ids, valid.labels), k, buckets, 3, text
    )
    kept = float(report.split("kept C=")[1].rstrip("."))
    x_test = naive_bayes.bag_matrix(test_ids, buckets, 3, text)
    ratios = np.asarray(ops.log_count_ratios(head["counts"]), np.float64)
    on_90 = held_out_accuracy(head["weights"], head["bias"], ratios, x_test, test_labels)
    # The same C, refitted on train + validation (counts, ratios and weights).
    all_ids = list(train_ids) + list(valid_ids)
    all_labels = np.concatenate([train.labels, valid.labels]).astype(np.int64)
    x = naive_bayes.bag_matrix(all_ids, buckets, 3, text)
    counts = np.asarray(x.T @ np.eye(k, dtype=np.float32)[all_labels], np.float32)
    all_ratios = np.asarray(ops.log_count_ratios(counts, 1.0), np.float64)
    used = np.unique(x.indices)
    start = (head["weights"][used].astype(np.float64), head["bias"].astype(np.float64))
    w, b = naive_bayes._logistic_regression(x[:, used], all_labels, all_ratios[used], kept, start)
    weights = np.zeros((buckets, k))
    weights[used] = w
    on_all = held_out_accuracy(weights, b, all_ratios, x_test, test_labels)
    print(
        f"{name}: train {len(full)}, test {len(test_labels)}, buckets {buckets}, kept C={kept:g}: "
        f"fitted on 90 % {on_90:.4f}, refitted on 100 % {on_all:.4f} ({on_all - on_90:+.4f})",
        flush=True,
    )
