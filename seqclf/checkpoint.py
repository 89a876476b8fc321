"""Checkpoints with orbax-checkpoint: parameters, optimizer state and everything needed to rebuild
the model and its text pipeline, saved every epoch; the best (by validation accuracy) and the latest
are kept.

Layout of ``<output_dir>/checkpoints/<step>/``:

    state/   params, opt_state and step (orbax StandardSave; arrays)
    meta/    JSON: model config, vocabulary, class names, data settings, training progress

orbax writes each step into a temporary directory and renames it when complete, so a run killed
while saving leaves the previous checkpoints intact and no half-written step is ever listed (the
SIGKILL test in ``tests/test_reliability.py`` checks it). A step folder damaged afterwards (files
deleted, truncated or overwritten, e.g. by an interrupted copy or a failing disk) raises
``CheckpointError`` naming the folder and, when it can be told, the array.

orbax 0.12.8 verifies no array data: its zarr2 chunks are zstd frames without content checksums
(zarr3 checksums only the shard index), so overwritten bytes can decode into other numbers. Each
checkpoint's metadata therefore holds a CRC-32 of every array (``checksums``), checked whenever
arrays are restored.

The module runs past ~400 lines on purpose: saving, listing, restoring and the damage and
disk-full diagnoses are one concern (what a checkpoint on disk is and what can go wrong with
it), and a newcomer looking for "the checkpoint code" finds all of it here.

A reader (prediction, evaluation) may open a run while it trains: the step it picked can be
superseded and removed while it reads it. That raises ``CheckpointSuperseded`` (never "damaged"),
which ``seqclf.load`` answers by listing the steps again.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import re
import shutil
import time
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

FORMAT = "seqclf-checkpoint-1"
CHECKPOINTS_SUBDIR = "checkpoints"
DELETED_SUBDIR = "deleted"  # superseded steps are renamed here, then removed
_LIST_ATTEMPTS = 5  # a reader lists the steps again this often when one vanishes meanwhile


class CheckpointError(ValueError):
    """A checkpoint directory is missing, empty, incomplete or does not fit the model."""


class CheckpointSuperseded(CheckpointError):
    """The checkpoint being read was removed meanwhile (the run is training and saved a newer
    one): nothing is damaged; list the steps again."""


class DiskFullError(OSError):
    """No space was left on the checkpoint's file system while saving; earlier steps are intact.

    Attributes:
      step: the step being saved.
      last_step: the last complete checkpoint (None: none yet).
      device: the mount point of the file system that is full.
    """

    def __init__(self, message: str, step: int, last_step: int | None, device: str):
        super().__init__(errno.ENOSPC, message)
        self.step, self.last_step, self.device = step, last_step, device

    def __str__(self) -> str:
        return self.strerror


def checkpoints_dir(directory: str | Path) -> Path:
    """The orbax directory inside an output directory (or the directory itself if it is one)."""
    directory = Path(directory).expanduser().resolve()
    return directory / CHECKPOINTS_SUBDIR if directory.name != CHECKPOINTS_SUBDIR else directory


class CheckpointStore:
    """A thin wrapper over ``orbax.checkpoint.CheckpointManager``.

    Args:
      directory: the run's output directory; checkpoints go to ``directory/checkpoints``.
      create: create it if missing (training); False for reading (prediction, evaluation).
    """

    def __init__(self, directory: str | Path, *, create: bool = True):
        self.directory = checkpoints_dir(directory)
        if not create:
            _check_readable(self.directory)
        options = ocp.CheckpointManagerOptions(
            create=create,
            read_only=not create,
            # Keep the latest (to resume) and the best by validation accuracy (to predict).
            preservation_policy=policies.AnyPreservationPolicy(
                [
                    policies.LatestN(n=1),
                    policies.BestN(
                        get_metric_fn=lambda m: m["val_accuracy"],
                        n=1,
                        keep_checkpoints_without_metrics=False,
                    ),
                ]
            ),
            best_fn=lambda m: m["val_accuracy"],
            best_mode="max",
            enable_async_checkpointing=False,  # a save is complete when save() returns
            # Deleting a step folder file by file is not atomic: a kill in the middle would leave
            # a numbered, half-deleted step. Renaming it away first is atomic; we then remove the
            # renamed folder ourselves (an interrupted removal there is harmless).
            todelete_subdir=None if not create else DELETED_SUBDIR,
        )
        for attempt in range(_LIST_ATTEMPTS):
            try:
                self.manager = ocp.CheckpointManager(self.directory, options=options)
                break
            except FileNotFoundError:
                # A reader lists the steps, then reads each one's details: a run training there
                # may remove a superseded step in between. List again.
                if create or attempt == _LIST_ATTEMPTS - 1:
                    raise

    def save(
        self,
        step: int,
        state: dict[str, Any],
        meta: dict[str, Any],
        val_accuracy: float | None = None,
    ) -> None:
        """Save arrays ``state`` and JSON ``meta`` (with the arrays' checksums) as ``step``;
        ``val_accuracy`` ranks it.

        Raises:
          DiskFullError: no space left; the partial step is removed, earlier ones are intact.
        """
        metrics = None if val_accuracy is None else {"val_accuracy": float(val_accuracy)}
        meta = {"format": FORMAT, **meta, "checksums": checksums(state)}
        last = self.latest_step()
        try:
            with _orbax_logs_held():
                self.manager.save(
                    step,
                    args=ocp.args.Composite(
                        state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta)
                    ),
                    metrics=metrics,
                    force=True,
                )
                self.manager.wait_until_finished()
        except Exception as err:  # orbax and TensorStore raise many kinds of errors
            if not _is_disk_full(err):
                raise
            with _orbax_logs_held(), contextlib.suppress(Exception):
                self.manager.wait_until_finished()
            self._remove_partial(step)  # give back the space it took
            device = mount_point(self.directory)
            kept = (
                f"the last checkpoint, step {last}, is intact"
                if last is not None
                else "no checkpoint had been saved yet"
            )
            raise DiskFullError(
                f"no space left on {device} while saving step {step}; {kept}",
                step,
                last,
                device,
            ) from None
        shutil.rmtree(self.directory / DELETED_SUBDIR, ignore_errors=True)

    def _remove_partial(self, step: int, seconds: float = 2.0) -> None:
        """Remove the temporary folder of a failed save of ``step``. orbax's writer threads may
        still be finishing writes into it after the failure surfaced (recreating files as it is
        removed), so remove until it stays gone, for at most ``seconds``."""
        deadline = time.monotonic() + seconds
        while partial := list(self.directory.glob(f"{step}.orbax-checkpoint-tmp*")):
            for folder in partial:
                shutil.rmtree(folder, ignore_errors=True)
            if time.monotonic() > deadline:
                return
            time.sleep(0.1)  # then look again: gone for good, or recreated meanwhile

    def latest_step(self) -> int | None:
        return self.manager.latest_step()

    def best_step(self) -> int | None:
        return self.manager.best_step()

    def all_steps(self) -> list[int]:
        return list(self.manager.all_steps())

    def restore_meta(self, step: int | None = None) -> dict[str, Any]:
        """The JSON metadata of ``step`` (default: the latest)."""
        step = self._step(step)
        meta = self._restore(step, "meta", ocp.args.JsonRestore())
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            raise CheckpointError(
                f"{self.directory / str(step)} is not a seqclf checkpoint "
                f"(format {meta.get('format')!r}, expected {FORMAT!r})"
            )
        return meta

    def restore_state(self, target: dict[str, Any], step: int | None = None) -> dict[str, Any]:
        """Arrays of ``step`` (default: the latest), restored into the structure of ``target``.

        A checkpoint whose arrays do not match ``target`` (another model configuration or
        vocabulary) raises ``CheckpointError`` saying which.
        """
        step = self._step(step)
        where = self.directory / str(step)
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        try:
            state = self.manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            )["state"]
        except Exception as err:  # orbax and TensorStore raise many kinds of errors
            # Readable as saved (then it is another model's) or not readable at all (damaged)?
            saved = self._restore(
                step, "state", ocp.args.StandardRestore(self._as_saved_here(step))
            )
            difference = tree_difference(target, saved)
            raise CheckpointError(
                f"checkpoint {where} does not fit this model (another model configuration or "
                f"vocabulary): {difference or _short(err)}"
            ) from err
        difference = tree_difference(target, state)
        if difference:
            raise CheckpointError(
                f"checkpoint {where} does not fit this model (another model configuration or "
                f"vocabulary): {difference}"
            )
        self._verify(step, state)
        return state

    def restore_params(self, step: int | None = None) -> Any:
        """Only the parameters of ``step`` (default: the best), as saved: no model needed."""
        step = self.best_step() if step is None else step
        step = self._step(step)
        state = self._restore(step, "state", ocp.args.StandardRestore(self._as_saved_here(step)))
        if not isinstance(state, dict) or "params" not in state:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} holds no parameters")
        self._verify(step, {"params": state["params"]})
        return state["params"]

    def _verify(self, step: int, state: dict[str, Any]) -> None:
        """Compare the arrays read with the checksums saved beside them (checkpoints written
        before checksums existed have none: nothing to compare)."""
        saved = self.restore_meta(step).get("checksums") or {}
        now = checksums(state)
        changed = [k for k in now if k in saved and saved[k] != now[k]]
        if changed:
            more = f" (and {len(changed) - 3} more)" if len(changed) > 3 else ""
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} is damaged: the values of "
                f"{', '.join(changed[:3])}{more} differ from those saved (checksum mismatch; "
                f"bytes of its files were overwritten). {self._fallback(step)}"
            )

    def _restore(self, step: int, item: str, args: Any) -> Any:
        """One item (``"state"`` or ``"meta"``) of ``step``; any failure to read it becomes a
        ``CheckpointError`` that names the step folder."""
        try:
            return self.manager.restore(step, args=ocp.args.Composite(**{item: args}))[item]
        except Exception as err:  # orbax and TensorStore raise many kinds of errors
            raise self._damaged(step, item, err) from err

    def _damaged(self, step: int, item: str, err: Exception) -> CheckpointError:
        """The error for a step that cannot be read: superseded if its folder is gone (a run
        training there removed it), damaged if it is still there."""
        where = self.directory / str(step)
        if not where.exists():
            return CheckpointSuperseded(
                f"checkpoint {where} was removed while being read: the run saving there "
                "replaced it with a newer one"
            )
        array, reason = _describe(err)
        part = f"array {array}" if array else f"its {item!r} part"
        return CheckpointError(
            f"checkpoint {where} is damaged or incomplete: {part} cannot be read ({reason}). "
            f"{self._fallback(step)}"
        )

    def _fallback(self, step: int) -> str:
        """What a reader can do about damaged ``step``: the other checkpoints of the run."""
        from seqclf.run_lock import holder

        others = [s for s in self._listed_now() if s != step]
        if not others:
            return "The run has no other checkpoint: train it again (or restore a backup)."
        named = ", ".join(f"{s} ({'earlier' if s < step else 'later'})" for s in others)
        pid = holder(self.directory.parent)
        if pid is not None:  # never advise deleting in a run that is being trained
            return f"Its other checkpoints: step {named}; the run is training (PID {pid})."
        return (
            f"Its other checkpoints: step {named}; move that folder out of "
            f"{self.directory} to use them."
        )

    def _listed_now(self) -> list[int]:
        """The complete steps on disk now (the manager's list is from when it was opened)."""
        try:
            return sorted(int(p.name) for p in self.directory.iterdir() if p.name.isdigit())
        except OSError:
            return self.all_steps()

    def _as_saved_here(self, step: int) -> Any:
        """The saved arrays' shapes and dtypes, placed on this process's first device.

        Without a target orbax would restore each array with the sharding it was saved with,
        which fails when the run was saved on more devices than this process has.
        """
        try:
            saved = ocp.StandardCheckpointHandler().metadata(self.directory / str(step) / "state")
        except Exception as err:  # unreadable metadata: the same damage as unreadable arrays
            raise self._damaged(step, "state", err) from err
        tree = getattr(saved, "tree", saved)
        here = jax.sharding.SingleDeviceSharding(jax.local_devices()[0])
        return jax.tree_util.tree_map(
            lambda m: jax.ShapeDtypeStruct(m.shape, m.dtype, sharding=here), tree
        )

    def _step(self, step: int | None) -> int:
        step = self.latest_step() if step is None else step
        if step is None:
            if self._listed_now():  # there are steps now: the one listed was replaced meanwhile
                raise CheckpointSuperseded(
                    f"the checkpoints in {self.directory} changed while being listed: the run "
                    "saving there replaced them with newer ones"
                )
            raise CheckpointError(f"no complete checkpoint in {self.directory}")
        if step not in self.all_steps():
            raise CheckpointError(
                f"no checkpoint for step {step} in {self.directory}; found {self.all_steps()}"
            )
        return step

    def close(self) -> None:
        self.manager.close()


def _short(err: BaseException, limit: int = 200) -> str:
    """The first line of an error message, cut to ``limit`` characters."""
    text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _describe(err: BaseException) -> tuple[str | None, str]:
    """(the array, the reason) of an orbax/TensorStore read error.

    orbax wraps TensorStore's error in one that only prints the array's spec (as a pybind11
    ``<bound method ...>``); the cause says what failed, e.g. ``Error reading
    "params.embedding.embedding/0.0" in OCDBT database at local file "...": ZSTD_decompressStream()
    failed: Data corruption detected``.
    """
    inner = err
    while inner.__cause__ is not None:
        inner = inner.__cause__
    text = " ".join(str(inner).split())
    found = re.search(r'Error reading "([^"/]+)/', text)
    array = found.group(1).replace(".", "/") if found else None
    reason = text
    while (shorter := re.sub(r'^.*? local file "[^"]*": ', "", reason, count=1)) != reason:
        reason = shorter  # the innermost "...local file X: what went wrong"
    reason = re.sub(r"^[A-Z_]+: ", "", reason).split("; at ")[0].split(" [tensorstore_spec=")[0]
    if "b-tree node" in reason:
        array = None  # the index of the arrays, not one array, is damaged
    reason = re.sub(r"<bound method [^>]*>?.*", "", reason).strip() or type(inner).__name__
    return array, _short(ValueError(reason))


def checksums(state: Any) -> dict[str, str]:
    """A CRC-32 of every array of ``state``, by path (``"params/embedding/embedding"``).

    An array split over several processes (not replicated) is left out: no process sees all of
    it. Returns e.g. ``{"params/dense/kernel": "crc32:5e1f0a2b", ...}``.
    """
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        array = _host_copy(leaf)
        if array is None:
            continue
        data = np.ascontiguousarray(array)
        header = f"{data.dtype.str}{data.shape}".encode()
        out[_path_name(path)] = f"crc32:{zlib.crc32(data.data, zlib.crc32(header)):08x}"
    return out


def _host_copy(leaf: Any) -> np.ndarray | None:
    if isinstance(leaf, jax.Array) and not leaf.is_fully_addressable:
        return np.asarray(leaf.addressable_data(0)) if leaf.is_fully_replicated else None
    return np.asarray(leaf)


def _path_name(path: Any) -> str:
    return "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in path)


def _is_disk_full(err: BaseException) -> bool:
    """Whether ``err`` (or what caused it) is "no space left on device" or "quota exceeded"."""
    seen: BaseException | None = err
    for _ in range(20):  # chains are short; a cycle must not loop forever
        if seen is None:
            return False
        if isinstance(seen, OSError) and seen.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if "No space left on device" in str(seen) or "Disk quota exceeded" in str(seen):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def mount_point(path: str | Path) -> str:
    """The mount point of the file system holding ``path`` (the "device" that is full)."""
    path = Path(path).resolve()
    while not path.exists():
        path = path.parent
    device = os.stat(path).st_dev
    while path.parent != path and os.stat(path.parent).st_dev == device:
        path = path.parent
    return str(path)


@contextmanager
def _orbax_logs_held() -> Iterator[None]:
    """Hold back what orbax logs during a save: replayed if the save succeeds, dropped if it
    fails (its background threads log each failure with a traceback; the caller reports it)."""
    logger = logging.getLogger("absl")
    held: list[logging.LogRecord] = []

    def hold(record: logging.LogRecord) -> bool:
        held.append(record)
        return False

    logger.addFilter(hold)
    try:
        yield
    finally:
        logger.removeFilter(hold)
    for record in held:
        logger.handle(record)


def _check_readable(directory: Path) -> None:
    """Turn the ways a checkpoint directory can be wrong into one clear sentence each."""
    parent = directory.parent
    if not parent.exists():
        raise CheckpointError(f"checkpoint directory {parent} does not exist")
    if not parent.is_dir():
        raise CheckpointError(f"{parent} is a file, not a training run's output directory")
    if not directory.is_dir():
        raise CheckpointError(
            f"{parent} holds no checkpoints (expected a '{CHECKPOINTS_SUBDIR}/' folder; "
            "was the training run saved there?)"
        )
    steps = [p for p in directory.iterdir() if p.is_dir() and p.name.isdigit()]
    if not steps:
        partial = [p.name for p in directory.iterdir() if "tmp" in p.name]
        if partial:
            raise CheckpointError(
                f"{directory} holds only partly written checkpoints ({', '.join(partial)}); "
                "the run was stopped during its first save"
            )
        raise CheckpointError(f"{directory} is empty: no checkpoint was saved there")


def tree_difference(expected: Any, saved: Any, limit: int = 3) -> str:
    """How the arrays of ``saved`` differ from ``expected`` in names and shapes ("" if they do not).

    Only arrays are compared: optimizer-state containers (tuples vs the lists a checkpoint restores
    without a target) count as equal.

    Returns:
      e.g. ``"params/embedding/embedding is (2000, 16) in the checkpoint, (3000, 16) here"``.
    """

    def shapes(tree: Any) -> dict[str, tuple[int, ...]]:
        flat, _ = jax.tree_util.tree_flatten_with_path(tree)
        return {_path_name(p): tuple(np.shape(v)) for p, v in flat}

    want, got = shapes(expected), shapes(saved)
    problems = [
        f"{k} is {got[k]} in the checkpoint, {want[k]} here"
        for k in want
        if k in got and got[k] != want[k]
    ]
    problems += [f"{k} is missing from the checkpoint" for k in want if k not in got]
    problems += [f"the checkpoint has {k}, this model does not" for k in got if k not in want]
    more = f" (and {len(problems) - limit} more)" if len(problems) > limit else ""
    return "; ".join(problems[:limit]) + more


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename), so an interruption never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
