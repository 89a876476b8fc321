# ruff: noqa  (a lab script, kept as it was run)
import time

import jax
import jax.numpy as jnp
import numpy as np

import seqclf
from seqclf import ops

p = seqclf.load("/work/main-check/runs/imdb")
cfg = p.config
P = p._params["nb_head"]
G = cfg.nb_buckets
rng = np.random.default_rng(0)


def make(variant):
    @jax.jit
    def f(P, tokens, lengths, totals, table):
        ids, first = ops.distinct_ngram_ids(tokens, lengths, 3, G)
        present = first.astype(jnp.float32)
        ids = jnp.minimum(ids, G - 1)
        if variant == "now":
            r = ops.selected_log_count_ratios(P["counts"][ids], P["counts"].sum(axis=0), G)
            ev = r * P["weights"][ids]
        elif variant == "totals given":
            r = ops.selected_log_count_ratios(P["counts"][ids], totals, G)
            ev = r * P["weights"][ids]
        elif variant == "ids only":
            return present.sum(1, keepdims=True) + ids[:, :2].astype(jnp.float32)
        else:  # one (G, C) table r * w
            ev = table[ids]
        return P["bias"] + jnp.einsum("bk,bkc->bc", present, ev)

    return f


totals = P["counts"].sum(axis=0)
table = ops.log_count_ratios(P["counts"]) * P["weights"]
for T in (152, 600):
    tokens = jnp.asarray(rng.integers(2, 20000, (64, T)), jnp.int32)
    lengths = jnp.full((64,), T, jnp.int32)
    fns = {k: make(k) for k in ("now", "totals given", "table", "ids only")}
    ref = np.asarray(fns["now"](P, tokens, lengths, totals, table))
    for k, f in fns.items():
        out = np.asarray(f(P, tokens, lengths, totals, table))
        if k != "ids only":
            assert np.allclose(out, ref, rtol=1e-4, atol=1e-4), k
    ts = {k: [] for k in fns}
    for _ in range(21):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f(P, tokens, lengths, totals, table))
            ts[k].append(time.perf_counter() - t)
    print(T, {k: f"{np.median(v) * 1e3:.2f} ms" for k, v in ts.items()}, flush=True)
