"""Lazy against dense embedding updates over the same folds: pooled accuracy and paired folds.

python compare.py DENSE/accuracy.csv LAZY/accuracy.csv [--imdb DENSE_IMDB.csv]
"""

from __future__ import annotations

import csv
import math
import sys
from collections import defaultdict


def rows(path: str) -> dict[tuple[str, str], dict[str, float]]:
    """(set, fold) -> {correct, n, train_s} of the seqclf rows."""
    out = {}
    with open(path, newline="") as f:
        for r in csv.DictReader(f):
            if r["method"] == "seqclf" and not r["error"]:
                out[(r["set"], r["fold"])] = {
                    "correct": int(r["correct"]),
                    "n": int(r["n_test"]),
                    "train_s": float(r["train_seconds"]),
                }
    return out


def main(dense_paths: list[str], lazy_path: str) -> None:
    dense = {}
    for p in dense_paths:
        dense.update(rows(p))
    lazy = rows(lazy_path)
    by_set = defaultdict(list)
    for key in sorted(set(dense) & set(lazy)):
        by_set[key[0]].append(key)
    print(
        "| set | folds | n | dense | lazy | lazy − dense | folds lazy better / worse / tied "
        "| SE of the paired difference | train s, dense / lazy |"
    )
    print("| --- | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: |")
    for name, keys in by_set.items():
        n = sum(dense[k]["n"] for k in keys)
        d = sum(dense[k]["correct"] for k in keys) / n
        z = sum(lazy[k]["correct"] for k in keys) / n
        diffs = [(lazy[k]["correct"] - dense[k]["correct"]) / dense[k]["n"] for k in keys]
        better = sum(x > 0 for x in diffs)
        worse = sum(x < 0 for x in diffs)
        if len(diffs) > 1:
            mean = sum(diffs) / len(diffs)
            var = sum((x - mean) ** 2 for x in diffs) / (len(diffs) - 1)
            se = f"{math.sqrt(var / len(diffs)):.4f}"
        else:
            se = "–"
        ts = (sum(dense[k]["train_s"] for k in keys), sum(lazy[k]["train_s"] for k in keys))
        print(
            f"| {name} | {len(keys)} | {n} | {d:.4f} | {z:.4f} | {z - d:+.4f} | "
            f"{better} / {worse} / {len(keys) - better - worse} | {se} | "
            f"{ts[0]:.0f} / {ts[1]:.0f} |"
        )


if __name__ == "__main__":
    main(sys.argv[1:-1], sys.argv[-1])
