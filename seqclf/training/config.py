"""How to train: ``TrainConfig`` (saved with every checkpoint)."""

from __future__ import annotations

import dataclasses
from typing import Any

from seqclf.config_dict import config_from_dict, reject_non_finite
from seqclf.data.preprocessing import TRAIN_FIELDS

CLASS_WEIGHTINGS = ("sqrt", "balanced", "none")


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """How to train (saved with every checkpoint).

    The two fields that depend most on the data default to None, "from the data": ``fit`` and
    ``train_text_classifier`` resolve them from the training split by the rules of
    ``seqclf.recipe`` (and print what they chose); the resolved values are what is saved. How
    texts become token ids (vocabulary size, length, truncation, length buckets) is not here
    but in ``seqclf.TextConfig``.

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
        ``seqclf.lazy_embedding``): far less work per step with a large vocabulary; a row a
        batch does not use catches up with dense Adam when it is next used, at each epoch's end
        and at each save (as accurate as dense Adam on the accuracy suite: benchmarks/README.md);
        None: lazy when the model marks its embedding lookup (build_classifier's does), else
        dense.
      patience: stop after this many epochs without a better validation accuracy (0: never).
      time_budget: seconds of training after which the run stops at the end of the current step,
        validates and saves as after any epoch (0: no limit); an epoch that would not end
        within the budget is not started.
      class_weighting: how much each class weighs in the loss: "sqrt" (rare classes weigh
        more, by the square root of their rarity), "balanced" (each class as much) or "none"
        (``seqclf.recipe.class_weights``).
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
    lazy_embedding: bool | None = None
    patience: int = 2
    time_budget: float = 3600.0
    class_weighting: str = dataclasses.field(default="sqrt", metadata={"choices": CLASS_WEIGHTINGS})
    seed: int = 0
    save_every: int = 0
    log_every: int = 20

    def __post_init__(self) -> None:
        reject_non_finite(self, "training configuration")  # first: NaN passes every comparison
        problems = []
        for name in ("epochs", "batch_size", "log_every"):
            value = getattr(self, name)
            if value is not None and value < 1:
                problems.append(f"{name} must be >= 1, got {value}")
        if self.class_weighting not in CLASS_WEIGHTINGS:
            problems.append(
                f"class_weighting must be one of {CLASS_WEIGHTINGS}, got {self.class_weighting!r}"
            )
        if not self.time_budget >= 0:
            problems.append(f"time_budget must be >= 0 seconds, got {self.time_budget}")
        if self.learning_rate <= 0:
            problems.append(f"learning_rate must be > 0, got {self.learning_rate}")
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
        return None not in (self.epochs, self.batch_size)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrainConfig:
        """The config ``to_dict`` saved; an unknown key is an error naming it
        (``seqclf.config_dict``: the rule every configuration follows). The text settings a
        checkpoint from before ``TextConfig`` kept here are dropped: ``TextConfig`` reads them
        (``TextConfig.from_train_config``)."""
        return config_from_dict(cls, d, older_keys=TRAIN_FIELDS.values())
