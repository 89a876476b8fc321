"""One script for a GPU machine: check seqclf on the GPU, then benchmark it there.

(a) Correctness: outputs, final states and gradients (w.r.t. weights, inputs and initial state) of
    ``seqclf.ops.*_reference`` (the scans) and ``seqclf.ops.lstm`` / ``gru`` / ``simple_rnn``
    (the fast custom VJP), for LSTM, GRU and simple RNN, with padded lengths (including 0 and 1)
    and reverse, computed on the GPU in float32 and compared with the same reference computed on
    the CPU in float64. Also checks ``jax.experimental.rnn.lstm`` (cuDNN) outputs and input
    gradients against it. Prints PASS/FAIL per case.
(b) Speed: ``rnn_speed.py --device gpu --quick`` (the issue's shapes, batch 64 / length 512 /
    hidden 512 included; float32, plus TF32 and bf16 rows at that shape) for LSTM, then GRU and
    simple RNN, within a time budget (``--budget-s``, default 150 s), writing
    rnn_speed.csv/.md/.png into ``--out``. The whole script should take about 5 minutes on an H100.

    PYTHONUNBUFFERED=1 python benchmarks/gpu_check.py --out "$OUT"
    python benchmarks/gpu_check.py --dry-run --out /tmp/gpu_check   # the same flow on the CPU

Needs no pip install of seqclf (the repository root goes on sys.path) and no network.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import traceback
from pathlib import Path

os.environ.setdefault("PYTHONUNBUFFERED", "1")
HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

import numpy as np  # noqa: E402


def log(msg: str) -> None:
    print(msg, flush=True)


def _relative_error(actual, expected) -> float:
    """max |a - e| / max(1, max |e|) over every leaf."""
    import jax

    worst = 0.0
    for a, e in zip(
        jax.tree_util.tree_leaves(actual), jax.tree_util.tree_leaves(expected), strict=True
    ):
        a, e = np.asarray(a, np.float64), np.asarray(e, np.float64)
        if a.shape != e.shape:
            return float("inf")
        scale = max(1.0, float(np.max(np.abs(e)))) if e.size else 1.0
        worst = max(worst, float(np.max(np.abs(a - e))) / scale if e.size else 0.0)
    return worst


def check_correctness(device: str, tol: float = 2e-4) -> bool:
    """Part (a). Returns True when every case passes."""
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    cpu = jax.devices("cpu")[0]
    dev = jax.devices(device)[0]
    batch, steps, features, hidden = 6, 37, 16, 32
    rng = np.random.default_rng(0)
    xs = rng.normal(size=(batch, steps, features))
    lengths = np.array([37, 0, 1, 20, 36, 5], np.int32)
    impls = {"seqclf-scan": True, "seqclf-fused": False}  # name -> reference
    all_ok = True

    for kind in ("rnn", "lstm", "gru"):
        g = ops.GATES[kind] * hidden
        bound = 1 / np.sqrt(hidden)
        params = {
            k: rng.uniform(-bound, bound, s)
            for k, s in {
                "w_ih": (features, g),
                "w_hh": (hidden, g),
                "b_ih": (g,),
                "b_hh": (g,),
            }.items()
        }
        state = tuple(rng.normal(size=(batch, hidden)) for _ in range(2 if kind == "lstm" else 1))
        for use_lengths, reverse in [(False, False), (True, False), (True, True)]:
            lens = lengths if use_lengths else None
            out_weights = rng.normal(size=(batch, steps, hidden))

            def loss(fn, params, xs, state, lens=lens, reverse=reverse, w=out_weights, kind=kind):
                init = state if kind == "lstm" else state[0]
                ys, final = fn(params, xs, lens, reverse=reverse, initial_state=init)
                total = jnp.sum(ys * w.astype(ys.dtype))
                for leaf in jax.tree_util.tree_leaves(final):
                    total = total + jnp.sum(jnp.sin(leaf))
                return total, (ys, final)

            with jax.enable_x64(True):
                args64 = jax.device_put((params, xs, state), cpu)
                ref = ops.recurrence(kind, reference=True)
                grad64 = jax.jit(
                    jax.grad(lambda p, x, s, fn=ref: loss(fn, p, x, s), (0, 1, 2), has_aux=True)
                )
                expected = jax.tree_util.tree_map(np.asarray, grad64(*args64))
            args32 = jax.device_put(
                jax.tree_util.tree_map(lambda a: np.asarray(a, np.float32), (params, xs, state)),
                dev,
            )
            for name, reference in impls.items():
                fn = ops.recurrence(kind, reference=reference)
                grad32 = jax.jit(
                    jax.grad(lambda p, x, s, fn=fn: loss(fn, p, x, s), (0, 1, 2), has_aux=True)
                )
                with jax.default_matmul_precision("float32"):
                    actual = jax.tree_util.tree_map(np.asarray, grad32(*args32))
                err = _relative_error(actual, expected)
                ok = err <= tol
                all_ok &= ok
                log(
                    f"{'PASS' if ok else 'FAIL'}  {kind:4s} {name:13s} lengths={use_lengths!s:5s} "
                    f"reverse={reverse!s:5s}  rel err {err:.1e} (tol {tol:g}) on {dev.device_kind}"
                )

        if kind == "lstm" and device == "gpu":
            all_ok &= check_cudnn(params, xs, lengths, dev, cpu, tol)
    return all_ok


def check_cudnn(params, xs, lengths, dev, cpu, tol) -> bool:
    """jax.experimental.rnn.lstm (cuDNN) outputs and input gradients vs the float64 reference."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import rnn

    from seqclf import ops

    batch, _, features = xs.shape
    hidden = params["w_hh"].shape[0]
    w_out = np.cos(np.arange(np.prod(xs.shape[:2]) * hidden)).reshape(*xs.shape[:2], hidden)
    with jax.enable_x64(True):
        p64, x64 = jax.device_put((params, xs), cpu)

        def ref_loss(x):
            ys = ops.lstm_reference(p64, x, jnp.asarray(lengths))[0]
            return jnp.sum(ys * w_out), ys

        dx_ref, ys_ref = jax.grad(ref_loss, has_aux=True)(x64)
        dx_ref, ys_ref = np.asarray(dx_ref), np.asarray(ys_ref)
    flat = np.concatenate(
        [params["w_ih"].T.ravel(), params["w_hh"].T.ravel(), params["b_ih"], params["b_hh"]]
    )
    w, x, lens = jax.device_put((flat.astype(np.float32), xs.astype(np.float32), lengths), dev)
    zeros = jax.device_put(jnp.zeros((1, batch, hidden), jnp.float32), dev)

    def loss(x):
        ys = rnn.lstm(
            x,
            zeros,
            zeros,
            w,
            lens,
            features,
            hidden,
            1,
            0.0,
            False,
            precision=jax.lax.Precision.HIGHEST,
        )[0]
        # cuDNN leaves padded outputs as zeros, like seqclf.
        return jnp.sum(ys * w_out.astype(np.float32)), ys

    try:
        dx, ys = jax.jit(jax.grad(loss, has_aux=True))(x)
    except Exception as e:
        log(f"SKIP  lstm jax-cudnn: {type(e).__name__}: {e}")
        return True
    err = _relative_error((ys, dx), (ys_ref, dx_ref))
    ok = err <= tol
    log(
        f"{'PASS' if ok else 'FAIL'}  lstm jax-cudnn     lengths=True  reverse=False  "
        f"rel err {err:.1e} (tol {tol:g})"
    )
    return ok


def run_benchmarks(device: str, out: Path, budget_s: float, dry_run: bool) -> None:
    """Part (b): rnn_speed.py in this process, LSTM first, then GRU and simple RNN."""
    import rnn_speed

    base = ["--device", device, "--out", str(out)]
    if dry_run:
        argv = [*base, "--smoke", "--kinds", "lstm,gru"]
    else:
        argv = [*base, "--quick", "--kinds", "lstm,gru,rnn", "--budget-s", str(budget_s)]
        # unroll=4 was 3x slower than unroll=1 for fwdbwd on an H200 (results/gpu-h200): skip it
        # and spend the budget on the TF32/bf16 and GRU/RNN rows instead.
        argv += ["--unrolls", "1"]
    log(f"rnn_speed {' '.join(argv)}")
    rnn_speed.main(argv)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=HERE / "results" / "gpu")
    parser.add_argument("--dry-run", action="store_true", help="run the same flow on the CPU, tiny")
    parser.add_argument("--budget-s", type=float, default=150.0, help="time for the benchmark grid")
    parser.add_argument("--skip-check", action="store_true")
    parser.add_argument("--skip-bench", action="store_true")
    args = parser.parse_args(argv)

    start = time.perf_counter()
    import jax

    log(f"jax {jax.__version__}, devices: {jax.devices()}")
    device = "cpu" if args.dry_run else "gpu"
    if device == "gpu":
        try:
            jax.devices("gpu")
        except RuntimeError as e:
            log(f"no GPU visible to JAX ({e}); use --dry-run for the CPU")
            return 2
    args.out.mkdir(parents=True, exist_ok=True)
    ok = True
    if not args.skip_check:
        log("== (a) correctness: GPU float32 vs CPU float64 reference ==")
        try:
            ok = check_correctness(device)
        except Exception:
            traceback.print_exc()
            ok = False
        log(
            f"== correctness: {'ALL PASS' if ok else 'SOME FAILED'} "
            f"({time.perf_counter() - start:.0f} s) =="
        )
    if not args.skip_bench:
        log("== (b) speed ==")
        try:
            run_benchmarks(device, args.out, args.budget_s, args.dry_run)
        except Exception:
            traceback.print_exc()
            ok = False
    log(f"== done in {time.perf_counter() - start:.0f} s; results in {args.out} ==")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
