"""Prediction: ``Predictor``, texts → class probabilities with the model's text pipeline
(``seqclf.load(dir)``, in ``seqclf.loading``, opens one from a checkpoint directory).

A predictor holds no mutable state after loading (a jit-compiled forward function, parameters,
the vocabulary, and the two threads its device calls run in), so one instance can serve several
threads at once, and gives each the same results as one thread would (tested).
"""

from __future__ import annotations

import functools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor, wait
from itertools import islice
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jax
import jax.numpy as jnp
import numpy as np

from seqclf.checkpoint import CheckpointError, CheckpointStore
from seqclf.data.batching import batches, pad_batch, padded_length
from seqclf.data.empty_texts import EmptyTexts
from seqclf.data.empty_texts import EmptyTextWarning as EmptyTextWarning
from seqclf.data.preprocessing import TextConfig
from seqclf.data.sources import TextDataset
from seqclf.data.text import Vocabulary
from seqclf.metrics import classification_metrics, mean_cross_entropy
from seqclf.model import HEAD_LOGITS, ClassifierConfig, build_classifier

if TYPE_CHECKING:
    from seqclf.explain import Explanation

CHUNK_TEXTS = 2048  # texts encoded at a time when streaming
IN_FLIGHT_CALLS = 2  # device calls of one prediction that run at once


class Predictor:
    """Texts → class probabilities and labels, with the text pipeline the model was trained with.

    ``model``: any Flax module with ``apply({"params": p}, tokens, lengths)`` → logits (B, C) may
    be given instead of ``config`` (then ``explain`` and ``export``, which need a seqclf model,
    are not available).

    Attributes:
      classes: label names, in the order of the probability columns.
      config: the model's ``ClassifierConfig`` (None for a model of one's own).
      model: the Flax module.
      vocabulary: the training vocabulary.
      text: the ``TextConfig`` the model was trained with (tokenizer, length, truncation,
        padded lengths); ``max_len``, ``truncating`` and ``buckets`` are its settings.
    """

    def __init__(
        self,
        config: ClassifierConfig | None,
        params: Any,
        vocabulary: Vocabulary,
        classes: list[str],
        *,
        text: TextConfig,
        batch_size: int = 64,
        model: Any = None,
    ):
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if text.max_len is None or text.num_buckets is None:
            raise ValueError(f"the text configuration must give max_len and num_buckets: {text}")
        if config is None and model is None:
            raise ValueError("give the model's ClassifierConfig, or the model")
        if config is not None and len(classes) != config.num_classes:
            raise CheckpointError(
                f"the checkpoint names {len(classes)} classes but the model has "
                f"{config.num_classes} outputs"
            )
        self.config = config
        self.classes = list(classes)
        self.vocabulary = vocabulary
        self.text = text
        self.batch_size = batch_size
        self._params = jax.device_put(jax.device_get(params))  # one device, whatever trained it
        model = build_classifier(config) if model is None else model
        self.model = model

        @jax.jit
        def forward(params, tokens, lengths):
            return jax.nn.softmax(model.apply({"params": params}, tokens, lengths), axis=-1)

        @functools.partial(jax.jit, static_argnums=3)
        def head_forward(params, tokens, lengths, name):
            _, sown = model.apply({"params": params}, tokens, lengths, mutable=[HEAD_LOGITS])
            return jax.nn.softmax(sown[HEAD_LOGITS][name][0], axis=-1)

        self._forward = forward
        self._head_forward = head_forward
        # Device calls run in these threads, IN_FLIGHT_CALLS at a time: one call's recurrence
        # (a sequence of small steps) keeps about 1.6 of 2 CPU cores busy, two at once 1.9.
        self._calls = ThreadPoolExecutor(IN_FLIGHT_CALLS, thread_name_prefix="seqclf-predict")
        self._integrated_gradients = None
        if config is not None:
            from seqclf.explain import integrated_gradients_fn

            self._integrated_gradients = integrated_gradients_fn(config)  # compiled on first use

    @property
    def max_len(self) -> int:
        """Tokens kept per text (``text.max_len``)."""
        return self.text.max_len

    @property
    def truncating(self) -> str:
        """Which end of a long text is kept (``text.truncating``)."""
        return self.text.truncating

    @property
    def buckets(self) -> list[int]:
        """The padded lengths of the batches (``text.buckets``)."""
        return self.text.buckets

    @property
    def row_sizes(self) -> tuple[int, ...]:
        """The numbers of rows a device call is padded to: half the batch size for a call of at
        most that many texts (a few requests of a server, the last batch), else the batch size;
        the batch size alone below 16. Each (rows, bucket) pair is one compiled shape."""
        return _row_sizes(self.batch_size)

    def __repr__(self) -> str:  # never the parameter arrays
        return f"{type(self).__name__}({self._summary()})"

    def _summary(self) -> str:
        model = (
            f"rnn={self.config.rnn!r}, hidden_size={self.config.hidden_size}"
            if self.config is not None
            else f"model={type(self.model).__name__}"
        )
        return (
            f"classes={self.classes}, heads={list(self.heads)}, {model}, "
            f"vocabulary={len(self.vocabulary)} words, max_len={self.max_len}"
        )

    @property
    def heads(self) -> tuple[str, ...]:
        """The model's output heads (``predict_proba(..., head=NAME)`` gives one alone)."""
        return self.config.heads if self.config is not None else ("output",)

    def save(self, directory: str | Path) -> Path:
        """Write this model as a run directory that ``seqclf.load`` reads: a checkpoint of its
        parameters with the vocabulary, classes and configurations. A model of one's own is
        loaded back with ``seqclf.load(directory, model=the_same_module)``.

        Raises:
          CheckpointError: ``directory`` already holds a checkpoint (nothing is overwritten).
        """
        store = CheckpointStore(directory)
        try:
            if store.latest_step() is not None:
                raise CheckpointError(
                    f"{directory} already holds a checkpoint (step {store.latest_step()}); "
                    "choose another directory"
                )
            meta = {
                "model_config": None if self.config is None else self.config.to_dict(),
                "model_class": type(self.model).__name__,
                "text_config": self.text.to_dict(),
                "vocabulary": self.vocabulary.to_dict(),
                "classes": self.classes,
            }
            store.save(0, {"params": self._params}, meta)
        finally:
            store.close()
        return Path(directory)

    def iter_predict_proba(
        self, texts: Iterable[str], batch_size: int | None = None, head: str | None = None
    ) -> Iterator[np.ndarray]:
        """Stream (b, C) probability blocks (one per ``CHUNK_TEXTS`` texts), in input order,
        reading ``texts`` lazily.

        ``head``: one of ``config.heads`` (e.g. ``"recurrent_head"``, the CNN-LSTM) for that
        head's own probabilities instead of the stacked prediction.

        Only ``CHUNK_TEXTS`` texts are held at a time, so a file of any size can be scored.

        Texts may be str or UTF-8 bytes; one that is neither, or bytes that are not UTF-8, raises
        ValueError/TypeError naming its position. Texts with no tokens (empty, whitespace, or
        only characters the tokenizer drops) are still scored (the model's answer to an empty
        input) and, once the stream ends, an ``EmptyTextWarning`` gives their number and first
        positions.
        """
        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size <= 0:
            raise ValueError(f"batch_size must be positive, got {batch_size}")
        if isinstance(texts, (str, bytes)):
            raise TypeError("texts must be an iterable of texts, not a single str or bytes")
        if head is not None and head not in self.heads:
            raise ValueError(f"head must be one of {self.heads}, got {head!r}")
        single = head is None or len(self.heads) == 1
        sizes = _row_sizes(batch_size)

        def score(batch: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
            # Half the rows for a small call: a server's call of 29 texts then costs about
            # half as much as 64 rows would, and its requests wait that much less.
            rows = next(size for size in sizes if len(batch["tokens"]) <= size)
            padded, n_real = pad_batch(batch, rows)
            tokens, lengths = jnp.asarray(padded["tokens"]), jnp.asarray(padded["lengths"])
            if single:
                probs = self._forward(self._params, tokens, lengths)
            else:
                probs = self._head_forward(self._params, tokens, lengths, head)
            return batch["index"], np.asarray(probs)[:n_real]

        texts = iter(texts)
        empty = EmptyTexts()
        offset = 0
        while chunk := list(islice(texts, CHUNK_TEXTS)):
            ids = _encode(self.vocabulary, chunk, offset)
            empty.see(ids, offset)
            offset += len(chunk)
            # Sorted by length within the chunk, each batch is padded to its own rows' bucket
            # (IMDB's test reviews: 7.2 M padded steps instead of 15.0 M in input order); the rows
            # go back to input order below. A text's probabilities do not depend on its batch.
            stream = batches(
                ids,
                None,
                batch_size,
                max_len=self.max_len,
                truncating=self.truncating,
                buckets=self.buckets,
                sort_by_length=True,
            )
            block = None  # (len(chunk), ...) as the forward's rows, allocated at the first batch
            calls = (part for b in stream for part in _split_by_bucket(b, sizes, self.buckets))
            for index, probs in _in_order(self._calls, score, calls, IN_FLIGHT_CALLS):
                if block is None:
                    block = np.zeros((len(chunk), *probs.shape[1:]), probs.dtype)
                block[index] = probs
            yield block
        empty.warn(offset)

    def predict_proba(
        self, texts: str | Iterable[str], batch_size: int | None = None, head: str | None = None
    ) -> np.ndarray:
        """(N, num_classes) class probabilities; a single string counts as one text.

        ``head``: one head's own probabilities (see ``iter_predict_proba``).
        """
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        blocks = list(self.iter_predict_proba(texts, batch_size, head))
        if not blocks:
            return np.zeros((0, len(self.classes)), np.float32)
        return np.concatenate(blocks)

    def predict(self, texts: str | Iterable[str], batch_size: int | None = None) -> list[str]:
        """The most probable label name for each text."""
        probs = self.predict_proba(texts, batch_size)
        return [self.classes[i] for i in probs.argmax(axis=1)]

    def evaluate(
        self,
        dataset: TextDataset,
        batch_size: int | None = None,
        report_dir: str | Path | None = None,
    ) -> dict[str, float]:
        """Loss, accuracy (and macro-F1 for > 2 classes) on labelled data.

        The dataset's class names are matched to the model's by name; a label the model never saw
        raises ``ValueError`` naming it.

        Args:
          dataset: labelled texts.
          batch_size: texts per forward pass (default: the predictor's).
          report_dir: also write the evaluation report there (per-class table, confusion matrix,
            calibration curve, most confident mistakes: see ``seqclf.report``), from the same
            single pass over the data.
        """
        if report_dir is not None:
            from seqclf.report import evaluation_report

            return evaluation_report(self, dataset, report_dir, batch_size=batch_size).metrics
        labels, probs = self.labelled_probabilities(dataset, batch_size)
        return classification_metrics(labels, probs, mean_cross_entropy(labels, probs))

    def explain(
        self, texts: str | list[str], steps: int = 32, target: str | None = None
    ) -> list[Explanation]:
        """Per-token attributions by integrated gradients, through every head of the model.

        Args:
          texts: one text or a list of them.
          steps: points of the integral over [0, 1] (trapezoid rule, >= 2); more is slower and
            more exact (see ``Explanation.completeness_error``).
          target: the class to explain; default the predicted class of each text.

        Returns:
          One ``seqclf.explain.Explanation`` per text; see ``seqclf.explain`` for what is
          integrated, and against which output.
        """
        from seqclf.explain import explain_texts

        self._needs_seqclf_model("explain")
        if isinstance(texts, (str, bytes)):
            texts = [texts]
        return explain_texts(self, list(texts), steps, target)

    def export(self, out_dir: str | Path, platforms: list[str] | None = None) -> Path:
        """Write this model as a ``jax.export`` artifact that ``seqclf.exported.load`` runs with
        jax and numpy alone (see ``seqclf.export``); returns ``out_dir``."""
        from seqclf.export import export_predictor

        self._needs_seqclf_model("export")
        return export_predictor(self, out_dir, platforms)

    def _needs_seqclf_model(self, what: str) -> None:
        if self.config is None:
            raise NotImplementedError(
                f"{what} needs a seqclf model (build_classifier); this predictor wraps "
                f"{type(self.model).__name__}"
            )

    def labelled_probabilities(
        self, dataset: TextDataset, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The dataset's labels as the model's class ids, int (N,), and the predicted
        probabilities, float (N, C); see ``evaluate`` for how labels are matched."""
        if len(dataset) == 0:
            raise ValueError("the evaluation dataset is empty")
        problems = []
        for k, name in enumerate(dataset.classes):
            if name in self.classes:
                continue
            where = np.flatnonzero(dataset.labels == k)
            if where.size:
                problems.append(
                    f"label {name!r} ({where.size} example(s), the first at position {where[0]})"
                )
        if problems:
            raise ValueError(
                f"never seen in training: {'; '.join(problems)}; the model knows only "
                f"{self.classes}"
            )
        remap = np.array(
            [self.classes.index(c) if c in self.classes else -1 for c in dataset.classes]
        )
        labels = remap[dataset.labels]
        return labels, self.predict_proba(dataset.texts, batch_size)


def _row_sizes(batch_size: int) -> tuple[int, ...]:
    """``(batch_size // 2, batch_size)``, or ``(batch_size,)`` when half would be under 8 rows."""
    half = batch_size // 2
    return (half, batch_size) if half >= 8 else (batch_size,)


def _in_order(
    pool: ThreadPoolExecutor, fn: Callable[[Any], Any], items: Iterable[Any], depth: int
) -> Iterator[Any]:
    """``fn(item)`` for each item, in ``pool``, up to ``depth`` at once; results in item order."""
    pending: deque[Future] = deque()
    try:
        for item in items:
            pending.append(pool.submit(fn, item))
            if len(pending) >= depth:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    finally:  # an error or an abandoned stream: nothing left running on its behalf
        for future in pending:
            future.cancel()
        wait(pending)


def _split_by_bucket(
    batch: dict[str, np.ndarray], sizes: tuple[int, ...], buckets: list[int]
) -> list[dict[str, np.ndarray]]:
    """``batch`` as one call, or as two calls of ``sizes[0]`` rows when that pads fewer steps.

    A batch of more than ``sizes[0]`` rows is padded to ``sizes[-1]`` rows of its longest row's
    bucket. When its ``sizes[0]`` shortest rows (the first ones: prediction batches are sorted
    by length) fit a smaller bucket, they go in a call of their own, cut to the bucket of the
    longest of them, and the rest in a second call: a server's call of 60 reviews that mixes
    short and long ones then pads half of them to a shorter length instead of all to the longest.
    Both parts are calls of shapes already compiled. Rows keep their ``index``.
    """
    half, tokens, lengths = sizes[0], batch["tokens"], batch["lengths"]
    if len(sizes) < 2 or len(tokens) <= half:
        return [batch]
    bucket = padded_length(int(lengths[:half].max(initial=0)), buckets)
    if bucket >= tokens.shape[1]:
        return [batch]
    first = {key: value[:half] for key, value in batch.items()}
    first["tokens"] = tokens[:half, :bucket]
    return [first, {key: value[half:] for key, value in batch.items()}]


def _encode(vocabulary: Vocabulary, texts: list[Any], offset: int) -> list[np.ndarray]:
    """``vocabulary.encode_batch(texts)``; an error names the text's position in the whole stream
    (``offset`` + its index here), not in this chunk."""
    try:
        return vocabulary.encode_batch(texts)
    except (ValueError, TypeError):
        for i, text in enumerate(texts):
            if isinstance(text, str):
                continue
            if not isinstance(text, (bytes, bytearray, memoryview)):
                raise TypeError(
                    f"text {offset + i} must be str or bytes, got {type(text).__name__}"
                ) from None
            try:
                bytes(text).decode("utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"text {offset + i} is not valid UTF-8 ({e.reason} at byte {e.start})"
                ) from None
        raise
