"""``ServeSettings``: the limits and batching of one ``seqclf.serve`` server.

Apart from ``seqclf.serve`` (which needs the ``serve`` extra, FastAPI) so that the command line
can generate ``seqclf serve``'s flags from these fields (``seqclf.cli_options``) without the
extra; ``seqclf.serve`` re-exports it.
"""

from __future__ import annotations

import dataclasses

from seqclf.config_dict import reject_non_finite


@dataclasses.dataclass(frozen=True)
class ServeSettings:
    """Limits and batching of one server (the ``seqclf serve`` options).

    Attributes:
      batching: gather concurrent requests into shared predictor calls (off: each request is
        scored alone, by a pool of worker threads).
      max_wait_ms: milliseconds a first request waits for others to join its batch.
      max_batch_texts: texts gathered at most per call; None: the predictor's batch size,
        ``--batch-size`` in ``seqclf serve``.
      max_queue: requests that may wait; more answer 503.
      batch_workers: threads that gather and score batches when batching is on (2: one
        gathers the next batch while the other's call runs).
      threads: worker threads when batching is off.
      max_texts: texts per request (413 above).
      max_chars: characters per text (413 above).
      max_explain_texts: texts per request when explanations are asked for (413 above).
      max_body_bytes: request body size in bytes (413 above).
      read_timeout_s: seconds to receive the whole body (408 after).
      explain_steps: integrated-gradients steps of each explanation.
      warm_up_explain: also compile the explanations' shapes at start-up.
      retry_after_s: seconds a 503 tells the client to wait (its ``Retry-After``).
    """

    batching: bool = True
    max_wait_ms: float = 5.0
    max_batch_texts: int | None = None
    max_queue: int = 256
    batch_workers: int = 2
    threads: int = 4
    max_texts: int = 256
    max_chars: int = 100_000
    max_explain_texts: int = 16
    max_body_bytes: int = 8 * 2**20
    read_timeout_s: float = 10.0
    explain_steps: int = 32
    warm_up_explain: bool = True
    retry_after_s: int = 1

    def __post_init__(self) -> None:
        reject_non_finite(self, "serve settings")  # first: NaN passes every comparison
        problems = []
        at_least_one = (
            "max_queue",
            "batch_workers",
            "threads",
            "max_texts",
            "max_chars",
            "max_explain_texts",
            "max_body_bytes",
            "explain_steps",
        )
        for name in at_least_one:
            if getattr(self, name) < 1:
                problems.append(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.max_batch_texts is not None and self.max_batch_texts < 1:
            problems.append(f"max_batch_texts must be >= 1, got {self.max_batch_texts}")
        if self.max_wait_ms < 0:
            problems.append(f"max_wait_ms must be >= 0, got {self.max_wait_ms}")
        if self.read_timeout_s <= 0:
            problems.append(f"read_timeout_s must be > 0, got {self.read_timeout_s}")
        if self.retry_after_s < 0:
            problems.append(f"retry_after_s must be >= 0, got {self.retry_after_s}")
        if problems:
            raise ValueError("invalid serve settings: " + "; ".join(problems))
