"""Dynamic micro-batching: requests that arrive within a few milliseconds share one predictor call.

A ``MicroBatcher`` owns a bounded queue of jobs (one per HTTP request) and worker threads:

- batching on (the default): a worker takes the first waiting job, then gathers more for up to
  ``max_wait_ms`` (or until ``max_batch_texts`` texts are gathered, or at once from a backlog)
  and scores all their texts in one ``predictor.predict_proba`` call, which runs them in the
  predictor's compiled ``(batch_size, bucket)`` shapes — one device call for up to
  ``batch_size`` texts, however many requests they came from. ``batch_workers`` (2) workers
  do this, so that one gathers and scores while the other's call runs;
- batching off: ``threads`` workers each take one job at a time and score it alone (what a plain
  thread-per-request server does), for comparison.

A full queue raises ``QueueFull`` at once (the server answers 503) instead of letting latency grow
without bound. If a gathered call fails, each of its jobs is retried alone, so only the job whose
texts cause the error gets it. ``close()`` stops taking jobs, finishes every queued one and joins
the workers.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any


class QueueFull(Exception):
    """The queue holds ``max_queue`` waiting requests; try again later."""


class ShuttingDown(Exception):
    """The batcher was closed and takes no new requests."""


@dataclass
class Job:
    """One request: its texts, whether to explain them, and where its result goes.

    The result is a sequence with one entry per text: rows of (N, C) probabilities, or
    ``Explanation`` objects when ``explain``.
    """

    texts: list[str]
    explain: bool = False
    future: Future = field(default_factory=Future)


@dataclass
class BatcherStats:
    """Counters since start: requests done, texts scored, predictor calls made."""

    requests: int = 0
    texts: int = 0
    calls: int = 0
    failed_requests: int = 0


_STOP = object()


class MicroBatcher:
    """Queue + worker threads in front of one shared predictor (see the module docstring).

    Args:
      predictor: has ``predict_proba(texts) -> (N, C) array``; for explanations also
        ``explain(texts, steps=...) -> list`` (one entry per text).
      batching: gather concurrent requests into one call (True) or score each alone (False).
      max_wait_ms: how long the worker waits for more requests after the first one.
      max_batch_texts: stop gathering at this many texts (default ``predictor.batch_size``, the
        compiled batch shape, or 64).
      max_queue: requests that may wait; one more raises ``QueueFull``.
      batch_workers: workers when batching is on (each gathers its own calls).
      threads: workers when batching is off.
      explain_steps: integrated-gradients steps for explanations.
    """

    def __init__(
        self,
        predictor: Any,
        *,
        batching: bool = True,
        max_wait_ms: float = 5.0,
        max_batch_texts: int | None = None,
        max_queue: int = 256,
        batch_workers: int = 2,
        threads: int = 4,
        explain_steps: int = 32,
    ):
        if max_wait_ms < 0:
            raise ValueError(f"max_wait_ms must be >= 0, got {max_wait_ms}")
        if max_queue <= 0:
            raise ValueError(f"max_queue must be positive, got {max_queue}")
        if threads <= 0:
            raise ValueError(f"threads must be positive, got {threads}")
        if batch_workers <= 0:
            raise ValueError(f"batch_workers must be positive, got {batch_workers}")
        self.predictor = predictor
        self.batching = batching
        self.max_wait = max_wait_ms / 1000.0
        self.max_batch_texts = max_batch_texts or getattr(predictor, "batch_size", 64)
        if self.max_batch_texts <= 0:
            raise ValueError(f"max_batch_texts must be positive, got {self.max_batch_texts}")
        self.max_queue = max_queue
        self.explain_steps = explain_steps
        self.stats = BatcherStats()
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._lock = threading.Lock()  # guards _closed and stats
        self._closed = False
        # Two gathering workers: 64 clients on 2 CPU cores got 534 -> 596 texts/s and p99
        # 316 -> 292 ms against one (benchmarks/README.md, "Serving").
        n_workers = batch_workers if batching else threads
        self._workers = [
            threading.Thread(target=self._work, name=f"seqclf-batcher-{i}", daemon=True)
            for i in range(n_workers)
        ]
        self._started = False

    # -- public ---------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the worker threads (once)."""
        if not self._started:
            self._started = True
            for worker in self._workers:
                worker.start()

    def submit(self, texts: Sequence[str], explain: bool = False) -> Future:
        """Queue one request; its future gets one result per text (see ``Job``).

        Raises:
          QueueFull: ``max_queue`` requests are already waiting.
          ShuttingDown: ``close()`` was called.
        """
        job = Job(list(texts), explain)
        with self._lock:
            if self._closed:
                raise ShuttingDown("the server is shutting down")
            try:
                self._queue.put_nowait(job)
            except queue.Full:
                raise QueueFull(f"{self.max_queue} requests are already waiting") from None
        return job.future

    def queued(self) -> int:
        """Requests waiting now (not counting those being scored)."""
        return self._queue.qsize()

    def close(self, timeout: float | None = None) -> None:
        """Take no more requests, finish the queued ones, stop the workers."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if not self._started:
            self.start()  # so that the queued jobs (if any) are still answered
        for _ in self._workers:
            self._queue.put(_STOP)  # after every queued job: the queue is FIFO
        for worker in self._workers:
            worker.join(timeout)

    # -- workers --------------------------------------------------------------------------------

    def _work(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            jobs, stop = self._gather(first) if self.batching else ([first], False)
            self._run(jobs)
            if stop:
                return

    def _gather(self, first: Job) -> tuple[list[Job], bool]:
        """``first`` and the jobs that arrive within ``max_wait`` (a backlog is taken at once),
        up to ``max_batch_texts`` texts. Also says whether the stop mark was met."""
        jobs, n = [first], len(first.texts)
        deadline = time.monotonic() + self.max_wait
        while n < self.max_batch_texts:
            remaining = deadline - time.monotonic()
            try:  # past the deadline, still take what is already waiting
                job = self._queue.get(remaining > 0, max(remaining, 0))
            except queue.Empty:
                break
            if job is _STOP:
                return jobs, True
            jobs.append(job)
            n += len(job.texts)
        return jobs, False

    def _run(self, jobs: list[Job]) -> None:
        """Score the live jobs: predictions in one call, explanations in another."""
        live = [j for j in jobs if j.future.set_running_or_notify_cancel()]  # drops cancelled
        predict = [j for j in live if not j.explain]
        explain = [j for j in live if j.explain]
        if predict:
            self._call(predict, self.predictor.predict_proba)
        if explain:
            self._call(explain, self._explain)

    def _explain(self, texts: list[str]) -> list[Any]:
        return self.predictor.explain(texts, steps=self.explain_steps)

    def _call(self, jobs: list[Job], fn: Callable[[list[str]], Any]) -> None:
        texts = [t for j in jobs for t in j.texts]
        try:
            results = fn(texts)
            self._count(len(jobs), len(texts), 1, 0)
        except Exception as err:
            if len(jobs) == 1:
                self._count(1, 0, 1, 1)
                jobs[0].future.set_exception(err)
                return
            self._count(0, 0, 1, 0)
            for job in jobs:  # find the job that fails; the others still get their answers
                self._call([job], fn)
            return
        start = 0
        for job in jobs:
            job.future.set_result(results[start : start + len(job.texts)])
            start += len(job.texts)

    def _count(self, requests: int, texts: int, calls: int, failed: int) -> None:
        with self._lock:
            self.stats.requests += requests
            self.stats.texts += texts
            self.stats.calls += calls
            self.stats.failed_requests += failed
