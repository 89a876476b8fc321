"""Speed of one recurrent layer (LSTM, GRU, simple RNN), forward and forward+backward.

Implementations, all fed the same inputs and the same weights (converted between layouts) and
checked against each other before timing:

    seqclf-scan        seqclf.ops.lstm_reference / gru_reference / simple_rnn_reference
                       (lax.scan, autodiffed)
    seqclf-fused[-uN]  seqclf.ops.lstm / gru / simple_rnn, the fast path (cuDNN-style custom
                       VJP; forward-only without a gradient), scan unroll N
    flax               flax.linen.RNN(OptimizedLSTMCell / GRUCell / SimpleCell)
    jax-lstm_ref       jax.experimental.rnn.lstm_ref (lax.scan; CPU, LSTM only)
    jax-cudnn          jax.experimental.rnn.lstm (cuDNN; GPU, LSTM only)
    torch              torch.nn.LSTM / GRU / RNN, when torch is importable

``fwd`` times the outputs; ``fwdbwd`` the gradient of ``sum(outputs)`` w.r.t. the weights and
the inputs. Input size is hidden / 2 throughout. Every row also gets its achieved GFLOP/s (matmul
flops: 2 B T (F + H) G H forward, three times that forward+backward, G = 4 LSTM, 3 GRU, 1 RNN)
and its share of the machine's measured float32 matmul peak.

    python benchmarks/rnn_speed.py --quick                # CPU, LSTM, the issue's three shapes
    python benchmarks/rnn_speed.py --device gpu --quick --kinds lstm,gru,rnn
    python benchmarks/rnn_speed.py --scaling              # time against length and batch
    python benchmarks/rnn_speed.py --smoke --out /tmp/x   # seconds; for the tests
    python benchmarks/rnn_speed.py --targets              # the issue's three shapes, float32
                                                          # and bfloat16, fwd and fwdbwd

Writes ``rnn_speed.csv`` (impl,device,precision,batch,seq_len,hidden,mode,ms; impl is
``kind/name``), ``rnn_speed.md`` and ``rnn_speed.png`` into ``--out``.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
import common  # noqa: E402  (also puts the repo root on sys.path)

# (batch, seq_len, input, hidden) of the benchmark issue's targets.
TARGETS = [(32, 100, 64, 128), (64, 256, 128, 256), (64, 512, 256, 512)]
GATES = {"rnn": 1, "lstm": 4, "gru": 3}
CHECK_TOL = {"float32": 1e-4, "tf32": 5e-2, "bf16": 2e-1}
COLUMNS = ["impl", "device", "precision", "batch", "seq_len", "hidden", "mode", "ms"]


def grid(args: argparse.Namespace) -> list[tuple[int, int, int, int]]:
    """The (batch, seq_len, input, hidden) shapes to run, in order."""
    if args.shapes:
        return [tuple(int(v) for v in s.split(",")) for s in args.shapes.split(";")]
    if args.smoke:
        return [(2, 4, 2, 4), (2, 8, 2, 4)]
    if args.targets:
        return list(TARGETS)
    if args.quick:
        extra = [(32, 256, 64, 128), (64, 128, 128, 256)]
        return sorted(TARGETS + extra, key=lambda s: (s[3], s[0], s[1]))
    if args.scaling:
        return SCALING
    shapes = [
        (b, t, h // 2, h)
        for h in (64, 256, 1024)
        for b in (16, 64, 256)
        for t in (64, 256, 1024, 2048)
    ]
    shapes += [s for s in TARGETS if s not in shapes]
    return sorted(shapes, key=lambda s: (s[3], s[0], s[1]))


# ``--scaling``: the length from 64 to 2048 at batch 32, and the batch from 16 to 256 at length
# 256 (hidden 128, input 64), to read off how time grows with each (``scaling_fits``).
SCALING = [(32, t, 64, 128) for t in (64, 128, 256, 512, 1024, 2048)] + [
    (b, 256, 64, 128) for b in (16, 64, 128, 256)
]


def flops(kind: str, shape: tuple[int, int, int, int], mode: str) -> float:
    b, t, f, h = shape
    fwd = 2.0 * b * t * (f + h) * GATES[kind] * h
    return fwd if mode == "fwd" else 3.0 * fwd


# ---------------------------------------------------------------------------------------------
# Implementations. Each builder returns (forward, forward+backward, outputs-as-numpy) thunks.
# ---------------------------------------------------------------------------------------------


@dataclass
class Case:
    kind: str
    device: str  # "cpu" or "gpu"
    precision: str  # "float32", "tf32" or "bf16"
    params: dict[str, np.ndarray]  # seqclf layout, float32
    xs: np.ndarray  # (B, T, F) float32


Thunks = tuple[Callable[[], object], Callable[[], object], Callable[[], np.ndarray]]


def _jax_precision(precision: str) -> str:
    return {"float32": "float32", "tf32": "tensorfloat32", "bf16": "bfloat16"}[precision]


def _jax_thunks(case: Case, apply: Callable, params) -> Thunks:
    """Thunks for a JAX ``apply(params, xs) -> (B, T, H) outputs``."""
    import jax
    import jax.numpy as jnp

    dev = jax.devices(case.device)[0]
    dtype = jnp.bfloat16 if case.precision == "bf16" else jnp.float32
    params = jax.device_put(jax.tree_util.tree_map(lambda a: jnp.asarray(a, dtype), params), dev)
    xs = jax.device_put(jnp.asarray(case.xs, dtype), dev)
    fwd = jax.jit(apply)
    fwdbwd = jax.jit(jax.grad(lambda p, x: jnp.sum(apply(p, x).astype(jnp.float32)), (0, 1)))
    ctx = _jax_precision(case.precision)

    def run(fn):
        def thunk():
            with jax.default_matmul_precision(ctx):
                return fn(params, xs)

        return thunk

    return run(fwd), run(fwdbwd), lambda: np.asarray(run(fwd)(), np.float32)


def seqclf_impl(fused: bool, unroll: int) -> Callable[[Case], Thunks]:
    def build(case: Case) -> Thunks:
        from seqclf import ops

        fn = ops.recurrence(case.kind, reference=not fused)
        return _jax_thunks(case, lambda p, x: fn(p, x, unroll=unroll)[0], case.params)

    return build


def flax_params(kind: str, p: dict[str, np.ndarray]) -> dict:
    """seqclf's (F, G*H)/(H, G*H) layout -> flax.linen cell parameters (same gate order)."""
    h = p["w_hh"].shape[0]

    def part(a, k):
        return a[..., k * h : (k + 1) * h]

    if kind == "lstm":  # OptimizedLSTMCell: ii..io kernels, hi..ho kernels + biases
        cell = {}
        for k, gate in enumerate("ifgo"):
            cell["i" + gate] = {"kernel": part(p["w_ih"], k)}
            bias = part(p["b_ih"], k) + part(p["b_hh"], k)
            cell["h" + gate] = {"kernel": part(p["w_hh"], k), "bias": bias}
    elif kind == "gru":  # GRUCell: ir, iz, in with biases; hr, hz without; hn with
        cell = {
            "ir": {"kernel": part(p["w_ih"], 0), "bias": part(p["b_ih"], 0) + part(p["b_hh"], 0)},
            "iz": {"kernel": part(p["w_ih"], 1), "bias": part(p["b_ih"], 1) + part(p["b_hh"], 1)},
            "in": {"kernel": part(p["w_ih"], 2), "bias": part(p["b_ih"], 2)},
            "hr": {"kernel": part(p["w_hh"], 0)},
            "hz": {"kernel": part(p["w_hh"], 1)},
            "hn": {"kernel": part(p["w_hh"], 2), "bias": part(p["b_hh"], 2)},
        }
    else:  # SimpleCell: i with bias, h without
        cell = {
            "i": {"kernel": p["w_ih"], "bias": p["b_ih"] + p["b_hh"]},
            "h": {"kernel": p["w_hh"]},
        }
    return {"params": {"cell": cell}}


def flax_impl(case: Case) -> Thunks:
    import flax.linen as nn

    h = case.params["w_hh"].shape[0]
    cell = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "rnn": nn.SimpleCell}[case.kind](h)
    model = nn.RNN(cell)
    return _jax_thunks(case, model.apply, flax_params(case.kind, case.params))


def _cudnn_weights(p: dict[str, np.ndarray]) -> np.ndarray:
    """cuDNN's flat LSTM weights: W_ih (4H, F), W_hh (4H, H), then b_ih, b_hh."""
    return np.concatenate([p["w_ih"].T.ravel(), p["w_hh"].T.ravel(), p["b_ih"], p["b_hh"]])


def jax_rnn_impl(case: Case) -> Thunks:
    """jax.experimental.rnn: ``lstm`` (cuDNN) on GPU, ``lstm_ref`` (lax.scan) on CPU."""
    import jax
    import jax.numpy as jnp
    from jax.experimental import rnn

    b, _, f = case.xs.shape
    h = case.params["w_hh"].shape[0]
    dev = jax.devices(case.device)[0]
    zeros = jax.device_put(jnp.zeros((1, b, h), jnp.float32), dev)
    lengths = jax.device_put(jnp.full((b,), case.xs.shape[1], jnp.int32), dev)
    if case.device == "gpu":
        prec = jax.lax.Precision.HIGHEST if case.precision == "float32" else None

        def apply(w, x):
            return rnn.lstm(x, zeros, zeros, w, lengths, f, h, 1, 0.0, False, precision=prec)[0]

        return _jax_thunks(case, apply, _cudnn_weights(case.params))

    def apply_ref(p, x):
        w_ih, w_hh = {0: p["w_ih"].T}, {0: p["w_hh"].T}
        b_ih, b_hh = {0: p["b_ih"]}, {0: p["b_hh"]}
        return rnn.lstm_ref(x, zeros, zeros, w_ih, w_hh, b_ih, b_hh, lengths, f, h, 1, 0.0, False)[
            0
        ]

    return _jax_thunks(case, apply_ref, case.params)


def _torch_tf32(enabled: bool) -> None:
    """Allow or forbid TF32 in torch's matmuls and cuDNN (new ``fp32_precision`` API first)."""
    import torch

    value = "tf32" if enabled else "ieee"
    try:
        torch.backends.cuda.matmul.fp32_precision = value
        torch.backends.cudnn.fp32_precision = value
        torch.backends.cudnn.rnn.fp32_precision = value
    except (AttributeError, RuntimeError):
        torch.backends.cuda.matmul.allow_tf32 = enabled
        torch.backends.cudnn.allow_tf32 = enabled


def torch_impl(case: Case) -> Thunks:
    import torch

    b, _, f = case.xs.shape
    h = case.params["w_hh"].shape[0]
    dev = torch.device("cuda" if case.device == "gpu" else "cpu")
    _torch_tf32(case.precision == "tf32")
    module = {"lstm": torch.nn.LSTM, "gru": torch.nn.GRU, "rnn": torch.nn.RNN}[case.kind]
    layer = module(f, h, batch_first=True).to(dev)
    with torch.no_grad():
        for name, value in [
            ("weight_ih_l0", case.params["w_ih"].T),
            ("weight_hh_l0", case.params["w_hh"].T),
        ]:
            getattr(layer, name).copy_(torch.from_numpy(np.ascontiguousarray(value)))
        layer.bias_ih_l0.copy_(torch.from_numpy(case.params["b_ih"]))
        layer.bias_hh_l0.copy_(torch.from_numpy(case.params["b_hh"]))
    dtype = torch.bfloat16 if case.precision == "bf16" else torch.float32
    layer = layer.to(dtype)
    xs = torch.from_numpy(case.xs).to(dev, dtype).requires_grad_(True)

    def fwd():
        with torch.no_grad():
            return layer(xs)[0]

    def fwdbwd():
        layer.zero_grad(set_to_none=True)
        xs.grad = None
        layer(xs)[0].float().sum().backward()
        return xs.grad

    if case.device == "cpu":
        # On a shared machine OpenMP's spinning threads can make torch 100x slower; take the
        # faster of one thread and all cores, measured on a forward+backward call.
        best = []
        for threads in sorted({1, os.cpu_count() or 1}):
            torch.set_num_threads(threads)
            fwdbwd()
            start = time.perf_counter()
            fwdbwd()
            best.append((time.perf_counter() - start, threads))
        torch.set_num_threads(min(best)[1])
    return fwd, fwdbwd, lambda: fwd().float().cpu().numpy()


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def implementations(kind: str, device: str, unrolls: list[int]) -> dict[str, Callable]:
    impls: dict[str, Callable] = {"seqclf-scan": seqclf_impl(False, 1)}
    for u in unrolls:
        impls["seqclf-fused" + ("" if u == 1 else f"-u{u}")] = seqclf_impl(True, u)
    impls["flax"] = flax_impl
    if kind == "lstm":
        impls["jax-cudnn" if device == "gpu" else "jax-lstm_ref"] = jax_rnn_impl
    if torch_available():
        impls["torch"] = torch_impl
    return impls


def precisions(device: str) -> list[str]:
    return ["float32"] if device == "cpu" else ["float32", "tf32", "bf16"]


def sync_for(device: str) -> Callable[[object], object]:
    """Wait for a JAX or torch result to be computed."""
    import jax

    def sync(result):
        if type(result).__module__.startswith("torch"):
            if device == "gpu":
                import torch

                torch.cuda.synchronize()
            return result
        return jax.block_until_ready(result)

    return sync


# ---------------------------------------------------------------------------------------------
# Running the grid
# ---------------------------------------------------------------------------------------------


@dataclass
class Row:
    kind: str
    impl: str
    device: str
    precision: str
    shape: tuple[int, int, int, int]
    mode: str
    ms: float
    check: str  # "ok", "max|diff| 3e-3" or "skipped: why"

    def csv(self) -> list:
        b, t, _, h = self.shape
        return [
            f"{self.kind}/{self.impl}",
            self.device,
            self.precision,
            b,
            t,
            h,
            self.mode,
            f"{self.ms:.4f}",
        ]


def run_case(
    kind: str, shape, device: str, precision: str, impls: dict, repeats: int, log
) -> list[Row]:
    """Build every implementation for one (kind, shape, precision), check them, time them."""
    rng = np.random.default_rng(0)
    b, t, f, h = shape
    g = GATES[kind] * h
    bound = 1 / np.sqrt(h)
    params = {
        name: rng.uniform(-bound, bound, s).astype(np.float32)
        for name, s in {"w_ih": (f, g), "w_hh": (h, g), "b_ih": (g,), "b_hh": (g,)}.items()
    }
    case = Case(kind, device, precision, params, rng.normal(size=(b, t, f)).astype(np.float32))
    sync = sync_for(device)
    built, checks, expected = {}, {}, None
    for name, build in impls.items():
        try:
            thunks = build(case)
            out = thunks[2]()
        except Exception as e:  # an implementation that cannot run here: say so, go on
            log(f"  {kind}/{name} {precision} {shape}: skipped ({type(e).__name__}: {e})")
            continue
        if expected is None:
            expected = out  # seqclf-scan, built first
        diff = float(np.max(np.abs(out - expected))) if out.shape == expected.shape else np.inf
        checks[name] = "ok" if diff <= CHECK_TOL[precision] else f"max|diff| {diff:.1e}"
        if checks[name] != "ok":
            log(f"  WARNING {kind}/{name} {precision} {shape}: outputs differ, {checks[name]}")
        built[name] = thunks
    rows = []
    for mode, idx in (("fwd", 0), ("fwdbwd", 1)):
        all_fns = {name: th[idx] for name, th in built.items()}
        # JAX implementations round-robin among themselves; torch on its own afterwards, since
        # its (OpenMP) threads would otherwise slow whichever JAX call follows it.
        groups = [
            {k: f for k, f in all_fns.items() if k != "torch"},
            {k: f for k, f in all_fns.items() if k == "torch"},
        ]
        for fns in groups:
            if not fns:
                continue
            # One call to compile and warm up; slow shapes get fewer repeats.
            start = time.perf_counter()
            for fn in fns.values():
                sync(fn())
            n = repeats if time.perf_counter() - start < 2.0 * len(fns) else min(repeats, 3)
            times = common.interleaved_times(fns, n, sync, warmup=0)
            for name, ts in times.items():
                ms = common.median_ms(ts)
                rows.append(Row(kind, name, device, precision, shape, mode, ms, checks[name]))
    return rows


def memory_rows(device: str, kind: str = "lstm", shape=(64, 2048, 128, 256)) -> list[str]:
    """Compiled peak memory (arguments + outputs + temporaries) of one fwdbwd step, in MiB."""
    import flax.linen as nn
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    b, t, f, h = shape
    p = jax.tree_util.tree_map(jnp.asarray, ops.init_params(jax.random.key(0), kind, f, h))
    xs = jnp.zeros((b, t, f), jnp.float32)
    cell = {"lstm": nn.OptimizedLSTMCell, "gru": nn.GRUCell, "rnn": nn.SimpleCell}[kind](h)
    model = nn.RNN(cell)
    candidates = {
        "seqclf-scan": (lambda p, x: ops.recurrence(kind, reference=True)(p, x)[0], p),
        "seqclf-fused": (lambda p, x: ops.recurrence(kind)(p, x)[0], p),
        "seqclf-fused remat=True": (lambda p, x: ops.recurrence(kind)(p, x, remat=True)[0], p),
        "flax": (model.apply, flax_params(kind, jax.tree_util.tree_map(np.asarray, p))),
    }
    lines = [
        f"Peak memory of one {kind} fwdbwd step (gradient w.r.t. weights and inputs), batch {b}, "
        f"length {t}, input {f}, hidden {h}, from XLA's compiled memory analysis "
        f"(arguments + outputs + temporaries):",
        "",
        "| impl | MiB |",
        "| --- | ---: |",
    ]
    for name, (apply, params) in candidates.items():
        grad = jax.jit(jax.grad(lambda p, x, a=apply: jnp.sum(a(p, x)), (0, 1)))
        try:
            stats = grad.lower(params, xs).compile().memory_analysis()
            total = (
                stats.argument_size_in_bytes + stats.output_size_in_bytes + stats.temp_size_in_bytes
            )
            lines.append(f"| {name} | {total / 2**20:.0f} |")
        except Exception as e:  # memory_analysis is not available on every backend
            lines.append(f"| {name} | n/a ({type(e).__name__}) |")
    return lines


# ---------------------------------------------------------------------------------------------
# Reports
# ---------------------------------------------------------------------------------------------


def write_csv(rows: list[Row], path: Path) -> None:
    with path.open("w", newline="") as fh:
        writer = csv.writer(fh)
        writer.writerow(COLUMNS)
        writer.writerows(r.csv() for r in rows)


def _flax_ms(rows: list[Row]) -> dict:
    out = {}
    for r in rows:
        if r.impl == "flax":
            out[(r.kind, r.shape, r.mode, r.precision)] = r.ms
    return out


def target_summary(rows: list[Row], device: str) -> list[str]:
    """The issue's goals, met or not, from the rows at the target shapes."""
    by = {(r.kind, r.impl, r.shape, r.mode, r.precision): r.ms for r in rows}
    if not any(r.kind == "lstm" and r.shape in TARGETS for r in rows):
        return []
    lines = []
    if device == "cpu":
        lines += [
            "| shape (B, T, F, H) | flax ms | seqclf-scan ms | best seqclf-fused | ms | "
            "speedup vs flax | goal | met |",
            "| --- | ---: | ---: | --- | ---: | ---: | --- | --- |",
        ]
        for i, shape in enumerate(TARGETS):
            flax = by.get(("lstm", "flax", shape, "fwdbwd", "float32"))
            fused = {
                k[1]: v
                for k, v in by.items()
                if k[0] == "lstm"
                and k[1].startswith("seqclf-fused")
                and k[2:] == (shape, "fwdbwd", "float32")
            }
            if flax is None or not fused:
                continue
            best = min(fused, key=fused.get)
            speedup = flax / fused[best]
            goal = 1.3 if i == 0 else 1.0
            scan = by.get(("lstm", "seqclf-scan", shape, "fwdbwd", "float32"), float("nan"))
            lines.append(
                f"| {shape} | {flax:.1f} | {scan:.1f} | {best} | {fused[best]:.1f} | "
                f"{speedup:.2f}x | ≥ {goal}x | {'yes' if speedup >= goal else 'no'} |"
            )
        lines += ["", *_forward_only_summary(by)]
    else:
        shape = TARGETS[2]
        for prec in ("float32", "tf32"):
            ours = {
                k[1]: v
                for k, v in by.items()
                if k[0] == "lstm" and k[1].startswith("seqclf") and k[2:] == (shape, "fwdbwd", prec)
            }
            cudnn = by.get(("lstm", "jax-cudnn", shape, "fwdbwd", prec))
            flax = by.get(("lstm", "flax", shape, "fwdbwd", prec))
            if not ours:
                continue
            best = min(ours, key=ours.get)
            lines.append(f"- {prec}, fwdbwd {shape}: best seqclf {best} {ours[best]:.2f} ms")
            if cudnn:
                ratio = ours[best] / cudnn
                lines.append(
                    f"  - vs jax-cudnn {cudnn:.2f} ms: {ratio:.2f}x its time "
                    f"(goal ≤ 1.5x: {'met' if ratio <= 1.5 else 'missed'})"
                )
            if flax:
                sp = flax / ours[best]
                lines.append(
                    f"  - vs flax {flax:.2f} ms: {sp:.2f}x faster "
                    f"(goal ≥ 2x: {'met' if sp >= 2 else 'missed'})"
                )
    return lines + ["", *_bf16_summary(by, device)]


def _best_fused(by: dict, kind: str, shape, mode: str, precision: str) -> tuple[str, float] | None:
    """The fastest seqclf-fused[-uN] row of one (kind, shape, mode, precision), or None."""
    ours = {
        k[1]: v
        for k, v in by.items()
        if k[0] == kind and k[1].startswith("seqclf-fused") and k[2:] == (shape, mode, precision)
    }
    if not ours:
        return None
    best = min(ours, key=ours.get)
    return best, ours[best]


def _forward_only_summary(by: dict) -> list[str]:
    """LSTM forward only (no gradient: the custom VJP's lean primal) against Flax, goal ≥ 1.0x."""
    lines = [
        "Forward only (inference), LSTM, float32:",
        "",
        "| shape (B, T, F, H) | flax ms | best seqclf-fused | ms | speedup vs flax | goal | met |",
        "| --- | ---: | --- | ---: | ---: | --- | --- |",
    ]
    for shape in TARGETS:
        flax = by.get(("lstm", "flax", shape, "fwd", "float32"))
        best = _best_fused(by, "lstm", shape, "fwd", "float32")
        if flax is None or best is None:
            continue
        speedup = flax / best[1]
        lines.append(
            f"| {shape} | {flax:.1f} | {best[0]} | {best[1]:.1f} | {speedup:.2f}x | ≥ 1.0x | "
            f"{'yes' if speedup >= 1.0 else 'no'} |"
        )
    return lines if len(lines) > 4 else []


def _bf16_summary(by: dict, device: str) -> list[str]:
    """seqclf-fused in bfloat16 against itself in float32 (goal: faster; ≥ 1.3x on a GPU)."""
    goal = 1.3 if device == "gpu" else 1.0
    lines = [
        "bfloat16 against float32, seqclf-fused (best unroll of each), LSTM:",
        "",
        "| shape (B, T, F, H) | mode | float32 ms | bf16 ms | bf16 speedup | goal | met |",
        "| --- | --- | ---: | ---: | ---: | --- | --- |",
    ]
    for shape in TARGETS:
        for mode in ("fwd", "fwdbwd"):
            f32 = _best_fused(by, "lstm", shape, mode, "float32")
            bf16 = _best_fused(by, "lstm", shape, mode, "bf16")
            if f32 is None or bf16 is None:
                continue
            speedup = f32[1] / bf16[1]
            met = "yes" if (speedup >= goal if device == "gpu" else speedup > 1.0) else "no"
            lines.append(
                f"| {shape} | {mode} | {f32[1]:.2f} | {bf16[1]:.2f} | {speedup:.2f}x | "
                f"{'≥ 1.3x' if goal > 1.0 else '> 1.0x'} | {met} |"
            )
    return lines if len(lines) > 4 else []


@dataclass
class ScalingFit:
    """How one implementation's time grows along one axis, the other dimensions fixed.

    ``exponent`` is the slope of log(ms) against log(axis value), least squares over the points:
    1.0 means time proportional to that axis (what a recurrence should show in the length).
    """

    kind: str
    impl: str
    precision: str
    mode: str
    axis: str  # "seq_len" or "batch"
    fixed: str  # the other dimensions, e.g. "batch 32, hidden 128"
    points: list[tuple[int, float]]  # (axis value, ms), sorted
    exponent: float


def scaling_fits(rows: list[Row], min_points: int = 3) -> list[ScalingFit]:
    """Log-log slopes of time against sequence length and against batch, per implementation.

    A family is the rows of one kind, implementation, precision and mode whose shapes differ only
    in the length (or only in the batch); families with fewer than ``min_points`` distinct values
    are left out.
    """
    axes = {
        "seq_len": (1, lambda s: (s[0], s[2], s[3]), lambda k: f"batch {k[0]}, hidden {k[2]}"),
        "batch": (0, lambda s: (s[1], s[2], s[3]), lambda k: f"length {k[0]}, hidden {k[2]}"),
    }
    fits = []
    for axis, (index, rest, describe) in axes.items():
        families: dict[tuple, dict[int, float]] = {}
        for r in rows:
            key = (r.kind, r.impl, r.precision, r.mode, rest(r.shape))
            families.setdefault(key, {})[r.shape[index]] = r.ms
        for (kind, impl, prec, mode, fixed), by_value in families.items():
            if len(by_value) < min_points:
                continue
            points = sorted(by_value.items())
            x = np.log([v for v, _ in points])
            y = np.log([ms for _, ms in points])
            exponent = float(np.polyfit(x, y, 1)[0])
            fits.append(ScalingFit(kind, impl, prec, mode, axis, describe(fixed), points, exponent))
    return fits


def scaling_lines(rows: list[Row]) -> list[str]:
    """Markdown: one row per ``scaling_fits`` family (empty when the grid has none)."""
    fits = scaling_fits(rows)
    if not fits:
        return []
    lines = [
        "How time grows: the exponent p in ms ∝ (axis)^p, a least-squares line through the "
        "log-log points (p = 1: linear).",
        "",
        "| kind | impl | precision | mode | axis | fixed | from → to | ms | exponent |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | ---: |",
    ]
    for f in fits:
        (v0, ms0), (v1, ms1) = f.points[0], f.points[-1]
        lines.append(
            f"| {f.kind} | {f.impl} | {f.precision} | {f.mode} | {f.axis} | {f.fixed} | "
            f"{v0} → {v1} | {ms0:.2f} → {ms1:.2f} | {f.exponent:.2f} |"
        )
    return lines


def write_markdown(rows, path: Path, header: list[str], peak: float, device: str, memory) -> None:
    flax = _flax_ms(rows)
    lines = ["# One recurrent layer: speed", "", *header, ""]
    summary = target_summary(rows, device)
    if summary:
        lines += ["## The issue's targets (LSTM, forward+backward)", "", *summary, ""]
    lines += [
        f"Measured float32 matmul peak: **{peak:.1f} GFLOP/s**. GFLOP/s counts the matmul flops "
        "(2 B T (F + H) G H forward, 3x that forward+backward); input size F = hidden / 2.",
        "",
    ]
    for kind in dict.fromkeys(r.kind for r in rows):
        lines += [
            f"## {kind}",
            "",
            "| batch | seq_len | hidden | mode | impl | precision | ms | vs flax | GFLOP/s "
            "| % peak | check |",
            "| ---: | ---: | ---: | --- | --- | --- | ---: | ---: | ---: | ---: | --- |",
        ]
        for r in rows:
            if r.kind != kind:
                continue
            b, t, _, h = r.shape
            ref = flax.get((r.kind, r.shape, r.mode, r.precision))
            vs = f"{ref / r.ms:.2f}x" if ref else ""
            gflops = flops(r.kind, r.shape, r.mode) / r.ms / 1e6
            lines.append(
                f"| {b} | {t} | {h} | {r.mode} | {r.impl} | {r.precision} | {r.ms:.2f} | {vs} | "
                f"{gflops:.1f} | {100 * gflops / peak:.0f} | {r.check} |"
            )
        lines.append("")
    scaling = scaling_lines(rows)
    if scaling:
        lines += ["## Scaling with length and batch", "", *scaling, ""]
    if memory:
        lines += ["## Memory", "", *memory, ""]
    path.write_text("\n".join(lines))


def write_plot(rows: list[Row], path: Path, title: str) -> None:
    """Time against sequence length (log-log), one line per implementation, a panel per shape
    family; and time against batch where the grid sweeps the batch (``--scaling``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    def length_family(r: Row) -> tuple:
        return (r.kind, r.shape[0], r.shape[2], r.shape[3])

    def batch_family(r: Row) -> tuple:
        return (r.kind, r.shape[1], r.shape[2], r.shape[3])

    def values_per_family(family, index: int) -> dict:
        out: dict[tuple, set] = {}
        for r in rows:
            out.setdefault(family(r), set()).add(r.shape[index])
        return out

    lengths = values_per_family(length_family, 1)
    batches = values_per_family(batch_family, 0)
    swept = {f for f, values in batches.items() if len(values) >= 3}
    # A one-point length family that belongs to a batch sweep is drawn in the batch panel only.
    panels = [
        ("seq_len", f)
        for f in dict.fromkeys(map(length_family, rows))
        if len(lengths[f]) >= 2
        or not any(batch_family(r) in swept for r in rows if length_family(r) == f)
    ]
    panels += [("batch", f) for f in dict.fromkeys(map(batch_family, rows)) if f in swept]
    modes = ["fwd", "fwdbwd"]
    fig, axes = plt.subplots(len(panels), 2, figsize=(12, 3.6 * len(panels)), squeeze=False)
    for i, (axis, fam) in enumerate(panels):
        of_family, index = (length_family, 1) if axis == "seq_len" else (batch_family, 0)
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            sel = [r for r in rows if of_family(r) == fam and r.mode == mode]
            if not sel:  # e.g. --budget-s ran out first: say so instead of an empty frame
                ax.text(0.5, 0.5, f"{mode}: not measured", ha="center", va="center")
                ax.set_axis_off()
                continue
            for label in dict.fromkeys((r.impl, r.precision) for r in sel):
                pts = sorted((r.shape[index], r.ms) for r in sel if (r.impl, r.precision) == label)
                name = label[0] if label[1] == "float32" else f"{label[0]} ({label[1]})"
                ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=name)
            ax.set_xscale("log")
            ax.set_yscale("log")
            # Ticks at the measured sizes, written plainly (not as 3×10^1).
            ax.set_xticks(sorted({r.shape[index] for r in sel}))
            ax.xaxis.set_major_formatter(matplotlib.ticker.ScalarFormatter())
            ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
            kind, fixed, f, h = fam
            fixed_name = "batch" if axis == "seq_len" else "length"
            ax.set_title(f"{kind} {mode}: {fixed_name} {fixed}, input {f}, hidden {h}", fontsize=9)
            ax.set_xlabel("sequence length" if axis == "seq_len" else "batch")
            ax.set_ylabel("ms (median)")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=7)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# ---------------------------------------------------------------------------------------------


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--device", choices=["cpu", "gpu"], default="cpu")
    parser.add_argument("--kinds", default="lstm", help="comma-separated: lstm,gru,rnn")
    parser.add_argument(
        "--quick", action="store_true", help="the issue's target shapes and a few more"
    )
    parser.add_argument(
        "--smoke", action="store_true", help="two tiny shapes, seqclf and flax only: for the tests"
    )
    parser.add_argument(
        "--targets",
        action="store_true",
        help="the issue's three shapes only, float32 and bf16 (fwd: forward-only; fwdbwd)",
    )
    parser.add_argument(
        "--scaling",
        action="store_true",
        help="length 64..2048 at batch 32, batch 16..256 at length 256, hidden 128: time growth",
    )
    parser.add_argument(
        "--shapes", default="", help='explicit "B,T,F,H;B,T,F,H" (overrides the grid)'
    )
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per row (median)")
    parser.add_argument(
        "--unrolls",
        default="",
        help="seqclf-fused unroll values (default 1,4 quick, 1 scaling, 1,2,4,8)",
    )
    parser.add_argument(
        "--impls", default="", help="comma-separated subset of implementation names"
    )
    parser.add_argument(
        "--precisions", default="", help="comma-separated subset of float32,tf32,bf16"
    )
    parser.add_argument(
        "--max-gflop",
        type=float,
        default=None,
        help="skip shapes whose fwdbwd needs more (CPU default 400)",
    )
    parser.add_argument(
        "--budget-s", type=float, default=float("inf"), help="start no new case after this long"
    )
    parser.add_argument(
        "--no-memory", action="store_true", help="skip the length-2048 memory table"
    )
    parser.add_argument("--peak-only", action="store_true", help="measure the matmul peak and stop")
    parser.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="glibc keeps freed memory for reuse (seqclf.cpu_allocator.keep_freed_memory), "
        "for every impl alike",
    )
    parser.add_argument("--out", type=Path, default=common.REPO / "benchmarks" / "results")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> list[Row]:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.keep_freed_memory:  # before JAX is imported
        common.keep_freed_memory_or_exit()
    import jax
    from tqdm import tqdm

    if args.device == "gpu" and not jax.devices("gpu"):
        raise SystemExit("no GPU visible to JAX")
    with jax.default_device(jax.devices(args.device)[0]):
        peak = common.matmul_peak_gflops(args.device, n=256 if args.smoke else None)
    print(
        f"float32 matmul peak on {common.device_name(args.device)}: {peak:.1f} GFLOP/s", flush=True
    )
    if args.peak_only:
        return []
    kinds = [k for k in args.kinds.split(",") if k]
    unrolls = [int(u) for u in args.unrolls.split(",") if u] or (
        [1]
        if args.scaling
        else [1, 4]
        if args.quick or args.smoke or args.targets
        else [1, 2, 4, 8]
    )
    max_gflop = (
        args.max_gflop
        if args.max_gflop is not None
        else (400.0 if args.device == "cpu" else float("inf"))
    )
    default_precs = precisions(args.device)
    if args.targets and "bf16" not in default_precs:
        default_precs.append("bf16")  # bfloat16 on the CPU as well (AVX512_BF16 / AMX)
    precs = args.precisions.split(",") if args.precisions else default_precs
    work = [
        (kind, shape, prec)
        for kind in kinds
        for shape in grid(args)
        for prec in precs
        if flops(kind, shape, "fwdbwd") / 1e9 <= max_gflop
    ]
    if args.quick:  # TF32 and bf16 rows only for the LSTM at the GPU shape
        work = [w for w in work if w[2] == "float32" or (w[0], w[1]) == ("lstm", TARGETS[2])]
    # Most important first, so that a time budget cuts the least useful rows: the target
    # shapes (LSTM float32, then its TF32/bf16 rows, then GRU and RNN), then the other shapes.
    work.sort(key=lambda w: (w[1] not in TARGETS, w[0] != "lstm", w[2] != "float32"))
    skipped = [s for s in grid(args) if flops("lstm", s, "fwdbwd") / 1e9 > max_gflop]
    if skipped:
        print(
            f"skipping {len(skipped)} shapes over {max_gflop:g} GFLOP per fwdbwd call", flush=True
        )
    rows: list[Row] = []
    over_budget: list = []
    bar = tqdm(work, desc="rnn_speed", file=sys.stdout, dynamic_ncols=True)
    with jax.default_device(jax.devices(args.device)[0]):
        for n_done, (kind, shape, prec) in enumerate(bar):
            if time.perf_counter() - start > args.budget_s:
                over_budget = work[n_done:]
                bar.write(
                    f"time budget {args.budget_s:g} s spent: {len(over_budget)} cases left out"
                )
                break
            bar.set_postfix_str(f"{kind} {shape} {prec}")
            impls = implementations(kind, args.device, unrolls)
            if args.impls or args.smoke:
                keep = set((args.impls or "seqclf-fused,flax").split(","))
                impls = {k: v for k, v in impls.items() if k in keep or k == "seqclf-scan"}
            new = run_case(kind, shape, args.device, prec, impls, args.repeats, bar.write)
            for r in new:
                if r.mode == "fwdbwd":
                    bar.write(
                        f"  {kind}/{r.impl:18s} {prec:7s} {str(shape):22s} fwdbwd {r.ms:10.2f} ms"
                    )
            rows += new
        memory = [] if (args.no_memory or args.smoke) else memory_rows(args.device)
    args.out.mkdir(parents=True, exist_ok=True)
    stamp = common.stamp(args.device)
    command = "python benchmarks/rnn_speed.py " + " ".join(sys.argv[1:] if argv is None else argv)
    header = [f"Device and versions: {stamp}", "", f"Command: `{command}`", ""]
    if args.keep_freed_memory:
        header += [
            "glibc told to keep freed memory (`seqclf.cpu_allocator.keep_freed_memory`), all "
            "impls.",
            "",
        ]
    if skipped:
        header.append(
            f"Skipped {len(skipped)} grid shapes over {max_gflop:g} GFLOP per fwdbwd call."
        )
    if over_budget:
        left = ", ".join(f"{k} {s} {p}" for k, s, p in over_budget)
        header.append(f"Left out when the {args.budget_s:g} s budget ran out: {left}.")
    write_csv(rows, args.out / "rnn_speed.csv")
    write_markdown(rows, args.out / "rnn_speed.md", header, peak, args.device, memory)
    write_plot(rows, args.out / "rnn_speed.png", stamp)
    print(f"wrote {args.out}/rnn_speed.csv, .md, .png", flush=True)
    for line in target_summary(rows, args.device):
        print(line, flush=True)
    return rows


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    with contextlib.suppress(KeyboardInterrupt):
        main()
