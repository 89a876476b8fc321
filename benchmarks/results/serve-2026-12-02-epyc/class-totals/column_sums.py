# ruff: noqa  (a lab script, kept as it was run)
import time

import jax
import jax.numpy as jnp
import numpy as np

G, C = 2**22, 2
counts = jnp.asarray(np.random.default_rng(0).integers(0, 5, (G, C)).astype(np.float32))
fns = {
    "sum(axis=0)": jax.jit(lambda c: c.sum(axis=0)),
    "ones @ counts": jax.jit(lambda c: jnp.ones((c.shape[0],), c.dtype) @ c),
    "reshape 2-stage": jax.jit(lambda c: c.reshape(-1, 4096, c.shape[1]).sum(axis=1).sum(axis=0)),
    "transpose sum": jax.jit(lambda c: c.T.sum(axis=1)),
    "flat stride": jax.jit(
        lambda c: c.reshape(-1, 512 * c.shape[1]).sum(axis=0).reshape(512, c.shape[1]).sum(0)
    ),
}
ref = np.asarray(counts, np.float64).sum(0)
for k, f in fns.items():
    out = np.asarray(f(counts))
    print(k, out, abs(out - ref).max())
ts = {k: [] for k in fns}
for _ in range(21):
    for k, f in fns.items():
        t = time.perf_counter()
        jax.block_until_ready(f(counts))
        ts[k].append(time.perf_counter() - t)
print({k: f"{np.median(v) * 1e3:.2f} ms" for k, v in ts.items()})
