"""One training run at a time per output directory: an exclusive lock held while a run trains.

The lock is ``fcntl.flock`` on ``<output_dir>/.seqclf-train.lock``; the kernel releases it when the
process ends, however it ends (SIGKILL included), so a lock can never outlive its run. The file
also holds the PID of the run that holds it, for the message a second writer gets, and is emptied
when the run ends normally: a PID still written there when the lock is free means the run that
held it was killed, which is said (a note) as the new run takes the lock over.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tqdm.auto import tqdm

LOCK_FILE = ".seqclf-train.lock"

_held: dict[Path, int] = {}  # lock files this process holds → their descriptors (re-entrance)


class RunInUseError(RuntimeError):
    """Another process is training into the same output directory."""


def holder(output_dir: str | Path) -> int | None:
    """The PID of the live process training into ``output_dir``, or None (nobody, or unknown).

    Readers use it only for their messages; it takes no lock (a shared lock, even for an instant,
    would make a training run starting at that instant fail to take its own).
    """
    pid = _pid_in(Path(output_dir).expanduser() / LOCK_FILE)
    return pid if pid is not None and _alive(pid) else None


@contextmanager
def run_lock(output_dir: str | Path) -> Iterator[None]:
    """Hold the training lock of ``output_dir`` (which must exist) for the ``with`` block.

    Re-entrant within a process (the CLI takes it before loading data, the training function
    again). Raises ``RunInUseError`` at once, naming the PID, if another process holds it.
    """
    directory = Path(output_dir).expanduser().resolve()
    path = directory / LOCK_FILE
    if path in _held:
        yield
        return
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = _pid_in(path)
        os.close(fd)
        who = f"PID {pid}" if pid is not None else "a process that is just starting"
        raise RunInUseError(
            f"{directory} is in use by another training run ({who}); wait for it to end, "
            "or choose another --output-dir"
        ) from None
    except BaseException:
        os.close(fd)
        raise
    previous = _pid_in(path)
    if previous is not None and previous != os.getpid():
        state = "is no longer running" if not _alive(previous) else "no longer holds it"
        tqdm.write(
            f"Note: {directory} was left locked by a training run that was killed (PID "
            f"{previous}, which {state}); taking the lock over."
        )
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    _held[path] = fd
    try:
        yield
    finally:
        del _held[path]
        os.ftruncate(fd, 0)  # ended normally: nothing to take over
        os.close(fd)  # releases the lock


def release_all_for_exit() -> None:
    """Empty the lock files this process holds (before ``os._exit``, which skips ``finally``):
    the next run should not report a killed run. The kernel drops the locks themselves."""
    for fd in _held.values():
        try:
            os.ftruncate(fd, 0)
        except OSError:
            pass


def _pid_in(path: Path) -> int | None:
    try:
        text = path.read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # exists, owned by someone else
    return True
