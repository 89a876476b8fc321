"""The NBSVM head's logistic regression for two classes: multinomial (G, 2) unknowns against the
binary (G,) parametrisation of the same problem (seqclf.naive_bayes), on one training split.

    python compare.py FILE.csv [ROWS]

Fits the head's features as ``seqclf train`` would (the recipe's settings for the file's first
ROWS texts, 10 % of them held out), then, for each C of ``naive_bayes.STRENGTHS`` warm-started
in turn, times both fits and compares their validation logits and accuracies.
"""

import sys
import time

import numpy as np

import seqclf
from seqclf import naive_bayes, ops, recipe
from seqclf.data.preprocessing import TextConfig

data = seqclf.read_table(sys.argv[1])
rows = int(sys.argv[2]) if len(sys.argv) > 2 else len(data.texts)
texts, labels = list(data.texts[:rows]), np.asarray(data.labels[:rows])
vocab = seqclf.Vocabulary.build(texts)
ids = vocab.encode_batch(texts)
profile = recipe.DataProfile.of(ids, labels, len(data.classes))
max_len = recipe.default_max_len(profile)
buckets = recipe.default_nb_buckets(profile, max_len, 3)
text = TextConfig(max_len=max_len, num_buckets=recipe.default_num_buckets(max_len))
order = np.random.default_rng(0).permutation(len(ids))
cut = len(ids) // 10
valid, train = order[:cut], order[cut:]
x = naive_bayes.bag_matrix([ids[i] for i in train], buckets, 3, text)
x_valid = naive_bayes.bag_matrix([ids[i] for i in valid], buckets, 3, text)
y, y_valid = labels[train], labels[valid]
counts = np.asarray(x.T @ np.eye(2, dtype=np.float32)[y], np.float32)
ratios = np.asarray(ops.log_count_ratios(counts), np.float64)
used = np.unique(x.indices)
x, x_valid, ratios = x[:, used], x_valid[:, used], ratios[used]
print(
    f"{sys.argv[1]}: {len(train)} train, {len(valid)} validation texts, max_len {max_len}, "
    f"{buckets} buckets, {used.size} used"
)
fits = {
    "multinomial": naive_bayes._multinomial_logistic_regression,
    "binary": naive_bayes._binary_logistic_regression,
}
starts = {name: (np.zeros(ratios.shape), np.zeros(2)) for name in fits}
for strength in naive_bayes.STRENGTHS:
    logits = {}
    for name, fit in fits.items():
        t = time.perf_counter()
        starts[name] = fit(x, y, ratios, strength, starts[name])
        seconds = time.perf_counter() - t
        logits[name] = x_valid @ (ratios * starts[name][0]) + starts[name][1]
        accuracy = np.mean(logits[name].argmax(1) == y_valid)
        print(f"C={strength:g} {name:12s} {seconds:6.1f} s  validation accuracy {accuracy:.4f}")
    margin = {k: v[:, 1] - v[:, 0] for k, v in logits.items()}
    differ = np.mean((margin["binary"] > 0) != (margin["multinomial"] > 0))
    gap = np.abs(margin["binary"] - margin["multinomial"]).max()
    print(f"C={strength:g} predictions that differ {differ:.5f}, largest margin gap {gap:.2e}")
