"""From labelled texts to a saved, evaluated model: vocabulary → encoding → fit → checkpoints.

``train_text_classifier`` is what ``seqclf train`` and ``examples/imdb.py`` run. The vocabulary is
built from the training split only; the validation split is carved from train when none is given;
a test split is never looked at here.
"""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from seqclf.checkpoint import CheckpointError, CheckpointStore
from seqclf.data.preprocessing import TextConfig
from seqclf.data.sources import TextDataset, train_validation_split
from seqclf.data.text import Vocabulary
from seqclf.distributed import is_primary
from seqclf.model import ClassifierConfig, build_classifier
from seqclf.recipe import (
    MAX_VOCABULARY,
    DataProfile,
    describe,
    resolve_model_config,
    resolve_text_config,
    resolve_train_config,
)
from seqclf.run_lock import run_lock
from seqclf.training import Callback, FitResult, TrainConfig, fit


@dataclasses.dataclass
class TrainingRun:
    """What a training run produced."""

    output_dir: Path
    model_config: ClassifierConfig
    vocabulary: Vocabulary
    classes: list[str]
    fit: FitResult
    encode_seconds: float
    num_train: int
    num_valid: int
    text_config: TextConfig | None = None

    def __repr__(self) -> str:  # the parameters stay out of it (print(run) was 92 KB)
        best = max((h.get("val_accuracy", 0.0) for h in self.fit.history), default=None)
        shown = "none" if best is None else f"{best:.4f}"
        return (
            f"TrainingRun({str(self.output_dir)!r}, classes={self.classes}, "
            f"epochs={len(self.fit.history)}, best_step={self.fit.best_step}, "
            f"best_val_accuracy={shown}, stopped_by={self.fit.stopped_by!r})"
        )


@dataclasses.dataclass
class EncodedSplits:
    """Training and validation texts as token ids, with the vocabulary and settings behind them.

    Attributes:
      vocabulary: built from the training split (or the one given).
      classes: label names.
      train, valid: ``(token_ids, labels)``: lists of (T_i,) int32 arrays and (N,) ints.
      text: the resolved ``TextConfig``.
      train_config: the resolved ``TrainConfig``.
      chosen: the settings resolved from the data, by name, for the log.
      profile: the training split's ``seqclf.recipe.DataProfile``.
      encode_seconds: time spent encoding.
    """

    vocabulary: Vocabulary
    classes: list[str]
    train: tuple[list[np.ndarray], np.ndarray]
    valid: tuple[list[np.ndarray], np.ndarray]
    text: TextConfig
    train_config: TrainConfig
    chosen: dict[str, Any]
    profile: DataProfile
    encode_seconds: float


def split_for_validation(
    train: TextDataset, valid: TextDataset | None, valid_fraction: float, seed: int
) -> tuple[TextDataset, TextDataset]:
    """``(train, valid)``: ``valid_fraction`` of ``train`` carved out (stratified, seeded) when
    ``valid`` is None, and ``valid``'s classes in ``train``'s order."""
    check_training_data(train, valid)
    if valid is None:
        train, valid = train_validation_split(train, valid_fraction, seed=seed)
    if valid.classes != train.classes:
        valid = valid.with_classes(train.classes)
    return train, valid


def encode_splits(
    train: TextDataset,
    valid: TextDataset,
    text: TextConfig,
    train_config: TrainConfig,
    vocabulary: Vocabulary | None = None,
) -> EncodedSplits:
    """Build the vocabulary from ``train`` (unless given), encode both splits, and resolve the
    text and training settings left to the data (``seqclf.recipe``)."""
    if vocabulary is None:
        vocab_size = text.vocab_size or MAX_VOCABULARY + 2
        text = dataclasses.replace(text, vocab_size=vocab_size)
        vocabulary = Vocabulary.build(train.texts, vocab_size=vocab_size, tokenizer=text.tokenizer)
    elif vocabulary.tokenizer != text.tokenizer:
        raise ValueError(
            f"the vocabulary splits texts with tokenizer {vocabulary.tokenizer!r}, the text "
            f"configuration says {text.tokenizer!r}"
        )
    started = time.perf_counter()
    train_ids = vocabulary.encode_batch(train.texts)
    valid_ids = vocabulary.encode_batch(valid.texts)
    encode_seconds = time.perf_counter() - started
    tqdm.write(
        f"Encoded {len(train_ids) + len(valid_ids)} texts in {encode_seconds:.1f} s "
        f"(vocabulary {len(vocabulary)} words, classes {train.classes})."
    )
    profile = DataProfile.of(train_ids, train.labels, len(train.classes))
    text, chosen_text = resolve_text_config(text, profile)
    train_config, chosen = resolve_train_config(train_config, profile)
    chosen = {**chosen_text, **chosen}
    return EncodedSplits(
        vocabulary,
        list(train.classes),
        (train_ids, train.labels),
        (valid_ids, valid.labels),
        text,
        train_config,
        chosen,
        profile,
        encode_seconds,
    )


def check_training_data(train: TextDataset, valid: TextDataset | None) -> None:
    """Reject data that cannot train a classifier, with a sentence saying why."""
    if len(train) == 0:
        raise ValueError("the training data is empty")
    present = np.unique(train.labels)
    if present.size < 2:
        only = train.classes[int(present[0])] if present.size else "none"
        raise ValueError(
            f"the training data has a single class ({only!r}); a classifier needs at least two"
        )
    if valid is not None and len(valid) == 0:
        raise ValueError("the validation data is empty")


def _holding_the_output_dir_lock(train_fn):
    """``train_fn(train, output_dir, ...)`` run holding ``output_dir``'s training lock
    (``seqclf.run_lock``): a second run into it is refused at once. Only the primary process
    takes it: the other hosts of a multi-host run write into the same directory."""

    @functools.wraps(train_fn)
    def locked(train: TextDataset, output_dir: str | Path, *args: Any, **kwargs: Any):
        Path(output_dir).mkdir(parents=True, exist_ok=True)
        with run_lock(output_dir) if is_primary() else nullcontext():
            return train_fn(train, output_dir, *args, **kwargs)

    return locked


def settings_not_used(given: Any, saved: Any) -> list[str]:
    """Names of the fields of the config ``given`` now that a resumed run will not use.

    A field counts as given when it is neither None ("from the data") nor its default, so a
    default that changed since the run was saved (as the tokenizer's did) is not reported as
    the user's. ``epochs`` may change on resume, so it is never reported.
    """
    default = type(given)()
    return [
        f.name
        for f in dataclasses.fields(given)
        if f.name != "epochs"
        and getattr(given, f.name) is not None
        and getattr(given, f.name) != getattr(default, f.name)
        and getattr(given, f.name) != getattr(saved, f.name)
    ]


@_holding_the_output_dir_lock
def train_text_classifier(
    train: TextDataset,
    output_dir: str | Path,
    *,
    valid: TextDataset | None = None,
    model_options: dict[str, Any] | None = None,
    text_config: TextConfig | None = None,
    train_config: TrainConfig | None = None,
    base_model: ClassifierConfig | None = None,
    valid_fraction: float = 0.1,
    resume: bool = False,
    progress: bool = True,
    resume_hint: str | None = None,
    exit_message: str | None = None,
    callbacks: Sequence[Callback] = (),
) -> TrainingRun:
    """Train a text classifier and checkpoint it in ``output_dir``.

    Args:
      train: labelled training texts.
      output_dir: receives ``checkpoints/``, ``metrics.jsonl`` and ``training_curves.png``.
      valid: validation texts; None carves ``valid_fraction`` of ``train`` (stratified, seeded).
      model_options: ``ClassifierConfig`` fields (vocab_size and num_classes are set here;
        the data-dependent fields left out are resolved from the training split,
        ``seqclf.recipe``).
      text_config: how texts become ids (``TextConfig``); its fields left at None (all of them
        when None) are resolved from the training split.
      train_config: a ``TrainConfig``; its fields left at None are resolved from the
        training split (``seqclf.recipe``).
      base_model: the configuration the options apply to (default ``ClassifierConfig()``;
        e.g. ``seqclf.presets.CLASSIC``).
      valid_fraction: share of train held out when ``valid`` is None.
      resume: continue the run saved in ``output_dir`` (its vocabulary and configuration win; a
        different configuration given now is an error).
      progress: show progress bars.
      resume_hint: the command line that resumes this run (printed on interruption).
      exit_message: printed when a second SIGINT/SIGTERM ends the process at once (see ``fit``).
      callbacks: your own ``seqclf.Callback``s, called after seqclf's own at every hook.

    Returns:
      A ``TrainingRun``.

    Raises:
      seqclf.run_lock.RunInUseError: another process is training into ``output_dir``.
    """
    train_config = train_config or TrainConfig()
    text = text_config or TextConfig()
    train, valid = split_for_validation(train, valid, valid_fraction, train_config.seed)
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    store = CheckpointStore(output_dir)

    saved = store.restore_meta() if resume and store.latest_step() is not None else None
    if saved is None and not resume and store.latest_step() is not None:
        raise CheckpointError(
            f"{output_dir} already holds a training run (checkpoint step "
            f"{store.latest_step()}); pass --resume to continue it or choose another "
            "--output-dir"
        )
    vocabulary = None
    if saved is not None:
        vocabulary = Vocabulary.from_dict(saved["vocabulary"])
        if saved["classes"] != train.classes:
            raise CheckpointError(
                f"{store.directory} was trained on classes {saved['classes']}, this data has "
                f"{train.classes}"
            )
        saved_train = TrainConfig.from_dict(saved["train_config"])
        saved_text = TextConfig.from_meta(saved)
        differ = settings_not_used(train_config, saved_train) + settings_not_used(text, saved_text)
        epochs = train_config.epochs or saved_train.epochs
        train_config = dataclasses.replace(saved_train, epochs=epochs)
        text = saved_text
        if differ:
            tqdm.write(
                f"Resuming with the saved training settings (only --epochs may change; "
                f"given now and not used: {', '.join(differ)})."
            )
    data = encode_splits(train, valid, text, train_config, vocabulary)
    config, chosen_model = resolve_model_config(
        model_options,
        data.profile,
        vocab_size=len(data.vocabulary),
        num_classes=len(data.classes),
        max_len=data.text.max_len,
        base=base_model,
    )
    if saved is not None:
        saved_config = ClassifierConfig.from_dict(saved["model_config"])
        if config != saved_config:
            diff = {
                k: (getattr(saved_config, k), getattr(config, k))
                for k in config.to_dict()
                if getattr(saved_config, k) != getattr(config, k)
            }
            raise CheckpointError(
                f"{store.directory} belongs to a different model configuration "
                f"(saved vs now: {diff}); use another --output-dir or the same options"
            )
    elif data.chosen or chosen_model:
        tqdm.write(f"Settings from the data: {describe({**data.chosen, **chosen_model})}.")
    meta = {  # the training and text configs are added by the checkpoint callback
        "model_config": config.to_dict(),
        "vocabulary": data.vocabulary.to_dict(),
        "classes": data.classes,
    }
    result = fit(
        build_classifier(config),
        data.train,
        data.valid,
        data.train_config,
        text=data.text,
        store=store,
        meta=meta,
        resume=resume,
        output_dir=output_dir,
        progress=progress,
        resume_hint=resume_hint,
        exit_message=exit_message,
        callbacks=callbacks,
    )
    store.close()
    return TrainingRun(
        output_dir,
        config,
        data.vocabulary,
        data.classes,
        result,
        data.encode_seconds,
        len(train),
        len(valid),
        data.text,
    )
