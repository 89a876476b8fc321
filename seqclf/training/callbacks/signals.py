"""Stopping on SIGINT/SIGTERM: ``StopOnSignal`` (a callback), ``watch_signals``, ``exit_at_once``.

The first SIGINT or SIGTERM asks the run to stop after the step it is in (checkpoints stay as
they are; the checkpoint callback says how to resume); a second one stops at once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import NoReturn

from tqdm.auto import tqdm

from seqclf.training.callbacks.base import Callback
from seqclf.training.run import Run

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
def stop_on_signals(
    on_first: Callable[[str], None], exit_message: str | None = None
) -> Iterator[None]:
    """The first SIGINT/SIGTERM calls ``on_first(name)`` (the loop stops after its step).

    A second one stops at once: with ``exit_message`` (the command line) it prints it and ends
    the process (``exit_at_once``), whatever the main thread is doing; without (the Python API,
    where ending the process would end a notebook's kernel) it raises KeyboardInterrupt in the
    main thread.
    """
    received: list[str] = []

    def on_signal(name: str, k: int) -> None:
        if k == 1:
            received.append(name)
            tqdm.write(f"\n{name} received: finishing the current step, then stopping.")
            on_first(name)
        elif exit_message is not None:
            exit_at_once(exit_message)
        elif threading.current_thread() is threading.main_thread():
            raise KeyboardInterrupt

    if exit_message is not None:
        with watch_signals(on_signal):
            yield
        return
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):  # noqa: ARG001
        on_signal(signal.Signals(signum).name, 2 if received else 1)

    previous = {s: signal.signal(s, handler) for s in STOP_SIGNALS}
    try:
        yield
    finally:
        for s, h in previous.items():
            signal.signal(s, h)


class StopOnSignal(Callback):
    """SIGINT/SIGTERM stop the run after the current step (``stop_on_signals``), from the
    start of training to its end.

    Args:
      exit_message: given (by the command line), a second signal prints it and ends the process
        at once with status 130; None raises KeyboardInterrupt instead (a notebook's kernel
        survives it).
    """

    def __init__(self, exit_message: str | None = None):
        self.exit_message = exit_message
        self._handlers = contextlib.ExitStack()

    def on_train_begin(self, run: Run) -> None:
        if run.stop_reason is None:
            self._handlers.enter_context(stop_on_signals(run.request_stop, self.exit_message))

    def on_train_end(self, run: Run) -> None:
        self._handlers.close()
