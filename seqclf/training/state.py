"""The training state and its optimizer: TrainState, make_optimizer, create_train_state."""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import struct
from flax.training import train_state

from seqclf.distributed import DataParallel
from seqclf.heads import EMBEDDED, HeadSpec
from seqclf.lazy_embedding import LAZY, apply_row_updates, catch_up, lazy_adam
from seqclf.training.config import TrainConfig


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

    def caught_up(self) -> TrainState:
        """The state with every row of a lazily updated table brought to dense Adam's value
        (``seqclf.lazy_embedding.catch_up``); the state itself without ``lazy_embedding``."""
        if not self.lazy_embedding:
            return self
        params, opt_state = catch_up(self.params, self.opt_state, self.heads.embedding)
        return self.replace(params=params, opt_state=opt_state)


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


def uses_lazy_adam(config: TrainConfig, heads: HeadSpec) -> bool:
    """Whether the embedding table gets lazy Adam: ``config.lazy_embedding``, whose None means
    "when the model marks its embedding lookup" (``heads.embedding``, set by build_classifier)."""
    if config.lazy_embedding is None:
        return heads.embedding is not None
    return config.lazy_embedding


def make_optimizer(
    config: TrainConfig, total_steps: int, heads: HeadSpec | None = None
) -> optax.GradientTransformationExtraArgs:
    """Gradient clipping, then Adam(W) on a linear warm-up + cosine-decay schedule.

    Which parameter gets which optimizer the model says (``heads``, its ``HeadSpec``): the n-gram
    heads' parameters get their own Adam(W) with peak rate ``config.ngram_learning_rate`` when it
    is set (same schedule shape); the fitted parameters (head weights, NBSVM head) are left as
    they are, even under weight decay; where ``uses_lazy_adam`` says so, the embedding table gets
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
    lazy = uses_lazy_adam(config, heads)
    if lazy:  # only then: a dense run's optimizer state keeps its old layout
        schedule = learning_rate_schedule(config, total_steps, config.learning_rate)
        transforms[LAZY] = lazy_adam(schedule, weight_decay=config.weight_decay)

    def labels(params: Any) -> Any:
        return heads.param_labels(params, lazy=lazy)

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
    if config.lazy_embedding is True and heads.embedding is None:
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
        lazy_embedding=uses_lazy_adam(config, heads),
    )
    # step as the int32 array train_step returns (not Python's 0), so train_step compiles once.
    return parallel.replicate(state.replace(step=jnp.zeros((), jnp.int32)))
