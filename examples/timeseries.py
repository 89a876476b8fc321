"""Sequence-to-sequence forecasting: predict x[t+1] from x[0..t] at every step of a noisy signal.

Each series is a sum of three sines with fixed periods and random amplitudes and phases, plus
Gaussian noise (standard deviation ``--noise``). An LSTM and a GRU read the series and a linear
read-out of each step's hidden state forecasts the next value; the loss is the mean squared
error over all steps. No model can beat the noise floor ``noise**2``.

Baselines on the same test series: "repeat last" (x̂[t+1] = x[t], the naive forecast) and a
linear autoregression on the last ``--ar-order`` values fitted by least squares on the training
series (a strong classical baseline for sums of sines). The MSE is measured over the steps after
a warm-up of ``--warmup`` steps, where every model has seen enough of the series.

The run writes a forecast plot to ``--plot`` (a PNG): one test series, the recurrent models'
one-step forecasts and the AR baseline's. Pure ``seqclf.ops`` functions and optax, no Flax.

    python examples/timeseries.py             # the full run, well under a minute on 2 cores
    python examples/timeseries.py --steps 20 --plot /tmp/ts.png  # a quick smoke run
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from seqclf import ops

PERIODS = (6.3, 15.7, 37.1)  # in steps


def make_series(rng: np.random.Generator, count: int, length: int, noise: float) -> np.ndarray:
    """(count, length) float32 series: sum of sines with random amplitudes/phases, plus noise."""
    t = np.arange(length)[None, :]
    series = np.zeros((count, length))
    for period in PERIODS:
        amplitude = rng.uniform(0.3, 1.0, (count, 1))
        phase = rng.uniform(0, 2 * np.pi, (count, 1))
        series += amplitude * np.sin(2 * np.pi * t / period + phase)
    return (series + noise * rng.normal(size=series.shape)).astype(np.float32)


def init_model(key: jax.Array, kind: str, hidden: int) -> dict[str, Any]:
    """Recurrent layer (1 -> H) and a per-step linear read-out (H -> 1)."""
    k_rnn, k_out = jax.random.split(key)
    return {
        "rnn": ops.init_params(k_rnn, kind, 1, hidden),
        "w_out": jax.random.normal(k_out, (hidden,)) / jnp.sqrt(hidden),
        "b_out": jnp.zeros(()),
    }


def forecast(kind: str, params: dict[str, Any], series: jax.Array) -> jax.Array:
    """(B, T) series -> (B, T) forecasts; entry t predicts series[:, t + 1]."""
    ys, _ = ops.recurrence(kind)(params["rnn"], series[:, :, None])
    return ys @ params["w_out"] + params["b_out"]


def step_mse(predictions: jax.Array, series: jax.Array, warmup: int = 0) -> jax.Array:
    """MSE of ``predictions[:, t]`` against ``series[:, t + 1]`` over ``t >= warmup``."""
    return jnp.mean((predictions[:, warmup:-1] - series[:, warmup + 1 :]) ** 2)


def fit_autoregression(train: np.ndarray, order: int) -> np.ndarray:
    """Least-squares AR(order) coefficients (order + 1,), the last one the intercept."""
    windows = np.lib.stride_tricks.sliding_window_view(train, order + 1, axis=1)
    lags = windows[..., :-1].reshape(-1, order)
    design = np.concatenate([lags, np.ones((lags.shape[0], 1))], axis=1)
    coef, *_ = np.linalg.lstsq(design, windows[..., -1].reshape(-1), rcond=None)
    return coef


def autoregression_forecast(series: np.ndarray, coef: np.ndarray) -> np.ndarray:
    """(B, T) forecasts of an AR model; entries t < order (too little history) are NaN."""
    order = coef.shape[0] - 1
    out = np.full(series.shape, np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(series, order, axis=1)  # ends at t
    out[:, order - 1 :] = windows @ coef[:-1] + coef[-1]
    return out


def train_and_evaluate(
    kind: str, args: argparse.Namespace, train: np.ndarray, test: np.ndarray
) -> tuple[dict[str, float], dict[str, Any]]:
    """Train one recurrent forecaster on ``train`` (N, T).

    Returns:
      ``({"test_mse", "last_train_mse", "seconds"}, params)``.
    """
    init_key, data_key = jax.random.split(jax.random.key(args.seed))
    params = init_model(init_key, kind, args.hidden)
    optimizer = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(args.lr))
    opt_state = optimizer.init(params)
    train = jnp.asarray(train)

    @jax.jit
    def train_step(params, opt_state, step):
        rows = jax.random.randint(jax.random.fold_in(data_key, step), (args.batch,), 0, len(train))
        batch = train[rows]
        loss, grads = jax.value_and_grad(lambda p: step_mse(forecast(kind, p, batch), batch))(
            params
        )
        updates, opt_state = optimizer.update(grads, opt_state, params)
        return optax.apply_updates(params, updates), opt_state, loss

    start = time.perf_counter()
    loss = jnp.nan
    for step in range(args.steps):
        params, opt_state, loss = train_step(params, opt_state, step)
    jax.block_until_ready(params)
    seconds = time.perf_counter() - start
    test = jnp.asarray(test)
    test_mse = jax.jit(lambda p: step_mse(forecast(kind, p, test), test, args.warmup))(params)
    metrics = {"test_mse": float(test_mse), "last_train_mse": float(loss), "seconds": seconds}
    return metrics, params


def plot_forecast(
    series: np.ndarray, forecasts: dict[str, np.ndarray], warmup: int, path: Path
) -> Path:
    """A (T,) series and each model's (T,) one-step forecasts (entry t predicts t + 1), as PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 3.5))
    steps = np.arange(len(series))
    ax.plot(steps, series, "k.-", lw=1, label="series (observed)")
    for name, values in forecasts.items():
        ax.plot(steps[1:], values[:-1], lw=1.5, label=f"{name} forecast of the next step")
    ax.axvspan(0, warmup, color="gray", alpha=0.15, label="warm-up (not scored)")
    ax.set_xlabel("step t")
    ax.set_title("Sequence→sequence: a forecast at every step")
    ax.legend(fontsize=8, loc="upper right")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seq-len", type=int, default=64, help="steps per series T")
    parser.add_argument("--noise", type=float, default=0.1, help="noise standard deviation")
    parser.add_argument("--train-size", type=int, default=2000, help="training series")
    parser.add_argument("--test-size", type=int, default=500, help="test series")
    parser.add_argument("--hidden", type=int, default=32, help="hidden size H")
    parser.add_argument("--steps", type=int, default=800, help="training steps per model")
    parser.add_argument("--batch", type=int, default=32, help="batch size")
    parser.add_argument("--lr", type=float, default=1e-2, help="Adam learning rate")
    parser.add_argument("--warmup", type=int, default=16, help="steps left out of the test MSE")
    parser.add_argument("--ar-order", type=int, default=12, help="lags of the AR baseline")
    parser.add_argument("--kinds", default="lstm,gru", help="comma-separated models")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--plot", type=Path, default=Path("timeseries.png"), help="the forecast-plot PNG"
    )
    args = parser.parse_args(argv)
    if not args.ar_order <= args.warmup + 1 <= args.seq_len - 1:
        parser.error("need ar-order <= warmup + 1 <= seq-len - 1")
    return args


def main(argv: list[str] | None = None) -> dict[str, Any]:
    """Run the experiment and print a table.

    Returns:
      ``{"noise_floor": float, "baselines": {name: test MSE}, "models": {kind: {"test_mse",
      "last_train_mse", "seconds"}}, "plot": Path, "config": dict}``.
    """
    args = parse_args(argv)
    rng = np.random.default_rng(args.seed)
    train = make_series(rng, args.train_size, args.seq_len, args.noise)
    test = make_series(rng, args.test_size, args.seq_len, args.noise)
    repeat_last = float(step_mse(test, test, args.warmup))
    coef = fit_autoregression(train, args.ar_order)
    ar = float(step_mse(autoregression_forecast(test, coef), test, args.warmup))
    baselines = {"repeat last": repeat_last, f"AR({args.ar_order})": ar}
    print(
        f"forecasting x[t+1]: T={args.seq_len}, noise={args.noise}, H={args.hidden}, "
        f"{args.steps} steps of {args.batch}, Adam lr={args.lr}"
    )
    models, params = {}, {}
    for kind in args.kinds.split(","):
        models[kind], params[kind] = train_and_evaluate(kind, args, train, test)
    print(f"\n{'model':<13}{'test MSE':>10}{'/ repeat last':>15}{'train s':>9}")
    print(f"{'noise floor':<13}{args.noise**2:>10.4f}{args.noise**2 / repeat_last:>15.2f}")
    for name, value in baselines.items():
        print(f"{name:<13}{value:>10.4f}{value / repeat_last:>15.2f}")
    for kind, result in models.items():
        ratio = result["test_mse"] / repeat_last
        print(f"{kind:<13}{result['test_mse']:>10.4f}{ratio:>15.2f}{result['seconds']:>9.1f}")
    first = test[:1]
    forecasts = {
        k.upper(): np.asarray(forecast(k, p, jnp.asarray(first)))[0] for k, p in params.items()
    }
    forecasts[f"AR({args.ar_order})"] = autoregression_forecast(first, coef)[0]
    plot = plot_forecast(first[0], forecasts, args.warmup, args.plot)
    print(f"\nForecast plot: {plot}")
    return {
        "noise_floor": args.noise**2,
        "baselines": baselines,
        "models": models,
        "plot": plot,
        "config": vars(args),
    }


if __name__ == "__main__":
    main()
