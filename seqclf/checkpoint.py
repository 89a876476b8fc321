"""Checkpoints with orbax-checkpoint: parameters, optimizer state and everything needed to rebuild
the model and its text pipeline, saved every epoch; the best (by validation accuracy) and the latest
are kept.

Layout of ``<output_dir>/checkpoints/<step>/``:

    state/   params, opt_state and step (orbax StandardSave; arrays)
    meta/    JSON: model config, vocabulary, class names, data settings, training progress

orbax writes each step into a temporary directory and renames it when complete, so a run killed
while saving leaves the previous checkpoints intact and no half-written step is ever listed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from orbax.checkpoint import checkpoint_managers as policies

FORMAT = "seqclf-checkpoint-1"
CHECKPOINTS_SUBDIR = "checkpoints"


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
        meta = self.manager.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))[
            "meta"
        ]
        if meta.get("format") != FORMAT:
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
        abstract = jax.tree_util.tree_map(ocp.utils.to_shape_dtype_struct, target)
        try:
            restored = self.manager.restore(
                step, args=ocp.args.Composite(state=ocp.args.StandardRestore(abstract))
            )
        except (ValueError, KeyError, TypeError) as err:
            raise CheckpointError(
                f"checkpoint {self.directory / str(step)} does not fit this model "
                f"(different configuration or vocabulary?): {err}"
            ) from err
        state = restored["state"]
        _check_shapes(target, state, self.directory / str(step))
        return state

    def restore_params(self, step: int | None = None) -> Any:
        """Only the parameters of ``step`` (default: the best), as saved: no model needed."""
        step = self.best_step() if step is None else step
        step = self._step(step)
        restored = self.manager.restore(
            step, args=ocp.args.Composite(state=ocp.args.StandardRestore())
        )
        return restored["state"]["params"]

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


def _check_readable(directory: Path) -> None:
    """Turn the ways a checkpoint directory can be wrong into one clear sentence each."""
    parent = directory.parent
    if not parent.exists():
        raise CheckpointError(f"checkpoint directory {parent} does not exist")
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


def _check_shapes(target: Any, restored: Any, where: Path) -> None:
    want = jax.tree_util.tree_map(np.shape, target)
    got = jax.tree_util.tree_map(np.shape, restored)
    if want != got:
        raise CheckpointError(
            f"checkpoint {where} does not fit this model: parameter shapes differ "
            f"(different configuration or vocabulary)"
        )


def write_json(path: Path, data: Any) -> None:
    """Write JSON atomically (temp file + rename), so an interruption never leaves half a file."""
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2))
    tmp.replace(path)
