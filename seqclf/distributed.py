"""Data parallelism with JAX's own tools: a 1-D ``jax.sharding.Mesh``, ``NamedSharding``s and
``jax.distributed`` for several hosts. No pmap: the jit-compiled train step is the same function;
its inputs carry the shardings and XLA (GSPMD) inserts the gradient all-reduce.

    parallel = DataParallel.create(batch_size=config.batch_size)  # every device of every host
    state = parallel.replicate(state)    # parameters and optimizer state: PartitionSpec()
    batch = parallel.shard(batch)        # (B, ...) rows split along the mesh: PartitionSpec("data")
    state, metrics = train_step(state, batch)
    probs = parallel.gather(eval_step(state, batch))   # (B, C) numpy on every process

Global batch and per-device batch: ``batch_size`` (``--batch-size``) is the global batch B, the
rows of one optimizer step summed over all devices of all hosts; each device gets
B / num_devices rows. Padded last batches (``pad_batch``) keep every step at B rows, with zero
weights on the padding rows, so nothing is dropped and padding changes no loss or metric.

Several hosts: call ``initialize()`` first (it wraps ``jax.distributed.initialize``). Every process
then runs the same program over the same, deterministically ordered global batches (a function of
seed and epoch, so every process builds the same vocabulary and steps through the same padded
shapes), and ``shard`` transfers only the rows that belong to the process's own devices: each
process feeds its own slice of every batch. Checkpoints: every process calls orbax's save and
restore (they are collective); orbax writes each replicated array once, from the primary process,
so the checkpoint directory must be on a file system all hosts share.
"""

from __future__ import annotations

import dataclasses
import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

DATA_AXIS = "data"

#: Environment variables read by ``initialize`` when the matching argument is not given.
ENV_COORDINATOR = "JAX_COORDINATOR_ADDRESS"
ENV_NUM_PROCESSES = "JAX_NUM_PROCESSES"
ENV_PROCESS_ID = "JAX_PROCESS_ID"


def initialize(
    coordinator_address: str | None = None,
    num_processes: int | None = None,
    process_id: int | None = None,
    *,
    auto: bool = False,
) -> bool:
    """Join a multi-host run with ``jax.distributed.initialize``, when one is asked for.

    Call it before anything else touches JAX devices. Arguments left out are read from
    ``JAX_COORDINATOR_ADDRESS`` (``host:port`` of process 0), ``JAX_NUM_PROCESSES`` and
    ``JAX_PROCESS_ID``. With none of them set and ``auto=False`` it does nothing (one host).
    ``auto=True`` with nothing set lets JAX detect the cluster (Slurm, Open MPI, Cloud TPU,
    Kubernetes).

    Args:
      coordinator_address: ``"10.0.0.1:1234"``, the same on every process.
      num_processes: number of processes (usually one per host).
      process_id: this process's index in ``[0, num_processes)``.
      auto: initialize even with nothing given, by JAX's cluster auto-detection.

    Returns:
      True if ``jax.distributed`` was initialized by this call.
    """
    env = os.environ
    coordinator_address = coordinator_address or env.get(ENV_COORDINATOR) or None
    if num_processes is None and env.get(ENV_NUM_PROCESSES):
        num_processes = int(env[ENV_NUM_PROCESSES])
    if process_id is None and env.get(ENV_PROCESS_ID):
        process_id = int(env[ENV_PROCESS_ID])
    given = (coordinator_address, num_processes, process_id)
    if not auto and all(v is None for v in given):
        return False
    if not auto and any(v is None for v in given):
        raise ValueError(
            "a multi-host run needs the coordinator address, the number of processes and this "
            f"process's id (flags or {ENV_COORDINATOR}, {ENV_NUM_PROCESSES}, {ENV_PROCESS_ID}); "
            f"got coordinator={coordinator_address!r}, num_processes={num_processes}, "
            f"process_id={process_id}"
        )
    if num_processes is not None and process_id is not None:
        if not 0 <= process_id < num_processes:
            raise ValueError(f"process_id must be in [0, {num_processes}), got {process_id}")
    jax.distributed.initialize(
        coordinator_address=coordinator_address,
        num_processes=num_processes,
        process_id=process_id,
    )
    return True


def is_primary() -> bool:
    """True on process 0: the one that prints, logs and plots in a multi-host run."""
    return jax.process_index() == 0


@dataclasses.dataclass(frozen=True)
class DataParallel:
    """A 1-D mesh over devices, axis ``"data"``: batches split along it, state replicated.

    Attributes:
      mesh: the ``jax.sharding.Mesh``, axis ``DATA_AXIS``, one entry per device.
    """

    mesh: Mesh

    @classmethod
    def create(
        cls, devices: Sequence[jax.Device] | None = None, *, batch_size: int | None = None
    ) -> DataParallel:
        """A mesh over ``devices`` (default: every device of every process).

        Args:
          devices: the devices to use, in mesh order.
          batch_size: the global batch B, checked to split evenly. On one host, when B is not a
            multiple of the device count, the largest count that divides B is used, with a
            warning saying how to use them all; on several hosts it is an error.

        Returns:
          A ``DataParallel``.
        """
        devices = list(jax.devices() if devices is None else devices)
        if not devices:
            raise ValueError("no devices to build a mesh over")
        if batch_size is not None:
            if batch_size < 1:
                raise ValueError(f"batch_size must be >= 1, got {batch_size}")
            n = len(devices)
            if batch_size % n:
                if jax.process_count() > 1:
                    raise ValueError(
                        f"batch_size {batch_size} does not split over {n} devices on "
                        f"{jax.process_count()} hosts; use a multiple of {n}, e.g. "
                        f"--batch-size {_round_up(batch_size, n)}"
                    )
                used = max(d for d in range(1, n + 1) if batch_size % d == 0)
                warnings.warn(
                    f"batch_size {batch_size} is not a multiple of the {n} devices: using {used} "
                    f"of them ({batch_size // used} examples each); pass --batch-size "
                    f"{_round_up(batch_size, n)} to use all {n}",
                    stacklevel=2,
                )
                devices = devices[:used]
        mesh = jax.make_mesh(
            (len(devices),),
            (DATA_AXIS,),
            axis_types=(jax.sharding.AxisType.Auto,),
            devices=devices,
        )
        return cls(mesh)

    @classmethod
    def of(cls, tree: Any) -> DataParallel:
        """The data-parallel layout a pytree (e.g. a ``TrainState``) is placed with.

        The mesh of its first array with a ``NamedSharding`` over a ``"data"`` axis; otherwise a
        one-device mesh on the device of its first array (or the default device).
        """
        leaves = [x for x in jax.tree_util.tree_leaves(tree) if isinstance(x, jax.Array)]
        for leaf in leaves:
            sharding = leaf.sharding
            if isinstance(sharding, NamedSharding) and DATA_AXIS in sharding.mesh.axis_names:
                return cls(sharding.mesh)
        device = next(iter(leaves[0].devices())) if leaves else jax.devices()[0]
        return cls.create([device])

    @property
    def num_devices(self) -> int:
        """Devices in the mesh, over all processes."""
        return self.mesh.size

    @property
    def replicated(self) -> NamedSharding:
        """``PartitionSpec()``: a full copy on every device (parameters, optimizer state)."""
        return NamedSharding(self.mesh, PartitionSpec())

    @property
    def data_sharding(self) -> NamedSharding:
        """``PartitionSpec("data")``: the leading (batch) axis split over the devices."""
        return NamedSharding(self.mesh, PartitionSpec(DATA_AXIS))

    def per_device_batch(self, batch_size: int) -> int:
        """Rows per device of a global batch of ``batch_size``; raises if it does not split."""
        n = self.num_devices
        if batch_size % n:
            raise ValueError(
                f"a batch of {batch_size} rows does not split over {n} devices; "
                f"use a multiple of {n}, e.g. {_round_up(batch_size, n)}"
            )
        return batch_size // self.num_devices

    def describe(self, batch_size: int) -> str:
        """One line for the log: devices, hosts and the batch per device."""
        kinds = sorted({d.device_kind for d in self.mesh.devices.flat})
        return (
            f"Data parallel over {self.num_devices} device(s) ({', '.join(kinds)}) on "
            f"{jax.process_count()} host(s): global batch {batch_size}, "
            f"{self.per_device_batch(batch_size)} per device."
        )

    def replicate(self, tree: Any) -> Any:
        """Place every array of ``tree`` on every device (``PartitionSpec()``).

        The values must be the same on every process (they are: state is created from the seed,
        or restored from the same checkpoint). Non-array leaves pass through.
        """
        sharding = self.replicated

        def put(x: Any) -> Any:
            if not isinstance(x, (jax.Array, np.ndarray, np.generic)):
                return x
            if isinstance(x, jax.Array) and x.sharding == sharding:
                return x
            if jax.process_count() == 1:
                return jax.device_put(x, sharding)
            host = np.asarray(x)
            return jax.make_array_from_callback(host.shape, sharding, lambda idx: host[idx])

        return jax.tree_util.tree_map(put, tree)

    def shard(self, batch: dict[str, Any]) -> dict[str, jax.Array]:
        """Split a global batch along the mesh: device k gets rows ``[k*b, (k+1)*b)``.

        Args:
          batch: arrays with the global batch B as leading axis (tokens (B, T), lengths (B,),
            labels (B,), weights (B,), ...), the same on every process. Each process transfers
            only the rows of its own devices.

        Returns:
          The same dict of global ``jax.Array``s sharded with ``PartitionSpec("data")``.
        """
        sharding = self.data_sharding
        out = {}
        for key, value in batch.items():
            if isinstance(value, jax.Array) and value.sharding == sharding:
                out[key] = value
                continue
            host = np.asarray(value)
            self.per_device_batch(host.shape[0])
            if jax.process_count() == 1:
                out[key] = jax.device_put(host, sharding)
            else:
                out[key] = jax.make_array_from_callback(
                    host.shape, sharding, lambda idx, host=host: host[idx]
                )
        return out

    def shard_local(self, batch: dict[str, Any]) -> dict[str, jax.Array]:
        """Like ``shard``, for data each process reads for itself (e.g. with
        ``tfds.split_for_jax_process``): ``batch`` holds only this process's rows, (B / P, ...)
        for P processes, and the global batch is their concatenation in process order.
        """
        sharding = self.data_sharding
        return {
            key: jax.make_array_from_process_local_data(sharding, np.asarray(value))
            for key, value in batch.items()
        }

    def gather(self, x: jax.Array) -> np.ndarray:
        """The whole of a (possibly sharded, possibly multi-host) array as numpy, everywhere."""
        if x.is_fully_addressable or x.is_fully_replicated:
            return np.asarray(x)
        from jax.experimental import multihost_utils

        return np.asarray(multihost_utils.process_allgather(x, tiled=True))


def process_slice(n: int) -> slice:
    """This process's contiguous share of ``n`` items: ``[p*n/P, (p+1)*n/P)`` (``n/P`` rounded
    so the shares cover all ``n``). For data read per process, like ``tfds.split_for_jax_process``.
    """
    p, count = jax.process_index(), jax.process_count()
    return slice(n * p // count, n * (p + 1) // count)


def _round_up(n: int, multiple: int) -> int:
    return math.ceil(n / multiple) * multiple
