"""Training, top-down: create_train_state → train_step → train_epoch → evaluate → fit.

``train_step`` and ``eval_step`` are pure and jit-compiled once per padded length (the batches come
in a few length buckets). Randomness is explicit: the dropout key of a step is the run's key folded
with the step number, so a resumed run draws exactly the keys an uninterrupted one would.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training import train_state
from tqdm.auto import tqdm

from seqclf.checkpoint import DiskFullError, mount_point
from seqclf.data.batching import batches, bucket_boundaries, num_batches, pad_batch
from seqclf.distributed import DataParallel, is_primary
from seqclf.head_weights import fit_head_weights, weighted_log_probs
from seqclf.lazy_embedding import LAZY, apply_row_updates, lazy_adam, value_and_row_grad
from seqclf.metrics import classification_metrics
from seqclf.model import EMBEDDED, HeadSpec
from seqclf.recipe import DataProfile, class_weights, describe, resolve_train_config

CLASS_WEIGHTINGS = ("sqrt", "balanced", "none")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train (saved with every checkpoint).

    The four fields that depend most on the data default to None, "from the data": ``fit`` and
    ``train_text_classifier`` resolve them from the training split by the rules of
    ``seqclf.recipe`` (and print what they chose); the resolved values are what is saved.

    Attributes:
      epochs: the most passes over the training data (early stopping and ``time_budget`` may end
        training sooner); None: from the data.
      batch_size: examples per step; None: from the data.
      learning_rate: peak learning rate of the warm-up + cosine-decay schedule.
      ngram_learning_rate: peak learning rate of the n-gram heads' parameters (NBSVM and
        fastText, the model's ``NGRAM_PARAMS``), on the same schedule; 0 uses
        ``learning_rate``. A bag of hashed n-grams sees each bucket in few batches and learns
        best with a larger rate than the recurrent part (fastText itself trains at 0.05-0.5).
      warmup_fraction: share of all steps spent warming up linearly from 0.
      end_lr_fraction: the learning rate at the last step, as a share of the peak.
      weight_decay: AdamW's decoupled weight decay (0 is Adam).
      clip_norm: clip gradients to this global norm (0 for none).
      lazy_embedding: update only the embedding rows of the words in each batch (lazy Adam,
        ``seqclf.lazy_embedding``): far less work per step with a large vocabulary; the rows of
        absent words keep their moments instead of decaying them.
      patience: stop after this many epochs without a better validation accuracy (0: never).
      time_budget: seconds of training after which the run stops at the end of the current step,
        validates and saves as after any epoch (0: no limit); an epoch that would not end
        within the budget is not started.
      class_weighting: how much each class weighs in the loss: "sqrt" (rare classes weigh
        more, by the square root of their rarity), "balanced" (each class as much) or "none"
        (``seqclf.recipe.class_weights``).
      max_len: longer texts are truncated to this many tokens; None: from the data.
      truncating: "pre" keeps the end of a long text (Keras' default), "post" keeps the start.
      num_buckets: padded lengths per epoch (fewer compiled shapes vs less padding); None: from
        the data (``seqclf.recipe``).
      max_words: vocabulary size, padding and out-of-vocabulary ids included; None: every
        word of the training split up to ``seqclf.recipe.MAX_VOCABULARY``.
      seed: seeds initialisation, shuffling and dropout.
      save_every: also checkpoint every this many steps within an epoch (0: only per epoch).
      log_every: steps between progress-bar updates (each one waits for the device).
    """

    epochs: int | None = None
    batch_size: int | None = None
    learning_rate: float = 2e-3
    ngram_learning_rate: float = 1e-2
    warmup_fraction: float = 0.05
    end_lr_fraction: float = 0.05
    weight_decay: float = 0.0
    clip_norm: float = 1.0
    lazy_embedding: bool = False
    patience: int = 2
    time_budget: float = 3600.0
    class_weighting: str = "sqrt"
    max_len: int | None = None
    truncating: str = "pre"
    num_buckets: int | None = None
    max_words: int | None = None
    seed: int = 0
    save_every: int = 0
    log_every: int = 20

    def __post_init__(self) -> None:
        problems = []
        for f in dataclasses.fields(self):  # NaN passes every comparison below: reject it first
            value = getattr(self, f.name)
            if isinstance(value, float) and not math.isfinite(value):
                problems.append(f"{f.name} must be a finite number, got {value}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))
        for name in ("epochs", "batch_size", "max_len", "num_buckets", "log_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be >= 1, got {value}")
        if self.max_words is not None and self.max_words < 3:
            problems.append(f"max_words must be >= 3, got {self.max_words}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            problems.append(
                f"class_weighting must be one of {CLASS_WEIGHTINGS}, got {self.class_weighting!r}"
            )
        if not self.time_budget >= 0:
            problems.append(f"time_budget must be >= 0 seconds, got {self.time_budget}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
        if self.truncating not in ("pre", "post"):
            problems.append(f"truncating must be 'pre' or 'post', got {self.truncating!r}")
        if not 0 <= self.warmup_fraction < 1:
            problems.append(f"warmup_fraction must be in [0, 1), got {self.warmup_fraction}")
        for name in (
            "patience",
            "save_every",
            "clip_norm",
            "weight_decay",
            "ngram_learning_rate",
            "end_lr_fraction",
        ):
            if getattr(self, name) < 0:
                problems.append(f"{name} must be >= 0, got {getattr(self, name)}")
        if problems:
            raise ValueError("invalid training configuration: " + "; ".join(problems))

    @property
    def resolved(self) -> bool:
        """True when no field is left to the data (see ``seqclf.recipe``)."""
        fields = (self.epochs, self.batch_size, self.max_len, self.max_words, self.num_buckets)
        return None not in fields

    @property
    def buckets(self) -> list[int]:
        if self.max_len is None or self.num_buckets is None:
            raise ValueError(
                "max_len or num_buckets is None (from the data): resolve the config first "
                "(seqclf.recipe.resolve_train_config), or give them"
            )
        return bucket_boundaries(self.max_len, self.num_buckets)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


TRAIN_KEYS = ("tokens", "lengths", "labels", "weights")


class TrainState(train_state.TrainState):
    """Flax's TrainState (step, params, opt_state, apply_fn, tx) plus the run's base dropout key,
    the model's ``HeadSpec`` and whether its embedding table is updated lazily.

    With ``lazy_embedding`` the table's gradient is row-sparse (``seqclf.lazy_embedding``): ``tx``
    takes the batch's rows as the extra argument ``embedding_rows`` and its update of the table
    is added to those rows only (``apply_gradients``).
    """

    dropout_key: jax.Array
    heads: HeadSpec = struct.field(pytree_node=False, default=HeadSpec())
    lazy_embedding: bool = struct.field(pytree_node=False, default=False)

    def apply_gradients(self, *, grads: Any, embedding_rows: jax.Array | None = None) -> TrainState:
        """One optimizer step: ``tx.update`` then the updates added to the parameters.

        Args:
          grads: the gradient, the tree of ``params``; under ``lazy_embedding`` the table's leaf
            is (N, E), the gradient of the rows ``embedding_rows`` (N,).
        """
        if not self.lazy_embedding:
            updates, opt_state = self.tx.update(grads, self.opt_state, self.params)
            params = optax.apply_updates(self.params, updates)
        else:
            updates, opt_state = self.tx.update(
                grads, self.opt_state, self.params, embedding_rows=embedding_rows
            )
            params = apply_row_updates(self.params, updates, embedding_rows, self.heads.embedding)
        return self.replace(step=self.step + 1, params=params, opt_state=opt_state)


class TrainingDiverged(RuntimeError):
    """The loss became NaN or infinite, or exploded (``LossWatch``).

    Attributes:
      since_step: the first step of the explosion (checkpoints up to it are good); None for a
        NaN or infinite loss (every checkpoint is good: parameters are checked before saving).
    """

    def __init__(self, message: str, since_step: int | None = None):
        super().__init__(message)
        self.since_step = since_step


EXPLODED_FACTOR = 10  # a loss this many times a uniform guess's (log C per head) has exploded...
EXPLODED_STEPS = 10  # ...when it stays there this many steps in a row (or a whole epoch)


class LossWatch:
    """Stops a run whose training loss exploded without becoming NaN.

    The rule follows from the data: an untrained classifier predicts about uniformly, so its loss
    starts near log C (C classes; summed over the heads of a multi-head model), and learning
    only lowers it. A loss above ``EXPLODED_FACTOR`` × that for ``EXPLODED_STEPS`` steps in a
    row, or as the mean of a whole epoch, is not noise: the updates are too large (e.g.
    ``--learning-rate 1e6`` gives losses near 1e6 and validation at chance). A healthy run may
    cross the line for a step or two after a bad batch; it does not stay there.

    Args:
      num_classes: C.
      heads: how many heads' losses are summed into the training loss.
    """

    def __init__(self, num_classes: int, heads: int = 1):
        self.limit = EXPLODED_FACTOR * heads * float(np.log(max(num_classes, 2)))
        self.streak = 0
        self.since_step: int | None = None

    def check(self, step: int, loss: float, epoch: int) -> None:
        """One step's loss; raises ``TrainingDiverged`` once the rule is met."""
        if loss <= self.limit:
            self.streak, self.since_step = 0, None
            return
        self.streak += 1
        self.since_step = step if self.since_step is None else self.since_step
        if self.streak >= EXPLODED_STEPS:
            self.raise_exploded(f"{EXPLODED_STEPS} steps in a row", step, loss, epoch)

    def check_epoch(self, first_step: int, mean_loss: float, epoch: int) -> None:
        """An epoch's mean loss (for epochs shorter than ``EXPLODED_STEPS``)."""
        if mean_loss > self.limit:
            since = self.since_step if self.since_step is not None else first_step
            self.since_step = since
            self.raise_exploded("a whole epoch (its mean)", None, mean_loss, epoch)

    def raise_exploded(self, how: str, step: int | None, loss: float, epoch: int) -> None:
        at = f" at step {step}" if step is not None else ""
        raise TrainingDiverged(
            f"the training loss exploded: {loss:.3g}{at} (epoch {epoch + 1}), above "
            f"{self.limit:.3g} ({EXPLODED_FACTOR}x the loss of a uniform guess) for {how} since "
            f"step {self.since_step}; try a lower --learning-rate or a smaller --clip-norm",
            since_step=self.since_step,
        )


def learning_rate_schedule(config: TrainConfig, total_steps: int, peak: float) -> optax.Schedule:
    """Linear warm-up from 0 to ``peak``, then cosine decay to ``peak * end_lr_fraction``."""
    warmup = int(config.warmup_fraction * total_steps)
    return optax.warmup_cosine_decay_schedule(
        init_value=0.0,
        peak_value=peak,
        warmup_steps=warmup,
        decay_steps=max(total_steps, warmup + 1),
        end_value=peak * config.end_lr_fraction,
    )


def make_optimizer(
    config: TrainConfig, total_steps: int, heads: HeadSpec | None = None
) -> optax.GradientTransformationExtraArgs:
    """Gradient clipping, then Adam(W) on a linear warm-up + cosine-decay schedule.

    Which parameter gets which optimizer the model says (``heads``, its ``HeadSpec``): the n-gram
    heads' parameters get their own Adam(W) with peak rate ``config.ngram_learning_rate`` when it
    is set (same schedule shape); the fitted parameters (head weights, NBSVM head) are left as
    they are, even under weight decay; with ``config.lazy_embedding`` the embedding table gets
    lazy Adam (``seqclf.lazy_embedding.lazy_adam``: its gradient is row-sparse, the update then
    needs the extra argument ``embedding_rows``); everything else uses ``learning_rate``. The
    clipping covers every gradient together, the table's rows included.
    """
    heads = heads or HeadSpec()

    def adam(peak: float) -> optax.GradientTransformation:
        schedule = learning_rate_schedule(config, total_steps, peak)
        return optax.adamw(schedule, weight_decay=config.weight_decay)

    parts = [optax.clip_by_global_norm(config.clip_norm)] if config.clip_norm > 0 else []
    transforms = {
        "rest": adam(config.learning_rate),
        "ngram": adam(config.ngram_learning_rate or config.learning_rate),
        "fitted": optax.set_to_zero(),
    }
    if config.lazy_embedding:  # only then: a dense run's optimizer state keeps its old layout
        schedule = learning_rate_schedule(config, total_steps, config.learning_rate)
        transforms[LAZY] = lazy_adam(schedule, weight_decay=config.weight_decay)

    def labels(params: Any) -> Any:
        return heads.param_labels(params, lazy=config.lazy_embedding)

    parts.append(optax.multi_transform(transforms, labels))
    return optax.chain(*parts)


def create_train_state(
    model: Any,
    config: TrainConfig,
    total_steps: int,
    example_batch: dict[str, np.ndarray],
    *,
    parallel: DataParallel | None = None,
) -> TrainState:
    """Initialise parameters (seeded) and the optimizer for ``total_steps`` steps.

    The state is replicated on every device of ``parallel`` (default: all devices of all hosts,
    ``DataParallel.create(batch_size=config.batch_size)``), so ``train_step`` and ``eval_step``
    run data-parallel on batches placed with ``DataParallel.of(state).shard(batch)``. Parameters
    and optimizer state are float32 whatever the model's compute dtype.
    """
    parallel = parallel or DataParallel.create(batch_size=config.batch_size)
    init_key, dropout_key = jax.random.split(jax.random.PRNGKey(config.seed))
    variables = model.init(
        init_key, jnp.asarray(example_batch["tokens"]), jnp.asarray(example_batch["lengths"])
    )
    params = variables["params"]
    heads = HeadSpec.of(model)
    if config.lazy_embedding and heads.embedding is None:
        raise ValueError(
            "lazy_embedding needs seqclf's classifier (build_classifier), whose embedding "
            f"lookup is marked with perturb({EMBEDDED!r}); got {type(model).__name__}"
        )
    state = TrainState.create(
        apply_fn=model.apply,
        params=params,
        tx=make_optimizer(config, total_steps, heads),
        dropout_key=dropout_key,
        heads=heads,
        lazy_embedding=config.lazy_embedding,
    )
    # step as the int32 array train_step returns (not Python's 0), so train_step compiles once.
    return parallel.replicate(state.replace(step=jnp.zeros((), jnp.int32)))


def _weighted_cross_entropy(logits: jax.Array, batch: dict[str, jax.Array]) -> jax.Array:
    losses = optax.softmax_cross_entropy_with_integer_labels(logits, batch["labels"])
    return jnp.sum(losses * batch["weights"]) / jnp.maximum(jnp.sum(batch["weights"]), 1.0)


def _train_step(state: TrainState, batch: dict[str, jax.Array]) -> tuple[TrainState, jax.Array]:
    """One optimizer step on one batch; returns the new state and a (2,) [loss, accuracy].

    ``batch`` holds tokens (B, T), lengths (B,), labels (B,) and weights (B,): 1 for real rows,
    0 for the rows that pad the last batch to B (so every step has one of a few shapes).

    Data parallel without pmap: with ``state`` replicated over a mesh (``create_train_state``)
    and ``batch`` split along it (``DataParallel.shard``), this same function is compiled for
    the shardings of its inputs; each device takes B / devices rows and XLA sums the gradients
    across devices, so the step equals the one-device step on the same B rows.
    """
    dropout_key = jax.random.fold_in(state.dropout_key, state.step)
    heads = state.heads

    def loss_fn(params, perturbations=None):
        variables = {"params": params}
        if perturbations is not None:
            variables["perturbations"] = perturbations
        logits, sown = state.apply_fn(
            variables,
            batch["tokens"],
            batch["lengths"],
            train=True,
            rngs={"dropout": dropout_key},
            mutable=[heads.logits_collection],
        )
        # A model with several heads (ClassifierConfig.ngram_buckets) trains each on its own loss.
        losses = [_weighted_cross_entropy(h, batch) for h in heads.trained_logits(logits, sown)]
        return sum(losses), logits

    if not state.lazy_embedding:
        (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
        new_state = state.apply_gradients(grads=grads)
    else:  # the table's gradient is row-sparse (seqclf.lazy_embedding); the rest as above
        (loss, logits), grads, rows = value_and_row_grad(
            loss_fn, state.params, batch["tokens"], heads.embedding, heads.embedded
        )
        new_state = state.apply_gradients(grads=grads, embedding_rows=rows)
    hits = (jnp.argmax(logits, -1) == batch["labels"]).astype(jnp.float32)
    real = (batch["weights"] > 0).astype(jnp.float32)  # weights may also weigh the classes
    accuracy = jnp.sum(hits * real) / jnp.maximum(jnp.sum(real), 1.0)
    return new_state, jnp.stack([loss, accuracy])


train_step = jax.jit(_train_step)
# The lazy embedding update writes a few rows of the (V, E) table and of its two moments; unless
# the old state's buffers are donated, XLA first copies all three whole, which costs about what
# updating only those rows saves. train_epoch uses this one when the embedding is lazy (its
# caller must not reuse the state it passed in).
train_step_in_place = jax.jit(_train_step, donate_argnums=0)


@jax.jit
def eval_step(state: TrainState, batch: dict[str, jax.Array]) -> jax.Array:
    """Class probabilities (B, C) of one batch, dropout off."""
    logits = state.apply_fn({"params": state.params}, batch["tokens"], batch["lengths"])
    return jax.nn.softmax(logits, axis=-1)


@jax.jit
def head_log_probs_step(state: TrainState, batch: dict[str, jax.Array]) -> jax.Array:
    """Each head's log-probabilities (B, K, C) of one batch (K heads, in the order of the
    model's head weights, ``HeadSpec.heads``), dropout off."""
    heads = state.heads
    _, sown = state.apply_fn(
        {"params": state.params},
        batch["tokens"],
        batch["lengths"],
        mutable=[heads.logits_collection],
    )
    return heads.head_log_probs(sown)


class _StopFlag:
    """Set by SIGINT/SIGTERM: the loop finishes the step it is in and stops cleanly."""

    def __init__(self) -> None:
        self.signal: str | None = None

    def __bool__(self) -> bool:
        return self.signal is not None


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextmanager
def watch_signals(on_signal: Callable[[str, int], None]) -> Iterator[None]:
    """Call ``on_signal(name, k)`` for the k-th SIGINT/SIGTERM received in the ``with`` block.

    Python runs a signal handler only between bytecodes of the main thread, so one that arrives
    while the main thread is inside XLA (compiling the first step takes seconds) would wait for
    it. The interpreter's C-level handler also writes each signal to a wakeup file descriptor at
    once; a watcher thread reading it calls ``on_signal`` without waiting for the main thread.
    Each signal is seen by both routes and counted once (the larger of the two counts).
    ``on_signal`` must be safe to call from either thread; it may end the process.
    """
    if threading.current_thread() is not threading.main_thread():
        yield  # signal handlers can only be installed from the main thread
        return
    counts = {"handler": 0, "watcher": 0}
    lock = threading.RLock()  # re-entrant: a handler can interrupt the main thread inside it

    def seen(route: str, signum: int) -> None:
        with lock:
            before = max(counts.values())
            counts[route] += 1
            k = max(counts.values())
        if k > before:
            on_signal(signal.Signals(signum).name, k)

    read_end, write_end = os.pipe()
    os.set_blocking(write_end, False)  # set_wakeup_fd requires it

    def watch() -> None:
        while byte := os.read(read_end, 1):
            if byte[0] in STOP_SIGNALS:
                seen("watcher", byte[0])

    watcher = threading.Thread(target=watch, name="seqclf-signals", daemon=True)

    def handler(signum, frame):  # noqa: ARG001
        seen("handler", signum)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    previous_fd = signal.set_wakeup_fd(write_end)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        for s, h in previous.items():
            signal.signal(s, h)
        os.close(write_end)  # ends the watcher's read
        watcher.join()
        os.close(read_end)


def exit_at_once(message: str) -> NoReturn:
    """Print ``message`` to stderr and end the process with status 130, from any thread.

    No Python unwinding: a KeyboardInterrupt raised inside JAX while it compiles can crash the
    interpreter (segmentation fault), and nothing is lost by not unwinding: checkpoints and
    ``metrics.jsonl`` are written to temporary names and renamed when complete.
    """
    from seqclf.run_lock import release_all_for_exit

    release_all_for_exit()
    try:
        sys.stdout.flush()
        print(message, file=sys.stderr, flush=True)
    finally:
        os._exit(130)


@contextmanager
def _stop_on_signals(exit_message: str | None = None) -> Iterator[_StopFlag]:
    """The first SIGINT/SIGTERM sets the flag (the loop stops after its current step).

    A second one stops at once: with ``exit_message`` (the command line) it prints it and ends
    the process (``exit_at_once``), whatever the main thread is doing; without (the Python API,
    where ending the process would end a notebook's kernel) it raises KeyboardInterrupt in the
    main thread.
    """
    flag = _StopFlag()

    def on_signal(name: str, k: int) -> None:
        if k == 1:
            flag.signal = name
            tqdm.write(f"\n{name} received: finishing the current step, then stopping.")
        elif exit_message is not None:
            exit_at_once(exit_message)
        elif threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt

    if exit_message is not None:
        with watch_signals(on_signal):
            yield flag
        return
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):  # noqa: ARG001
        on_signal(signal.Signals(signum).name, 2 if flag else 1)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield flag
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


def _batches(
    token_ids: Sequence[np.ndarray], labels: np.ndarray | None, config: TrainConfig, **options: Any
) -> Iterator[dict[str, np.ndarray]]:
    """``batches`` with the batch size, truncation and length buckets of ``config``."""
    return batches(
        token_ids,
        labels,
        config.batch_size,
        max_len=config.max_len,
        truncating=config.truncating,
        buckets=config.buckets,
        **options,
    )


def evaluate(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray,
    config: TrainConfig,
    *,
    desc: str = "evaluate",
    progress: bool = True,
) -> dict[str, float]:
    """Loss, accuracy (and macro-F1 for > 2 classes) over a dataset; no example dropped."""
    probs = predict_probabilities(state, token_ids, config, desc=desc, progress=progress)
    return _metrics(np.asarray(labels), probs)


def _metrics(labels: np.ndarray, probs: np.ndarray) -> dict[str, float]:
    """``classification_metrics`` with the mean cross-entropy of (N, C) probabilities."""
    picked = probs[np.arange(len(labels)), labels]
    loss = float(-np.mean(np.log(np.maximum(picked, 1e-12)))) if len(labels) else 0.0
    out = classification_metrics(labels, probs, loss)
    # Recall of each class (None for a class absent here): a model that never predicts a rare
    # class shows it at once, whatever its accuracy.
    predicted = probs.argmax(axis=1) if len(labels) else np.zeros(0, np.int64)
    out["recall"] = [
        float(np.mean(predicted[labels == c] == c)) if np.any(labels == c) else None
        for c in range(probs.shape[1])
    ]
    return out


def fit_head_weights_and_evaluate(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray,
    config: TrainConfig,
    *,
    desc: str = "validate",
    progress: bool = True,
) -> tuple[TrainState, dict[str, float]]:
    """For a model with several heads: fit its head weights on this (validation) data.

    Returns the state holding the fitted weights, and ``evaluate``'s metrics with them (one pass
    over the data: each head's log-probabilities are computed once, weighted in NumPy).
    """
    labels = np.asarray(labels)
    log_probs = predict_probabilities(
        state, token_ids, config, desc=desc, progress=progress, step=head_log_probs_step
    )
    per_head = np.moveaxis(log_probs, 1, 0)  # (K, N, C)
    weights = fit_head_weights(per_head, labels)
    new_weights = DataParallel.of(state).replicate(jnp.asarray(weights))
    state = state.replace(params={**state.params, state.heads.head_weights: new_weights})
    metrics = _metrics(labels, np.exp(weighted_log_probs(per_head, weights)))
    # Each head's own accuracy (HeadSpec.heads order), to see what each contributes.
    metrics["head_accuracy"] = [float(np.mean(h.argmax(-1) == labels)) for h in per_head]
    return state, metrics


def predict_probabilities(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    config: TrainConfig,
    *,
    desc: str = "predict",
    progress: bool = False,
    step: Callable[[TrainState, dict[str, jax.Array]], jax.Array] = eval_step,
) -> np.ndarray:
    """(N, C) class probabilities in input order; the last batch is padded, not dropped.

    Batches of ``config.batch_size`` rows are split over the devices ``state`` is replicated on
    (see ``create_train_state``); every process gets all N rows. ``step`` gives what is computed
    per batch (default ``eval_step``; ``head_log_probs_step`` gives (N, K, C)).
    """
    out = []
    stream = _batches(token_ids, None, config)
    total = num_batches(len(token_ids), config.batch_size)
    parallel = DataParallel.of(state)  # the devices the state lives on; batches split over them
    for batch in tqdm(stream, total=total, desc=desc, leave=False, disable=not progress):
        padded, n_real = pad_batch(batch, config.batch_size)
        probs = step(state, parallel.shard({k: padded[k] for k in ("tokens", "lengths")}))
        out.append(parallel.gather(probs)[:n_real])
    return np.concatenate(out) if out else np.zeros((0, 0), np.float32)


def train_epoch(
    state: TrainState,
    token_ids: Sequence[np.ndarray],
    labels: np.ndarray,
    config: TrainConfig,
    epoch: int,
    *,
    skip_batches: int = 0,
    on_step: Callable[[TrainState, int], None] | None = None,
    stop: _StopFlag | None = None,
    progress: bool = True,
    running: list[float] | None = None,
    watch: LossWatch | None = None,
) -> tuple[TrainState, dict[str, float], int]:
    """One pass over the shuffled training data (shuffle seeded by (seed, epoch)).

    With ``config.lazy_embedding`` the buffers of ``state`` are reused for the new state
    (donated): use the state returned, not the one passed in.

    Args:
      skip_batches: batches of this epoch already done (resuming mid-epoch).
      on_step: called as ``on_step(state, batches_done_in_epoch)`` after every step (checkpoints).
      stop: when set (by a signal), return after the current step.
      running: ``[loss sum, accuracy sum, steps]`` of the batches already done, updated in place
        as losses are checked, so a checkpoint can save it and a resumed epoch reports the same
        means as an uninterrupted one (sums in float64, one step at a time: independent of when
        values are fetched).
      watch: a ``LossWatch`` that each step's loss is shown to (None: no explosion check).

    Returns:
      ``(state, {"train_loss", "train_accuracy"}, batches_done_in_epoch)``.

    Raises:
      TrainingDiverged: a loss was NaN or infinite, or exploded (the message names the step).
    """
    stream = _batches(
        token_ids,
        labels,
        config,
        shuffle=True,
        seed=config.seed,
        epoch=epoch,
    )
    total = num_batches(len(token_ids), config.batch_size)
    bar = tqdm(
        total=total,
        initial=skip_batches,
        desc=f"epoch {epoch + 1}/{config.epochs}",
        disable=not progress,
        dynamic_ncols=True,
    )
    pending: list[tuple[int, jax.Array]] = []  # per-step [loss, acc], fetched every log_every
    parallel = DataParallel.of(state)  # the batch is split over the devices the state lives on
    step = int(state.step)  # a host-side copy: reading state.step would wait for the device
    running = [0.0, 0.0, 0] if running is None else running
    done = skip_batches
    step_fn = train_step_in_place if state.lazy_embedding else train_step
    num_classes = int(np.max(labels, initial=0)) + 1
    weigh = class_weights(np.bincount(labels, minlength=num_classes), config.class_weighting)

    def drain() -> None:
        if not pending:
            return
        values = np.asarray(jnp.stack([v for _, v in pending]), dtype=np.float64)
        for (step, _), (loss, _acc) in zip(pending, values, strict=True):
            if not np.isfinite(loss):
                bar.close()
                raise TrainingDiverged(
                    f"the training loss became {loss} at step {step} (epoch {epoch + 1}); "
                    "try a lower --learning-rate or a smaller --clip-norm"
                )
            if watch is not None:
                try:
                    watch.check(step, float(loss), epoch)
                except TrainingDiverged:
                    bar.close()
                    raise
        for loss, acc in values.tolist():
            running[0] += loss
            running[1] += acc
        running[2] += len(pending)
        pending.clear()
        bar.set_postfix(loss=f"{running[0] / running[2]:.4f}", acc=f"{running[1] / running[2]:.4f}")

    for i, batch in enumerate(stream):
        if i < skip_batches:
            continue
        padded, _ = pad_batch(batch, config.batch_size)
        padded["weights"] = padded["weights"] * weigh[padded["labels"]]
        state, values = step_fn(state, parallel.shard({k: padded[k] for k in TRAIN_KEYS}))
        pending.append((step, values))
        step += 1
        done = i + 1
        bar.update(1)
        if len(pending) >= config.log_every:
            drain()
        if on_step is not None:
            drain_before = config.save_every and done % config.save_every == 0
            if drain_before:
                drain()  # never checkpoint a state whose loss has not been checked
            on_step(state, done)
        if stop:
            break
    drain()
    bar.close()
    seen = max(running[2], 1)
    metrics = {"train_loss": running[0] / seen, "train_accuracy": running[1] / seen}
    return state, metrics, done


# How a run can end without a signal (``already_finished``: a finished run resumed).
FINISHED = ("completed", "early_stopping", "time_budget", "already_finished")


def _rounded(value: Any) -> Any:
    """A metric for the log: floats to 6 digits, lists element by element (None kept)."""
    if isinstance(value, list):
        return [None if v is None else round(float(v), 6) for v in value]
    return round(float(value), 6)


def _warn_unpredicted_classes(recall: list[float | None] | None) -> None:
    """Say so when the model never gets a class right on validation (e.g. heavy imbalance)."""
    missed = [c for c, r in enumerate(recall or []) if r is not None and r == 0.0]
    if missed:
        tqdm.write(
            f"Warning: on the validation split the model recalls none of class(es) {missed} "
            "(recall 0). The classes may be too imbalanced or too few: try "
            "--class-weighting balanced, more examples of those classes, or more epochs."
        )


class _TimeBudget:
    """``TrainConfig.time_budget``: stops an epoch that runs past it, and does not start one that
    would (judged by the epochs so far)."""

    def __init__(self, seconds: float):
        self.seconds = seconds
        self.started = time.perf_counter()
        self.epoch_seconds = 0.0
        self.cut_short = False

    @property
    def spent(self) -> bool:
        return bool(self.seconds) and (
            self.cut_short or time.perf_counter() - self.started >= self.seconds
        )

    def next_epoch_would_overrun(self) -> bool:
        if not self.seconds or not self.epoch_seconds:
            return False
        return time.perf_counter() - self.started + self.epoch_seconds > self.seconds

    def epoch_done(self, seconds: float, cut_short: bool) -> None:
        self.epoch_seconds = max(self.epoch_seconds, seconds)
        self.cut_short = self.cut_short or cut_short

    def or_signal(self, stop: Any) -> Any:
        """A flag for ``train_epoch``: true when a signal came or the budget is spent."""
        budget = self

        class _Either:
            signal = None

            def __bool__(self) -> bool:
                return bool(stop) or budget.spent

        return _Either()


def _with_fitted_nbsvm_head(
    model: Any,
    state: TrainState,
    train: tuple[Sequence[np.ndarray], np.ndarray],
    valid: tuple[Sequence[np.ndarray], np.ndarray],
    config: TrainConfig,
    progress: bool,
) -> TrainState:
    """The state with the NBSVM head fitted as NBSVM is (``seqclf.naive_bayes``), before any
    gradient step (a model without that head: the state as it is)."""
    fitted = state.heads.fitted_head
    if fitted is None:
        return state
    from seqclf.naive_bayes import fit_nbsvm

    cfg = model.config
    head, report = fit_nbsvm(train, valid, cfg.num_classes, cfg.nb_buckets, cfg.nb_ngrams, config)
    if progress:
        tqdm.write(report)
    head = jax.tree_util.tree_map(DataParallel.of(state).replicate, head)
    return state.replace(params={**state.params, fitted: head})


def _write_logs(history: list[dict[str, Any]], output_dir: Path | None) -> None:
    """``metrics.jsonl`` and ``training_curves.png`` of ``history`` (primary process only).

    Rewritten whole from the history (which checkpoints carry), each to a temporary name then
    renamed: an interruption anywhere leaves one line per finished epoch, none twice.
    """
    if output_dir is None or not is_primary():
        return
    from seqclf.plotting import plot_history  # matplotlib only when training

    log_path = Path(output_dir) / "metrics.jsonl"
    tmp = log_path.with_name(log_path.name + ".tmp")
    tmp.write_text("".join(json.dumps(r) + "\n" for r in history))
    tmp.replace(log_path)
    if history:
        plot_history(history, Path(output_dir) / "training_curves.png")


@dataclasses.dataclass
class FitResult:
    """What ``fit`` leaves: the final state, the per-epoch history and how it ended."""

    state: TrainState
    history: list[dict[str, Any]]
    stopped_by: str  # "completed", "early_stopping", "time_budget", "already_finished" or a signal
    best_step: int | None


def fit(
    model: Any,
    train: tuple[Sequence[np.ndarray], np.ndarray],
    valid: tuple[Sequence[np.ndarray], np.ndarray],
    config: TrainConfig,
    *,
    store: Any | None = None,
    meta: dict[str, Any] | None = None,
    resume: bool = False,
    output_dir: str | Path | None = None,
    progress: bool = True,
    resume_hint: str | None = None,
    exit_message: str | None = None,
) -> FitResult:
    """Train with per-epoch validation, checkpoints, early stopping and clean interruption.

    Args:
      model: a Flax module taking ``(tokens, lengths, train=...)``.
      train, valid: ``(token_ids, labels)`` pairs (lists of (T_i,) int arrays, (N,) ints).
      config: the ``TrainConfig``.
      store: a ``seqclf.checkpoint.CheckpointStore`` (None: no checkpoints).
      meta: JSON-ready metadata saved with every checkpoint (model config, vocabulary, classes).
      resume: continue from the latest checkpoint in ``store``.
      output_dir: where ``metrics.jsonl`` and ``training_curves.png`` are written (None: nowhere).
      progress: show tqdm bars.
      resume_hint: the command that resumes this run, printed when it is interrupted.
      exit_message: given (by the command line), a second SIGINT/SIGTERM prints it and ends the
        process at once with status 130, whatever it is doing (``_stop_on_signals``); None
        raises KeyboardInterrupt instead (a notebook's kernel survives it).

    Returns:
      A ``FitResult``; ``stopped_by`` is "already_finished" when ``resume`` finds the run done
      (its ``metrics.jsonl`` and curves are rewritten from the checkpoint, nothing is trained).

    Raises:
      ValueError: an empty training or validation set.
      TrainingDiverged: a NaN or infinite loss (or parameters) at some step, or an exploding
        loss (``LossWatch``); the message names the step and the last good checkpoint, which
        stays as it was.
      seqclf.checkpoint.DiskFullError: no space left while saving (the message says which step
        is intact and how to resume).

    Fields of ``config`` left at None are resolved from the training split first
    (``seqclf.recipe``). A model with an NBSVM head gets it fitted on the training split before
    the first step (``seqclf.naive_bayes``); the other heads then train by gradient, each on its
    own loss, classes weighted by ``config.class_weighting``, until ``config.epochs``, early
    stopping or ``config.time_budget``.

    A ``batch_size`` larger than the training set warns and trains on the whole set each step
    (the batch is padded with rows of weight 0, so the result is that of a batch of all the data,
    as Keras does by using a smaller batch). SIGINT or SIGTERM finish the current step, keep the
    checkpoints as they are and print how to resume; a resumed run ends with the same parameters
    and history as an uninterrupted one (bitwise on CPU; ``seconds`` aside).
    """
    train_ids, train_labels = train
    valid_ids, valid_labels = valid
    if len(train_ids) == 0:
        raise ValueError("the training set is empty")
    if len(valid_ids) == 0:
        raise ValueError("the validation set is empty")
    train_labels = np.asarray(train_labels)
    num_classes = getattr(getattr(model, "config", None), "num_classes", None)
    profile = DataProfile.of(
        train_ids, train_labels, num_classes or int(train_labels.max(initial=0)) + 1
    )
    config, chosen = resolve_train_config(config, profile)
    if chosen and progress and is_primary():
        tqdm.write(f"Training settings from the data: {describe(chosen)}.")
    if config.batch_size > len(train_ids):
        warnings.warn(
            f"batch_size {config.batch_size} is larger than the training set "
            f"({len(train_ids)} examples): every step uses all {len(train_ids)} of them",
            stacklevel=2,
        )
    steps_per_epoch = num_batches(len(train_ids), config.batch_size)
    example = next(batches(train_ids[:2], None, 2, max_len=config.max_len, buckets=config.buckets))
    state = create_train_state(model, config, config.epochs * steps_per_epoch, example)
    progress = progress and is_primary()  # one progress bar and log per run, not per host

    output_dir = Path(output_dir) if output_dir is not None else None
    history: list[dict[str, Any]] = []
    # running: [loss sum, accuracy sum, steps] of the epoch so far (see train_epoch).
    fresh = {"epoch": 0, "batch": 0, "best_val_accuracy": -1.0, "bad_epochs": 0, "running": None}
    progress_state = dict(fresh)
    if resume and store is not None and store.latest_step() is not None:
        target = {"params": state.params, "opt_state": state.opt_state, "step": state.step}
        restored = store.restore_state(target)
        state = state.replace(**restored)
        saved = store.restore_meta()
        progress_state = {**fresh, **saved["progress"]}
        history = saved.get("history", [])
        # A kill after a checkpoint's commit but before metrics.jsonl and the curves were
        # rewritten leaves them an epoch short: the checkpoint's history is the truth.
        _write_logs(history, output_dir)
        early = bool(config.patience) and progress_state["bad_epochs"] >= config.patience
        if progress_state["epoch"] >= config.epochs or early:
            how = "early stopping" if early else f"all {config.epochs} epochs"
            where = store.directory.parent
            tqdm.write(
                f"The run in {where} is already finished ({how}, step {int(state.step)}); "
                "nothing to resume. Its metrics.jsonl and curves are rewritten from the "
                "checkpoint; pass a larger --epochs to train further."
            )
            return FitResult(state, history, "already_finished", store.best_step())
        tqdm.write(
            f"Resuming from step {int(state.step)} (epoch {progress_state['epoch'] + 1}, "
            f"batch {progress_state['batch']})."
        )
    elif resume:
        tqdm.write("Nothing to resume from: no checkpoint yet, starting from scratch.")
    if progress:
        tqdm.write(DataParallel.of(state).describe(config.batch_size))
    if not (resume and store is not None and store.latest_step() is not None):
        state = _with_fitted_nbsvm_head(
            model, state, (train_ids, train_labels), valid, config, progress and is_primary()
        )

    num_classes = int(max(np.max(train_labels), np.max(valid_labels))) + 1
    # The heads whose losses a training step sums: all but the fitted NBSVM head.
    watch = LossWatch(num_classes, heads=state.heads.trained_heads)

    def save(current: TrainState, val_accuracy: float | None) -> None:
        if store is None:
            return
        leaves = jax.tree_util.tree_leaves(current.params)
        if not all(np.isfinite(np.asarray(x)).all() for x in leaves):
            raise TrainingDiverged(
                f"the parameters became NaN or infinite by step {int(current.step)}; "
                "try a lower --learning-rate or a smaller --clip-norm"
            )
        try:
            store.save(
                int(current.step),
                {"params": current.params, "opt_state": current.opt_state, "step": current.step},
                {
                    **(meta or {}),
                    "train_config": config.to_dict(),
                    "progress": progress_state,
                    "history": history,
                },
                val_accuracy,
            )
        except DiskFullError as err:
            raise DiskFullError(
                f"{err}; free space and run {resume_hint or 'it again with resume=True'}",
                err.step,
                err.last_step,
                err.device,
            ) from None

    def on_step(current: TrainState, done: int) -> None:
        if config.save_every and done % config.save_every == 0 and done < steps_per_epoch:
            progress_state["batch"] = done
            save(current, None)

    def diverged(err: TrainingDiverged) -> TrainingDiverged:
        """``err`` with what became of the checkpoints (those from before an explosion)."""
        steps = store.all_steps() if store is not None else []
        good = [s for s in steps if err.since_step is None or s <= err.since_step]
        last = max(good) if good else None
        kept = (
            f"the last good checkpoint (step {last}) in {store.directory} is kept as it was"
            if last is not None
            else "no checkpoint had been saved yet"
        )
        return TrainingDiverged(f"{err}; {kept}")

    stopped_by = "completed"
    budget = _TimeBudget(config.time_budget)
    with _stop_on_signals(exit_message) as stop:
        for epoch in range(progress_state["epoch"], config.epochs):
            if budget.next_epoch_would_overrun():
                stopped_by = "time_budget"
                tqdm.write(
                    f"Time budget: {config.time_budget:.0f} s would be over before epoch "
                    f"{epoch + 1} ends (an epoch takes ~{budget.epoch_seconds:.0f} s); "
                    "stopping here (--time-budget to change it)."
                )
                break
            started = time.perf_counter()
            if progress_state["running"] is None or progress_state["batch"] == 0:
                progress_state["running"] = [0.0, 0.0, 0]
            try:
                state, train_metrics, done = train_epoch(
                    state,
                    train_ids,
                    train_labels,
                    config,
                    epoch,
                    skip_batches=progress_state["batch"],
                    on_step=on_step,
                    stop=budget.or_signal(stop),
                    progress=progress,
                    running=progress_state["running"],
                    watch=watch,
                )
                if done == steps_per_epoch:
                    first = int(state.step) - steps_per_epoch
                    watch.check_epoch(first, train_metrics["train_loss"], epoch)
            except TrainingDiverged as err:
                raise diverged(err) from err
            if stop and done < steps_per_epoch:
                stopped_by = stop.signal or "interrupted"
                break
            budget.epoch_done(time.perf_counter() - started, done < steps_per_epoch)
            if state.heads.head_weights is not None:
                state, val = fit_head_weights_and_evaluate(
                    state, valid_ids, valid_labels, config, progress=progress
                )
            else:
                val = evaluate(
                    state, valid_ids, valid_labels, config, desc="validate", progress=progress
                )
            record = {
                "epoch": epoch + 1,
                "step": int(state.step),
                **{k: round(float(v), 6) for k, v in train_metrics.items()},
                **{f"val_{k}": _rounded(v) for k, v in val.items()},
                "seconds": round(time.perf_counter() - started, 2),
            }
            if state.heads.head_weights is not None:
                weights = np.asarray(state.params[state.heads.head_weights])
                record["head_weights"] = [round(float(w), 4) for w in weights]
            history.append(record)
            improved = val["accuracy"] > progress_state["best_val_accuracy"]
            progress_state.update(
                epoch=epoch + 1,
                batch=0,
                best_val_accuracy=max(val["accuracy"], progress_state["best_val_accuracy"]),
                bad_epochs=0 if improved else progress_state["bad_epochs"] + 1,
                running=None,
            )
            try:
                save(state, val["accuracy"])
            except TrainingDiverged as err:
                raise diverged(err) from err
            try:
                _write_logs(history, output_dir)
            except OSError as err:
                if err.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                last = store.latest_step() if store is not None else None  # --resume
                kept = f"the last checkpoint, step {last}, is intact" if last else "no checkpoint"
                raise DiskFullError(  # rewrites the logs from the checkpoint
                    f"no space left on {mount_point(output_dir)} while writing metrics.jsonl "
                    f"and the curves; {kept}; free space and run "
                    f"{resume_hint or 'it again with resume=True'}",
                    int(state.step),
                    last,
                    mount_point(output_dir),
                ) from None
            tqdm.write(
                f"epoch {epoch + 1}: "
                + ", ".join(
                    f"{k} {v:.4f}" if isinstance(v, float) else f"{k} {v}"
                    for k, v in record.items()
                    if k not in ("epoch", "step")
                )
            )
            if stop:
                stopped_by = stop.signal or "interrupted"
                break
            if budget.spent:
                stopped_by = "time_budget"
                tqdm.write(
                    f"Time budget: {config.time_budget:.0f} s of training are over; stopping "
                    "after this validation (--time-budget to change it)."
                )
                break
            if config.patience and progress_state["bad_epochs"] >= config.patience:
                stopped_by = "early_stopping"
                tqdm.write(
                    f"Early stopping: no better validation accuracy for {config.patience} epochs."
                )
                break
    if history and progress:
        _warn_unpredicted_classes(history[-1].get("val_recall"))
    if stopped_by not in FINISHED:
        last = store.latest_step() if store is not None else None
        where = (
            f"the last checkpoint (step {last}) is intact"
            if last is not None
            else "no checkpoint had been saved yet"
        )
        if last is not None and last < int(state.step):
            where += f"; the {int(state.step) - last} step(s) after it will be done again"
        hint = f" Resume with: {resume_hint}" if resume_hint else " Resume with --resume."
        tqdm.write(f"Stopped by {stopped_by} at step {int(state.step)}; {where}.{hint}")
    return FitResult(state, history, stopped_by, store.best_step() if store else None)
