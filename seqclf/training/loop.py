"""The training loop: ``train_epoch`` (one pass over the data) and ``fit`` (epochs, validation
and callbacks).

``fit`` reads top-down as the loop it is; each extra behaviour is a callback
(``seqclf.training.callbacks``), in the order ``standard_callbacks`` gives. A run interrupted
by SIGINT/SIGTERM and resumed ends with the same parameters and history as an uninterrupted one
(bitwise on CPU; ``seconds`` aside): the dropout key of a step is folded from its number, the
shuffle is seeded by (seed, epoch), and checkpoints carry the ``Progress`` and running sums.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from tqdm.auto import tqdm

from seqclf.data.batching import batches, num_batches, pad_batch
from seqclf.data.preprocessing import TextConfig
from seqclf.distributed import DataParallel, is_primary
from seqclf.recipe import (
    DataProfile,
    class_weights,
    describe,
    resolve_text_config,
    resolve_train_config,
)
from seqclf.training import step as steps
from seqclf.training.callbacks import (
    Callback,
    CallbackList,
    Checkpoint,
    EarlyStopping,
    FitHeadWeights,
    FitNbsvmHead,
    LossGuard,
    LossWatch,
    MetricsLog,
    ProgressBar,
    StopOnSignal,
    TimeBudget,
    TrainingDiverged,
    explain_divergence,
)
from seqclf.training.config import TrainConfig
from seqclf.training.evaluation import config_batches, evaluate
from seqclf.training.run import Run, RunningMetrics, StepMetrics
from seqclf.training.state import TrainState, create_train_state

Data = tuple[Sequence[np.ndarray], np.ndarray]  # (token_ids: (T_i,) int arrays, labels: (N,))


@dataclasses.dataclass
class FitResult:
    """What ``fit`` leaves: the final state, the per-epoch history and how it ended."""

    state: TrainState = dataclasses.field(repr=False)  # printing a run shows no arrays
    history: list[dict[str, Any]]
    stopped_by: str  # "completed", "early_stopping", "time_budget", "already_finished" or a signal
    best_step: int | None


class _PendingMetrics:
    """Steps' [loss, accuracy] still on the device; fetched together (each fetch waits for it)."""

    def __init__(self, run: Run, callbacks: Callback):
        self.run, self.callbacks = run, callbacks
        self.steps: list[tuple[int, jax.Array]] = []

    def add(self, step: int, values: jax.Array) -> None:
        self.steps.append((step, values))

    def fetch(self) -> None:
        """Fetch them, add them to the running sums and show them to the callbacks."""
        if not self.steps:
            return
        values = np.asarray(jnp.stack([v for _, v in self.steps]), dtype=np.float64).tolist()
        fetched = [
            StepMetrics(s, loss, acc)
            for (s, _), (loss, acc) in zip(self.steps, values, strict=True)
        ]
        self.steps.clear()
        self.run.progress.running.add(fetched)
        self.callbacks.on_step_metrics(self.run, fetched)


def train_epoch(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray,
    config: TrainConfig,
    text: TextConfig,
    epoch: int,
    *,
    skip_batches: int = 0,
    progress: bool = True,
    run: Run | None = None,
    callbacks: Callback | None = None,
) -> tuple[TrainState, dict[str, float], int]:
    """One pass over the shuffled training data (shuffle seeded by (seed, epoch)).

    The buffers of ``state`` are reused for the new state (donated to the step): use the state
    returned, not the one passed in.

    Args:
      text: the resolved ``TextConfig`` the batches are truncated and padded by.
      skip_batches: batches of this epoch already done (resuming mid-epoch); ignored with
        ``run`` (``run.progress.batch`` says it).
      progress: show a progress bar (without ``callbacks``).
      run: the ``Run`` of ``fit`` (None: a run of this one epoch); ``run.state`` follows each
        step, ``run.progress`` counts the batches and holds the running sums.
      callbacks: called ``on_step_end`` and ``on_step_metrics`` (``fit`` calls the epoch's
        other hooks); None: a ``LossGuard`` (non-finite losses) and a ``ProgressBar``, with
        ``on_epoch_begin`` and ``on_epoch_trained`` called here.

    Returns:
      ``(state, {"train_loss", "train_accuracy"}, batches_done_in_epoch)``.

    Raises:
      TrainingDiverged: a loss was NaN or infinite, or exploded (the message names the step).
    """
    alone = callbacks is None
    if run is None:
        steps_per_epoch = num_batches(len(token_ids), config.batch_size)
        run = Run(config, state, steps_per_epoch, text, epoch=epoch)
        run.show_progress, run.progress.batch = progress, skip_batches
    if run.progress.running is None:
        run.progress.running = RunningMetrics()
    callbacks = CallbackList([LossGuard(), ProgressBar()]) if alone else callbacks
    if alone:
        callbacks.on_epoch_begin(run)
    stream = config_batches(
        token_ids, labels, config, text, shuffle=True, seed=config.seed, epoch=epoch
    )
    parallel = DataParallel.of(run.state)  # the batch is split over the devices of the state
    num_classes = int(np.max(labels, initial=0)) + 1
    weigh = class_weights(np.bincount(labels, minlength=num_classes), config.class_weighting)
    pending = _PendingMetrics(run, callbacks)
    run.sync, run.step = pending.fetch, int(run.state.step)  # the step: one wait per epoch
    skip = run.progress.batch
    # Lazy Adam's table is caught up with dense Adam at the epoch's end and every save_every
    # batches: points fixed by the config, so a resumed run catches up where the original did.
    lazy = run.state.lazy_embedding
    for i, batch in enumerate(stream):
        if i < skip:
            continue
        padded, _ = pad_batch(batch, config.batch_size)
        padded["weights"] = padded["weights"] * weigh[padded["labels"]]
        run.state, values = steps.train_step_in_place(
            run.state, parallel.shard({k: padded[k] for k in steps.TRAIN_KEYS})
        )
        pending.add(run.step, values)
        run.step, run.progress.batch = run.step + 1, i + 1
        if lazy and config.save_every and run.progress.batch % config.save_every == 0:
            run.state = steps.caught_up_in_place(run.state)  # before a checkpoint may be saved
        if len(pending.steps) >= config.log_every:
            pending.fetch()
        callbacks.on_step_end(run)
        if run.stop_reason is not None or run.end_epoch:
            break
    pending.fetch()
    if lazy:  # what is validated and saved is dense Adam's table
        run.state = steps.caught_up_in_place(run.state)
    metrics = run.progress.running.means()
    if alone:
        callbacks.on_epoch_trained(run, metrics)
    return run.state, metrics, run.progress.batch


def standard_callbacks(
    model: Any, run: Run, train: Data, valid: Data, *, store: Any | None = None,
    meta: dict[str, Any] | None = None, resume: bool = False,
    output_dir: str | Path | None = None, resume_hint: str | None = None,
    exit_message: str | None = None, extra: Sequence[Callback] = (),
) -> CallbackList:  # fmt: skip
    """``fit``'s callbacks, in the order their messages and effects must come (the user's
    ``extra`` after seqclf's, before signal handling, which is installed last and removed first).
    """
    num_classes = int(max(np.max(train[1]), np.max(valid[1]))) + 1
    return CallbackList([
        FitHeadWeights(valid),  # adds the epoch's head weights to its record before it is saved
        Checkpoint(store, meta, resume=resume, resume_hint=resume_hint),
        MetricsLog(output_dir, store, resume_hint),
        TimeBudget(run.config.time_budget),
        ProgressBar(),
        FitNbsvmHead(model, train, valid),
        LossGuard(LossWatch(num_classes, heads=run.state.heads.trained_heads)),
        EarlyStopping(run.config.patience),
        *extra,
        StopOnSignal(exit_message),
    ])  # fmt: skip


def start_run(
    model: Any, train: Data, config: TrainConfig, text: TextConfig | None, progress: bool
) -> Run:
    """A fresh ``Run``: ``config`` and ``text`` resolved from the training split
    (``seqclf.recipe``, what it chose printed) and the state initialised."""
    train_ids, train_labels = train
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    profile = DataProfile.of(
        train_ids, train_labels, num_classes or int(train_labels.max(initial=0)) + 1
    )
    text, chosen_text = resolve_text_config(text or TextConfig(), profile)
    config, chosen = resolve_train_config(config, profile)
    chosen = {k: v for k, v in {**chosen_text, **chosen}.items() if k != "vocab_size"}
    show = progress and is_primary()  # one progress bar and log per run, not per host
    if chosen and show:
        tqdm.write(f"Training settings from the data: {describe(chosen)}.")
    if config.batch_size > len(train_ids):
        warnings.warn(
            f"batch_size {config.batch_size} is larger than the training set "
            f"({len(train_ids)} examples): every step uses all {len(train_ids)} of them",
            stacklevel=3,
        )
    steps_per_epoch = num_batches(len(train_ids), config.batch_size)
    example = next(batches(train_ids[:2], None, 2, max_len=text.max_len, buckets=text.buckets))
    state = create_train_state(model, config, config.epochs * steps_per_epoch, example)
    return Run(config, state, steps_per_epoch, text, show_progress=show)


def fit(
    model: Any, train: Data, valid: Data, config: TrainConfig, *, text: TextConfig | None = None,
    store: Any | None = None, meta: dict[str, Any] | None = None, resume: bool = False,
    output_dir: str | Path | None = None, progress: bool = True,
    resume_hint: str | None = None, exit_message: str | None = None,
    callbacks: Sequence[Callback] = (),
) -> FitResult:  # fmt: skip
    """Train with per-epoch validation, checkpoints, early stopping and clean interruption.

    Args:
      model: a Flax module taking ``(tokens, lengths, train=...)``.
      train, valid: ``(token_ids, labels)`` pairs (lists of (T_i,) int arrays, (N,) ints).
      config: the ``TrainConfig``; fields left at None are resolved from ``train``.
      text: the ``TextConfig`` the batches are truncated and padded by (its fields left at None,
        or all of it when None, resolved from ``train``; the vocabulary is not built here).
      store: a ``CheckpointStore`` (None: no checkpoints); ``meta``: saved with each one.
      resume: continue from the latest checkpoint in ``store``.
      output_dir: where ``metrics.jsonl`` and ``training_curves.png`` go (None: nowhere).
      progress: show tqdm bars.
      resume_hint: the command that resumes this run, printed when it is interrupted.
      exit_message: given, a second SIGINT/SIGTERM prints it and ends the process (130).
      callbacks: your own ``Callback``s, called after seqclf's (``standard_callbacks``).

    Returns:
      A ``FitResult`` ("already_finished": ``resume`` found the run done; nothing trained).

    Raises:
      ValueError: an empty training or validation set.
      TrainingDiverged: a NaN, infinite or exploding loss (``LossGuard``); the message names
        the step and the last good checkpoint, which stays as it was.
      seqclf.checkpoint.DiskFullError: no space left while saving (says how to resume).
    """
    if len(train[0]) == 0 or len(valid[0]) == 0:
        raise ValueError(f"the {'training' if len(train[0]) == 0 else 'validation'} set is empty")
    train = (train[0], np.asarray(train[1]))
    run = start_run(model, train, config, text, progress)
    hooks = standard_callbacks(
        model, run, train, valid, store=store, meta=meta, resume=resume, output_dir=output_dir,
        resume_hint=resume_hint, exit_message=exit_message, extra=callbacks,
    )  # fmt: skip
    try:
        hooks.on_train_begin(run)
        for epoch in range(run.progress.epoch, run.config.epochs):
            run.epoch, run.end_epoch = epoch, False
            if run.stop_reason is None:
                hooks.on_epoch_begin(run)
            if run.stop_reason is not None:  # before the epoch: it is not started
                break
            started = time.perf_counter()
            if run.progress.running is None or run.progress.batch == 0:
                run.progress.running = RunningMetrics()
            _, train_metrics, done = train_epoch(
                run.state, *train, run.config, run.text, epoch, run=run, callbacks=hooks
            )
            hooks.on_epoch_trained(run, train_metrics)
            if run.stop_reason is not None and done < run.steps_per_epoch:
                break  # stopped within the epoch: no validation of a part of it
            run.validation = hooks.on_validate(run) or evaluate(
                run.state, *valid, run.config, run.text, desc="validate",
                progress=run.show_progress,
            )  # fmt: skip
            run.history.append(epoch_record(run, train_metrics, started))
            run.progress.epoch_done(run.validation["accuracy"])
            hooks.on_epoch_end(run, run.history[-1])
    except BaseException as err:
        run.error = err
        if isinstance(err, TrainingDiverged):
            raise explain_divergence(err, store) from err
        raise
    finally:
        run.ended = True
        hooks.on_train_end(run)
    return FitResult(run.state, run.history, run.stopped_by, store.best_step() if store else None)


def _rounded(value: Any) -> Any:
    """A metric for the log: floats to 6 digits, lists element by element (None kept)."""
    if isinstance(value, list):
        return [None if v is None else round(float(v), 6) for v in value]
    return round(float(value), 6)


def epoch_record(run: Run, train_metrics: dict[str, float], started: float) -> dict[str, Any]:
    """The epoch's line of ``metrics.jsonl``: its train and validation metrics, rounded."""
    return {
        "epoch": run.epoch + 1,
        "step": int(run.state.step),
        **{k: round(float(v), 6) for k, v in train_metrics.items()},
        **{f"val_{k}": _rounded(v) for k, v in run.validation.items()},
        "seconds": round(time.perf_counter() - started, 2),
    }
