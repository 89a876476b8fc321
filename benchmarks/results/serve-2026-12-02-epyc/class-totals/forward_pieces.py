# ruff: noqa  (a lab script, kept as it was run)
"""Time the default IMDB model's forward at (64, 600): whole, and its pieces via jax.jit of sub-apps."""

import time

import jax
import jax.numpy as jnp
import numpy as np

import seqclf
from seqclf.layers import NaiveBayesBag

p = seqclf.load("/work/main-check/runs/imdb")
cfg = p.config
rng = np.random.default_rng(0)
for T in (152, 600):
    tokens = jnp.asarray(rng.integers(2, 20000, (64, T)), jnp.int32)
    lengths = jnp.full((64,), T, jnp.int32)
    nb = NaiveBayesBag(cfg.nb_buckets, cfg.num_classes, cfg.nb_ngrams)
    nbp = p._params["nbsvm_head"] if "nbsvm_head" in p._params else None
    keys = list(p._params)
    nb_key = [k for k in keys if "nb" in k.lower() or "bayes" in k.lower()]
    f_all = lambda: p._forward(p._params, tokens, lengths)
    f_nb = jax.jit(lambda params: nb.apply({"params": params}, tokens, lengths, None))
    f_rec = lambda: p._head_forward(p._params, tokens, lengths, "recurrent_head")
    fns = {"whole forward": f_all, "NBSVM head alone": lambda: f_nb(p._params[nb_key[0]])}
    for f in fns.values():
        jax.block_until_ready(f())
    ts = {k: [] for k in fns}
    for _ in range(15):
        for k, f in fns.items():
            t = time.perf_counter()
            jax.block_until_ready(f())
            ts[k].append(time.perf_counter() - t)
    print(T, nb_key, {k: f"{np.median(v) * 1e3:.1f} ms" for k, v in ts.items()})
