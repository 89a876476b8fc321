"""mkdocs hook: draws the figures of the docs from seqclf itself, at every build.

Each figure is computed with ``seqclf.ops`` (random, seeded parameters unless a caption says
otherwise), drawn with matplotlib's Agg backend and added to the site as ``figures/<name>.png``,
so a page links it as ``figures/<name>.png`` and ``mkdocs build --strict`` fails if one is
missing. The benchmark plots are copied from ``benchmarks/results/`` to ``figures/bench/``.
Nothing is written into the source tree. All of it takes a few seconds on 2 CPU cores.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")  # the docs never need an accelerator
if "jax" not in sys.modules:
    # Compiling is most of the figures' time and their programs are tiny: XLA's cheapest
    # optimisation level halves it (about 18 s of CPU instead of 31 for all of them).
    fast = "--xla_backend_optimization_level=0 --xla_llvm_disable_expensive_passes=true"
    os.environ["XLA_FLAGS"] = f"{os.environ.get('XLA_FLAGS', '')} {fast}".strip()

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

log = logging.getLogger("mkdocs.hooks.figures")
ROOT = Path(__file__).resolve().parents[2]

# The latest result of each benchmark (benchmarks/README.md says where each comes from).
BENCH_PLOTS = {
    "rnn_speed_cpu.png": "benchmarks/results/cpu/avx512-2026-11-28/lstm-one-buffer/rnn_speed.png",
    "rnn_scaling_cpu.png": "benchmarks/results/cpu/rnn-idle-2026-11-28/scaling/rnn_speed.png",
    "rnn_speed_h200.png": "benchmarks/results/gpu-h200/rnn_speed.png",
    "train_speed_cpu.png": "benchmarks/results/cpu/avx512-2026-11-28/train/train_speed.png",
}

SENTENCE = "the film was not good at all , but the ending was wonderful".split()


def _png(fig: plt.Figure) -> bytes:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    plt.close(fig)
    return buffer.getvalue()


def _words_axis(ax: plt.Axes, words: list[str]) -> None:
    ax.set_xticks(range(len(words)))
    ax.set_xticklabels(words, rotation=45, ha="right", fontsize=8)


def _embed(words: list[str], dim: int, seed: int = 0) -> np.ndarray:
    """One random (seeded) vector per distinct word: (T, dim)."""
    rng = np.random.default_rng(seed)
    table = {w: rng.normal(size=dim).astype(np.float32) for w in dict.fromkeys(words)}
    return np.stack([table[w] for w in words])


def rnn_unrolled() -> bytes:
    """The unrolled simple RNN (a drawing) over its hidden states h_t on a sentence."""
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    words = SENTENCE[:6]

    @jax.jit  # one compiled program: eager JAX would compile every operation on its own
    def hidden_states(xs):
        params = ops.init_params(jax.random.PRNGKey(0), "rnn", 8, 6)
        return ops.simple_rnn(params, xs)[0]

    ys = np.asarray(hidden_states(jnp.asarray(_embed(words, 8))[None]))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.6), height_ratios=[1.2, 1])
    top.set_xlim(-0.7, len(words) - 0.3)
    top.set_ylim(-0.3, 2.3)
    top.axis("off")
    for t, word in enumerate(words):
        top.text(t, 0, f"x{t + 1}\n'{word}'", ha="center", va="center", fontsize=8)
        top.add_patch(plt.Rectangle((t - 0.3, 0.75), 0.6, 0.5, fc="#cfe3f7", ec="k"))
        top.text(t, 1.0, "tanh", ha="center", va="center", fontsize=8)
        top.text(t, 2.0, f"h{t + 1}", ha="center", va="center", fontsize=9)
        top.annotate("", (t, 0.75), (t, 0.3), arrowprops={"arrowstyle": "->"})
        top.annotate("", (t, 1.8), (t, 1.25), arrowprops={"arrowstyle": "->"})
        if t + 1 < len(words):
            top.annotate("", (t + 0.7, 1.0), (t + 0.3, 1.0), arrowprops={"arrowstyle": "->"})
    top.set_title(
        "one cell, the same weights at every step: h_t = tanh(x_t W_ih + h_{t-1} W_hh + b)"
    )
    image = bottom.imshow(np.asarray(ys[0]).T, aspect="auto", cmap="coolwarm", vmin=-1, vmax=1)
    _words_axis(bottom, words)
    bottom.set_ylabel("unit of h_t")
    bottom.set_title("h_t from seqclf.ops.simple_rnn (random weights)", fontsize=9)
    fig.colorbar(image, ax=bottom, fraction=0.03)
    return _png(fig)


def vanishing_gradient() -> bytes:
    """How much the last hidden state still depends on the input k steps back, per cell."""
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    steps, features, hidden = 100, 8, 32
    xs = jax.random.normal(jax.random.PRNGKey(1), (1, steps, features))
    probe = jax.random.normal(jax.random.PRNGKey(3), (hidden,))

    @jax.jit
    def sensitivities(xs, probe):
        """(cases, T): ‖∂(probe · h_T) / ∂x_t‖ for each case, one backward pass each."""
        out = []
        for kind, forget_bias in (("rnn", 0.0), ("lstm", 0.0), ("lstm", 3.0), ("gru", 0.0)):
            params = ops.init_params(jax.random.PRNGKey(2), kind, features, hidden)
            if forget_bias:  # σ(f) ≈ 0.95: the cell state kept, as training can learn to do
                params["b_hh"] = params["b_hh"].at[hidden : 2 * hidden].add(forget_bias)

            def read_out(xs, kind=kind, params=params):
                _, state = ops.recurrence(kind)(params, xs)
                return ops.final_hidden(kind, state)[0] @ probe

            out.append(jnp.linalg.norm(jax.grad(read_out)(xs)[0], axis=-1))
        return jnp.stack(out)

    labels = ["simple RNN", "LSTM, as initialised", "LSTM, forget gate ≈ 0.95", "GRU"]
    fig, ax = plt.subplots(figsize=(7.5, 4))
    distance = steps - 1 - np.arange(steps)
    for label, norms in zip(labels, np.asarray(sensitivities(xs, probe)), strict=True):
        ax.semilogy(distance, np.maximum(norms, 1e-30), label=label)
    ax.set_ylim(1e-24, 10)  # below that the float32 gradient underflows to 0
    ax.set_xlabel("k: how many steps before the last one the input came")
    ax.set_ylabel("‖∂(u·h_T) / ∂x_(T−k)‖, u random")
    ax.set_title("Why a simple RNN forgets: the gradient through k steps (random weights)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def _lstm_gates(params, xs: np.ndarray) -> dict[str, np.ndarray]:
    """σ(i), σ(f), σ(o), c_t and h_t of one sequence, step by step from the equations."""
    w_ih, w_hh = np.asarray(params["w_ih"]), np.asarray(params["w_hh"])
    b = np.asarray(params["b_ih"]) + np.asarray(params["b_hh"])
    hidden = w_hh.shape[0]
    h, c = np.zeros(hidden), np.zeros(hidden)
    out = {k: [] for k in ("input gate σ(i)", "forget gate σ(f)", "output gate σ(o)", "c_t", "h_t")}
    sigmoid = lambda z: 1 / (1 + np.exp(-z))  # noqa: E731
    for x in xs:
        i, f, g, o = np.split(x @ w_ih + h @ w_hh + b, 4)
        c = sigmoid(f) * c + sigmoid(i) * np.tanh(g)
        h = sigmoid(o) * np.tanh(c)
        for key, value in zip(out, (sigmoid(i), sigmoid(f), sigmoid(o), c, h), strict=True):
            value_list = out[key]
            value_list.append(value)
    return {k: np.stack(v) for k, v in out.items()}


def lstm_gates() -> bytes:
    """LSTM gate activations, cell state and hidden state over a sentence (random weights)."""
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    xs = _embed(SENTENCE, 8)

    @jax.jit
    def run(xs):
        params = ops.init_params(jax.random.PRNGKey(3), "lstm", 8, 6)
        ys, (_, c_n) = ops.lstm(params, xs[None])
        return params, ys[0], c_n[0]

    params, ys, c_n = jax.device_get(run(jnp.asarray(xs)))
    gates = _lstm_gates(params, xs)
    # The figure's numbers are seqclf's: the step-by-step equations give ops.lstm's h_t and c_T.
    np.testing.assert_allclose(gates["h_t"], ys, atol=1e-5)
    np.testing.assert_allclose(gates["c_t"][-1], c_n, atol=1e-5)
    fig, axes = plt.subplots(len(gates), 1, figsize=(8, 8.5), sharex=True)
    for ax, (name, values) in zip(axes, gates.items(), strict=True):
        gate = name.startswith(("input", "forget", "output"))
        image = ax.imshow(
            values.T,
            aspect="auto",
            cmap="viridis" if gate else "coolwarm",
            vmin=0 if gate else -1,
            vmax=1,
        )
        ax.set_ylabel(name, fontsize=8)
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.03)
    _words_axis(axes[-1], SENTENCE)
    axes[0].set_title("LSTM over a sentence: 6 units, one column per word (seqclf.ops.lstm)")
    return _png(fig)


def gru_gates() -> bytes:
    """GRU update gate z_t and hidden state h_t over a sentence (random weights)."""
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    xs = _embed(SENTENCE, 8)

    @jax.jit
    def run(xs):
        params = ops.init_params(jax.random.PRNGKey(4), "gru", 8, 6)
        return params, ops.gru(params, xs[None])[0][0]

    params, ys = jax.device_get(run(jnp.asarray(xs)))
    hs = np.concatenate([np.zeros((1, 6)), ys])  # h_0 = 0, then h_1..h_T
    w_ih, w_hh = np.asarray(params["w_ih"]), np.asarray(params["w_hh"])
    gi = xs @ w_ih + np.asarray(params["b_ih"])
    gh = hs[:-1] @ w_hh + np.asarray(params["b_hh"])
    z = 1 / (1 + np.exp(-(gi[:, 6:12] + gh[:, 6:12])))  # gate order r, z, n
    fig, axes = plt.subplots(2, 1, figsize=(8, 3.8), sharex=True)
    for ax, values, name, cmap, low in (
        (axes[0], z, "update gate z_t", "viridis", 0),
        (axes[1], hs[1:], "h_t", "coolwarm", -1),
    ):
        image = ax.imshow(values.T, aspect="auto", cmap=cmap, vmin=low, vmax=1)
        ax.set_ylabel(name, fontsize=8)
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.03)
    _words_axis(axes[-1], SENTENCE)
    axes[0].set_title("GRU: z_t near 1 keeps h_(t-1), near 0 takes the new n_t (seqclf.ops.gru)")
    return _png(fig)


def conv_filter() -> bytes:
    """A Conv1D filter that fires on "not" + a positive word, then MaxPooling1D over it."""
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    words = "the film was not good , the cast was good , not bad at all".split()
    # Two hand-made features per word: [positive, negation].
    features = {"good": [1.0, 0.0], "bad": [-1.0, 0.0], "not": [0.0, 1.0]}
    xs = jnp.asarray([[features.get(w, [0.0, 0.0]) for w in words]])  # (1, T, 2)
    # Kernel (K=2, C_in=2, C_out=1): a negation at step t and a positive word at t + 1.
    kernel = jnp.asarray([[[0.0], [1.0]], [[1.0], [0.0]]])

    @jax.jit
    def run(xs, kernel):
        response = jnp.maximum(ops.conv1d(xs, kernel, jnp.asarray([-1.0])), 0)  # (1, T-1, 1)
        return response, ops.max_pool1d(response, 4)  # and (1, (T-1)//4, 1)

    response, pooled = (np.asarray(a) for a in run(xs, kernel))
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 4.2))
    top.bar(np.arange(response.shape[1]) + 0.5, np.asarray(response[0, :, 0]), color="#d95f02")
    _words_axis(top, words)
    top.set_xlim(-0.5, len(words) - 0.5)
    top.set_title("Conv1D, kernel 2: relu(x_t·[0, 1] + x_(t+1)·[1, 0] − 1) fires on 'not good'")
    top.set_ylabel("filter output")
    windows = [" ".join(words[4 * j : 4 * j + 5]) for j in range(pooled.shape[1])]
    bottom.bar(range(pooled.shape[1]), np.asarray(pooled[0, :, 0]), color="#7570b3")
    bottom.set_xticks(range(pooled.shape[1]))
    bottom.set_xticklabels(windows, fontsize=8)
    bottom.set_title("MaxPooling1D(4): the largest output of each window of 4", fontsize=9)
    bottom.set_ylabel("pooled")
    return _png(fig)


def forecast() -> bytes:
    """A GRU trained for a few seconds to forecast the next value at every step (seq→seq)."""
    import jax
    import jax.numpy as jnp
    import optax

    sys.path.insert(0, str(ROOT / "examples"))
    try:
        import timeseries as ts
    finally:
        sys.path.pop(0)
    rng = np.random.default_rng(0)
    train = jnp.asarray(ts.make_series(rng, 256, 64, 0.1))
    test = jnp.asarray(ts.make_series(rng, 1, 64, 0.1))
    optimizer = optax.adam(1e-2)

    @jax.jit  # the whole training (a scan over 150 steps) and the forecast in one program
    def train_and_forecast(train, test):
        params = ts.init_model(jax.random.PRNGKey(0), "gru", 16)

        def step(carry, key):
            params, opt_state = carry
            batch = train[jax.random.randint(key, (32,), 0, train.shape[0])]
            grads = jax.grad(lambda p: ts.step_mse(ts.forecast("gru", p, batch), batch))(params)
            updates, opt_state = optimizer.update(grads, opt_state, params)
            return (optax.apply_updates(params, updates), opt_state), None

        keys = jax.random.split(jax.random.PRNGKey(1), 150)
        (params, _), _ = jax.lax.scan(step, (params, optimizer.init(params)), keys)
        return ts.forecast("gru", params, test)

    predicted = np.asarray(train_and_forecast(train, test))[0]
    test = np.asarray(test)
    fig, ax = plt.subplots(figsize=(8, 3.2))
    ax.plot(test[0], "k.-", lw=1, label="series")
    ax.plot(np.arange(1, 64), predicted[:-1], lw=1.5, label="GRU forecast of x[t+1], made at t")
    ax.set_xlabel("step t")
    ax.set_title(
        "sequence→sequence: one output per step (150 training steps, examples/timeseries.py)"
    )
    ax.legend(fontsize=8)
    return _png(fig)


def bidirectional() -> bytes:
    """Forward and backward states of a bidirectional layer over a padded sequence."""
    import jax
    import jax.numpy as jnp

    from seqclf import ops

    words = SENTENCE[:9] + ["<pad>"] * 3

    @jax.jit
    def two_layers(xs, lengths):
        keys = jax.random.split(jax.random.PRNGKey(5), 4)
        first = [(ops.init_params(keys[0], "lstm", 8, 4), ops.init_params(keys[1], "lstm", 8, 4))]
        second = [(ops.init_params(keys[2], "lstm", 8, 4), ops.init_params(keys[3], "lstm", 8, 4))]
        ys1, _ = ops.recurrent_stack("lstm", first, xs, lengths, bidirectional=True)
        ys2, _ = ops.recurrent_stack("lstm", second, ys1, lengths, bidirectional=True)
        return ys1, ys2

    first, second = jax.device_get(
        two_layers(jnp.asarray(_embed(words, 8))[None], jnp.asarray([9]))
    )
    panels = {
        "layer 1, forward →": first[0, :, :4],
        "layer 1, backward ←": first[0, :, 4:],
        "layer 2 (reads layer 1), both": second[0],
    }
    fig, axes = plt.subplots(3, 1, figsize=(8, 5.2), sharex=True)
    for ax, (name, values) in zip(axes, panels.items(), strict=True):
        image = ax.imshow(np.asarray(values).T, aspect="auto", cmap="coolwarm", vmin=-0.5, vmax=0.5)
        ax.axvspan(8.5, 11.5, color="gray", alpha=0.35)
        ax.set_ylabel(name, fontsize=8)
        ax.set_yticks([])
        fig.colorbar(image, ax=ax, fraction=0.03)
    _words_axis(axes[-1], words)
    axes[0].set_title("Bidirectional, stacked: padded steps (grey) output 0 both ways")
    return _png(fig)


FIGURES: dict[str, Callable[[], bytes]] = {
    "rnn_unrolled.png": rnn_unrolled,
    "vanishing_gradient.png": vanishing_gradient,
    "lstm_gates.png": lstm_gates,
    "gru_gates.png": gru_gates,
    "conv_filter.png": conv_filter,
    "forecast.png": forecast,
    "bidirectional.png": bidirectional,
}


def render_all() -> dict[str, bytes]:
    """Every figure as PNG bytes, keyed by its path in the site."""
    sys.path.insert(0, str(ROOT))  # seqclf from this checkout, also without an install
    try:
        out = {}
        for name, draw in FIGURES.items():
            start = time.perf_counter()
            out[f"figures/{name}"] = draw()
            log.debug("figure %s in %.1f s", name, time.perf_counter() - start)
    finally:
        sys.path.remove(str(ROOT))
    for name, source in BENCH_PLOTS.items():
        out[f"figures/bench/{name}"] = (ROOT / source).read_bytes()
    return out


def on_files(files, config):
    """mkdocs event: add the figures to the site's files."""
    from mkdocs.structure.files import File

    start = time.perf_counter()
    for uri, content in render_all().items():
        files.append(File.generated(config, uri, content=content))
    log.info("figures: drawn in %.1f s", time.perf_counter() - start)
    return files
