"""The fitted heads of a several-head model, as callbacks: ``FitNbsvmHead`` (the NBSVM head,
fitted on the training split before the first step) and ``FitHeadWeights`` (each head's weight,
fitted on the validation split after every epoch, which is then the epoch's validation)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from tqdm.auto import tqdm

from seqclf.distributed import DataParallel
from seqclf.training.callbacks.base import Callback
from seqclf.training.evaluation import fit_head_weights_and_evaluate
from seqclf.training.run import Run


class FitNbsvmHead(Callback):
    """Fits the model's ``HeadSpec.fitted_head`` as NBSVM is (``seqclf.naive_bayes``) before any
    gradient step of a fresh run (a resumed run has it in its checkpoint).

    Args:
      model: the classifier (its ``config`` gives the head's buckets and n-grams).
      train, valid: ``(token_ids, labels)`` of the two splits.
    """

    def __init__(
        self,
        model: Any,
        train: tuple[Sequence[np.ndarray], np.ndarray],
        valid: tuple[Sequence[np.ndarray], np.ndarray],
    ):
        self.model, self.train, self.valid = model, train, valid

    def on_train_begin(self, run: Run) -> None:
        fitted = run.state.heads.fitted_head
        if fitted is None or run.resumed or run.stop_reason is not None:
            return
        from seqclf.naive_bayes import fit_nbsvm

        cfg = self.model.config
        head, report = fit_nbsvm(
            self.train, self.valid, cfg.num_classes, cfg.nb_buckets, cfg.nb_ngrams, run.text
        )
        if run.show_progress:
            tqdm.write(report)
        head = jax.tree_util.tree_map(DataParallel.of(run.state).replicate, head)
        run.state = run.state.replace(params={**run.state.params, fitted: head})


class FitHeadWeights(Callback):
    """For a model with several heads: after every epoch, fits the head weights on the
    validation split and validates with them (one pass: ``fit_head_weights_and_evaluate``);
    the epoch's record gets the weights as ``head_weights``.

    Args:
      valid: ``(token_ids, labels)`` of the validation split.
    """

    def __init__(self, valid: tuple[Sequence[np.ndarray], np.ndarray]):
        self.valid = valid

    def on_validate(self, run: Run) -> dict[str, Any] | None:
        if run.state.heads.head_weights is None:
            return None
        run.state, metrics = fit_head_weights_and_evaluate(
            run.state, *self.valid, run.config, run.text, progress=run.show_progress
        )
        return metrics

    def on_epoch_end(self, run: Run, record: dict[str, Any]) -> None:
        name = run.state.heads.head_weights
        if name is not None:
            weights = np.asarray(run.state.params[name])
            record["head_weights"] = [round(float(w), 4) for w in weights]
