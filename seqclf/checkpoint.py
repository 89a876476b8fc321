"""Checkpoints with orbax-checkpoint: parameters, optimizer state and everything needed to rebuild
the model and its text pipeline, saved every epoch; the best (by validation accuracy) and the latest
are kept.

Layout of ``<output_dir>/checkpoints/<step>/``:

    state/   params, opt_state and step (orbax StandardSave; arrays)
    meta/    JSON: model config, vocabulary, class names, data settings, training progress

orbax writes each step into a temporary directory and renames it when complete, so a run killed
while saving leaves the previous checkpoints intact and no half-written step is ever listed (the
SIGKILL test in ``tests/test_reliability.py`` checks it). A step folder damaged afterwards (files
deleted or truncated, e.g. by an interrupted copy) raises ``CheckpointError`` naming the folder.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

FORMAT = "seqclf-checkpoint-1"
CHECKPOINTS_SUBDIR = "checkpoints"
DELETED_SUBDIR = "deleted"  # superseded steps are renamed here, then removed


class CheckpointError(ValueError):
    """A checkpoint directory is missing, empty, incomplete or does not fit the model."""


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
        self.manager = ocp.CheckpointManager(self.directory, options=options)

    def save(
        self,
        step: int,
        state: dict[str, Any],
        meta: dict[str, Any],
        val_accuracy: float | None = None,
    ) -> None:
        """Save arrays ``state`` and JSON ``meta`` as ``step``; ``val_accuracy`` ranks it."""
        metrics = None if val_accuracy is None else {"val_accuracy": float(val_accuracy)}
        self.manager.save(
            step,
            args=ocp.args.Composite(
                state=ocp.args.StandardSave(state),
                meta=ocp.args.JsonSave({"format": FORMAT, **meta}),
            ),
            metrics=metrics,
            force=True,
        )
        shutil.rmtree(self.directory / DELETED_SUBDIR, ignore_errors=True)
        self.manager.wait_until_finished()

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
        return state

    def restore_params(self, step: int | None = None) -> Any:
        """Only the parameters of ``step`` (default: the best), as saved: no model needed."""
        step = self.best_step() if step is None else step
        step = self._step(step)
        state = self._restore(step, "state", ocp.args.StandardRestore(self._as_saved_here(step)))
        if not isinstance(state, dict) or "params" not in state:
            raise CheckpointError(f"checkpoint {self.directory / str(step)} holds no parameters")
        return state["params"]

    def _restore(self, step: int, item: str, args: Any) -> Any:
        """One item (``"state"`` or ``"meta"``) of ``step``; any failure to read it becomes a
        ``CheckpointError`` that names the step folder."""
        try:
            return self.manager.restore(step, args=ocp.args.Composite(**{item: args}))[item]
        except Exception as err:  # orbax and TensorStore raise many kinds of errors
            raise self._damaged(step, item, err) from err

    def _damaged(self, step: int, item: str, err: Exception) -> CheckpointError:
        return CheckpointError(
            f"checkpoint {self.directory / str(step)} is damaged or incomplete: its {item!r} part "
            f"cannot be read ({_short(err)}). Delete that folder to use an earlier checkpoint "
            f"(steps here: {self.all_steps()})."
        )

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
        return {
            "/".join(str(getattr(k, "key", getattr(k, "idx", getattr(k, "name", k)))) for k in p): (
                tuple(np.shape(v))
            )
            for p, v in flat
        }

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
