"""Data parallelism on 4 CPU devices (a subprocess with XLA_FLAGS) and on 2 processes x 2 devices
(``jax.distributed`` on localhost), checked against this process's single device.

This pytest process has one CPU device, so it is the 1-device reference. The other layouts run
this file as a script (``python tests/test_distributed.py MODE DIR``) with
``--xla_force_host_platform_device_count`` set before JAX starts; they write what they computed
to ``DIR`` and the tests compare. Run the multi-device part alone with
``pytest tests/test_distributed.py``.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import warnings
from pathlib import Path

import jax
import numpy as np
import pytest

from seqclf.checkpoint import CheckpointStore
from seqclf.data.batching import batches, pad_batch
from seqclf.data.preprocessing import TextConfig
from seqclf.distributed import DataParallel, initialize, process_slice
from seqclf.model import build_classifier
from seqclf.training import TrainConfig, create_train_state, predict_probabilities
from seqclf.training.step import TRAIN_KEYS, train_step

TINY_MODEL = dict(
    vocab_size=40,
    embed_dim=8,
    conv_filters=(8,),
    conv_kernel_size=3,
    pool_size=2,
    hidden_size=8,
    embed_dropout=0.2,
    dropout=0.1,  # dropout on: the keys must not depend on the layout either
    nb_buckets=257,
)
CONFIG = TrainConfig(batch_size=8, seed=3)
TEXT = TextConfig(vocab_size=40, max_len=24, num_buckets=1)
NUM_TEXTS = 21  # 3 batches of 8, the last with 5 real rows
TOLERANCE = 1e-5


def _data() -> tuple[list[np.ndarray], np.ndarray]:
    rng = np.random.default_rng(7)
    ids = [rng.integers(2, 40, size=int(rng.integers(1, 30))).astype(np.int32) for _ in range(21)]
    return ids, rng.integers(0, 2, NUM_TEXTS).astype(np.int32)


def _first_batch() -> dict[str, np.ndarray]:
    ids, labels = _data()
    padded, _ = pad_batch(next(batches(ids, labels, 8, max_len=TEXT.max_len)), 8)
    return {k: padded[k] for k in TRAIN_KEYS}


def _state(parallel: DataParallel):
    return create_train_state(
        build_classifier(**TINY_MODEL), CONFIG, 10, _first_batch(), parallel=parallel
    )


def _arrays(tree) -> dict[str, np.ndarray]:
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {jax.tree_util.keystr(path): np.asarray(x) for path, x in flat}


def _checkpoint(state) -> dict:
    return {"params": state.params, "opt_state": state.opt_state, "step": state.step}


def _one_step_and_predict(parallel: DataParallel, out: Path) -> dict:
    """One train step and predictions over NUM_TEXTS texts; arrays to ``out``, facts returned."""
    state = _state(parallel)
    batch = parallel.shard(_first_batch())
    new, values = train_step(state, batch)
    probs = predict_probabilities(new, _data()[0], CONFIG, TEXT)
    if jax.process_index() == 0:
        np.savez(out / "params.npz", **_arrays(new.params))
        np.save(out / "values.npy", np.asarray(values))
        np.save(out / "probs.npy", probs)
    specs = {repr(tuple(x.sharding.spec)) for x in jax.tree_util.tree_leaves(_checkpoint(new))}
    return {
        "devices": parallel.num_devices,
        "state_specs": sorted(specs),
        "batch_spec": repr(tuple(batch["tokens"].sharding.spec)),
        "batch_shard_rows": sorted({s.data.shape[0] for s in batch["tokens"].addressable_shards}),
        "mesh_of_state": DataParallel.of(new).num_devices,
        "probs_shape": list(probs.shape),
        "new_state": new,
    }


# ---------------------------------------------------------------------------------------------
# The subprocess side.
# ---------------------------------------------------------------------------------------------


def _main_four(out: Path) -> None:
    """4 devices, one process: step, predict, checkpoints both ways, batch-size checks."""
    assert jax.device_count() == 4, jax.devices()
    parallel = DataParallel.create(batch_size=CONFIG.batch_size)
    facts = _one_step_and_predict(parallel, out)
    new = facts.pop("new_state")

    # A checkpoint saved on 1 device (by the pytest process) restored onto 4.
    store = CheckpointStore(out.parent / "saved_on_1", create=False)
    restored = store.restore_state(_checkpoint(_state(parallel)))
    np.savez(out / "restored_from_1.npz", **_arrays(restored))
    arrays = [x for x in jax.tree_util.tree_leaves(restored) if isinstance(x, jax.Array)]
    facts["restored_specs"] = sorted({repr(tuple(x.sharding.spec)) for x in arrays})
    facts["restored_devices"] = sorted({len(x.sharding.device_set) for x in arrays})
    store.close()

    # And a checkpoint saved here, on 4 devices, for the pytest process to restore on 1.
    store = CheckpointStore(out.parent / "saved_on_4")
    store.save(1, _checkpoint(new), {"note": "saved on 4 devices"}, 0.5)
    store.close()
    np.savez(out / "saved_on_4.npz", **_arrays(_checkpoint(new)))

    # Batch sizes that do not split over 4 devices.
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        facts["devices_for_batch_6"] = DataParallel.create(batch_size=6).num_devices
    facts["warning_for_batch_6"] = str(caught[0].message) if caught else ""
    try:
        parallel.shard({"tokens": np.zeros((6, 3), np.int32)})
        facts["error_for_6_rows"] = ""
    except ValueError as err:
        facts["error_for_6_rows"] = str(err)
    (out / "facts.json").write_text(json.dumps(facts))


def _main_multihost(out: Path) -> None:
    """One of 2 processes with 2 devices each, joined by jax.distributed (env variables)."""
    assert initialize()  # JAX_COORDINATOR_ADDRESS, JAX_NUM_PROCESSES, JAX_PROCESS_ID
    assert (jax.process_count(), jax.local_device_count(), jax.device_count()) == (2, 2, 4)
    parallel = DataParallel.create(batch_size=CONFIG.batch_size)
    facts = _one_step_and_predict(parallel, out)
    new = facts.pop("new_state")
    # orbax: every process calls save and restore; the arrays are written once.
    store = CheckpointStore(out / "checkpoint")
    store.save(1, _checkpoint(new), {"note": "saved by 2 processes"}, 0.5)
    restored = store.restore_state(_checkpoint(new))
    same = all(
        np.array_equal(a, b)
        for a, b in zip(
            jax.tree_util.tree_leaves(_arrays(restored)),
            jax.tree_util.tree_leaves(_arrays(_checkpoint(new))),
            strict=True,
        )
    )
    store.close()
    facts["restored_equal"] = same
    facts["process_slice_of_10"] = [process_slice(10).start, process_slice(10).stop]
    # Data read per process: each passes its own rows, the global batch is the same.
    batch = _first_batch()
    local = {k: v[process_slice(len(v))] for k, v in batch.items()}
    from_local, from_global = parallel.shard_local(local), parallel.shard(batch)
    facts["shard_local_equal"] = all(
        np.array_equal(parallel.gather(from_local[k]), parallel.gather(from_global[k]))
        for k in batch
    )
    name = f"facts{jax.process_index()}.json"
    (out / name).write_text(json.dumps(facts))


def _run_script(mode: str, out: Path, env: dict[str, str], **kwargs) -> subprocess.Popen:
    full_env = {**os.environ, **env, "JAX_PLATFORMS": "cpu"}
    return subprocess.Popen(
        [sys.executable, __file__, mode, str(out)],
        env=full_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        **kwargs,
    )


def _wait(proc: subprocess.Popen, timeout: float = 600) -> None:
    try:
        output, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        output, _ = proc.communicate()
        pytest.fail(f"subprocess timed out:\n{output[-4000:]}")
    if proc.returncode != 0:
        pytest.fail(f"subprocess failed ({proc.returncode}):\n{output[-4000:]}")


# ---------------------------------------------------------------------------------------------
# The pytest side: this process is the single-device reference.
# ---------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def one_device(tmp_path_factory):
    root = tmp_path_factory.mktemp("dp")
    out = root / "one"
    out.mkdir()
    parallel = DataParallel.create(jax.devices()[:1])
    facts = _one_step_and_predict(parallel, out)
    store = CheckpointStore(root / "saved_on_1")
    store.save(1, _checkpoint(facts["new_state"]), {"note": "saved on 1 device"}, 0.5)
    store.close()
    return root, facts


@pytest.fixture(scope="module")
def four_devices(one_device):
    root, _ = one_device
    out = root / "four"
    out.mkdir()
    flags = "--xla_force_host_platform_device_count=4"
    _wait(_run_script("four", out, {"XLA_FLAGS": flags}))
    return out, json.loads((out / "facts.json").read_text())


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as f:
        return dict(f)


def _assert_close(a: dict[str, np.ndarray], b: dict[str, np.ndarray], atol: float) -> None:
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_allclose(a[k], b[k], atol=atol, rtol=0, err_msg=k)


def test_one_step_on_4_devices_equals_1_device(one_device, four_devices):
    root, one = one_device
    out, four = four_devices
    assert one["devices"] == 1 and four["devices"] == 4
    # Batch split along the mesh (2 of the 8 rows per device), state replicated.
    assert four["batch_spec"] == "('data',)" and four["batch_shard_rows"] == [2]
    assert four["state_specs"] == ["()"] and four["mesh_of_state"] == 4
    np.testing.assert_allclose(
        np.load(out / "values.npy"), np.load(root / "one" / "values.npy"), atol=TOLERANCE
    )
    _assert_close(_load(out / "params.npz"), _load(root / "one" / "params.npz"), TOLERANCE)


def test_evaluation_on_4_devices_keeps_the_last_partial_batch(one_device, four_devices):
    root, one = one_device
    out, four = four_devices
    assert one["probs_shape"] == four["probs_shape"] == [NUM_TEXTS, 2]
    np.testing.assert_allclose(
        np.load(out / "probs.npy"), np.load(root / "one" / "probs.npy"), atol=TOLERANCE
    )


def test_checkpoint_saved_on_1_device_restores_on_4(one_device, four_devices):
    root, one = one_device
    out, four = four_devices
    assert four["restored_specs"] == ["()"] and four["restored_devices"] == [4]
    _assert_close(_load(out / "restored_from_1.npz"), _arrays(_checkpoint(one["new_state"])), 0)


def test_checkpoint_saved_on_4_devices_restores_on_1(one_device, four_devices):
    root, one = one_device
    out, _ = four_devices
    saved = _load(out / "saved_on_4.npz")
    store = CheckpointStore(root / "saved_on_4", create=False)
    target = _checkpoint(_state(DataParallel.create(jax.devices()[:1])))
    restored = store.restore_state(target)
    arrays = [x for x in jax.tree_util.tree_leaves(restored) if isinstance(x, jax.Array)]
    assert {len(x.sharding.device_set) for x in arrays} == {1}
    _assert_close(_arrays(restored), saved, 0)
    store.close()


def test_parameters_saved_on_4_devices_load_on_1_without_a_target(one_device, four_devices):
    root, _ = one_device
    out, _ = four_devices
    saved = _load(out / "saved_on_4.npz")
    store = CheckpointStore(root / "saved_on_4", create=False)
    try:
        params = store.restore_params()  # what seqclf.load reads: no model, no target
    finally:
        store.close()
    want = {k.removeprefix("['params']"): v for k, v in saved.items() if k.startswith("['params']")}
    _assert_close(_arrays(params), want, 0)


def test_batch_sizes_that_do_not_split(four_devices):
    _, four = four_devices
    assert four["devices_for_batch_6"] == 3
    assert "--batch-size 8 to use all 4" in four["warning_for_batch_6"]
    assert "does not split over 4 devices" in four["error_for_6_rows"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_of_two_devices_equal_one_device(one_device):
    """jax.distributed on localhost: 2 processes x 2 CPU devices = one 4-device mesh."""
    root, _ = one_device
    out = root / "multihost"
    out.mkdir()
    common = {
        "XLA_FLAGS": "--xla_force_host_platform_device_count=2",
        "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{_free_port()}",
        "JAX_NUM_PROCESSES": "2",
    }
    procs = [_run_script("multihost", out, {**common, "JAX_PROCESS_ID": str(i)}) for i in (0, 1)]
    for proc in procs:
        _wait(proc)
    facts = [json.loads((out / f"facts{i}.json").read_text()) for i in (0, 1)]
    for f in facts:
        assert f["devices"] == 4 and f["batch_shard_rows"] == [2] and f["restored_equal"]
        assert f["shard_local_equal"]
        assert f["probs_shape"] == [NUM_TEXTS, 2]  # every process gets every prediction
    assert [f["process_slice_of_10"] for f in facts] == [[0, 5], [5, 10]]
    np.testing.assert_allclose(
        np.load(out / "values.npy"), np.load(root / "one" / "values.npy"), atol=TOLERANCE
    )
    _assert_close(_load(out / "params.npz"), _load(root / "one" / "params.npz"), TOLERANCE)
    np.testing.assert_allclose(
        np.load(out / "probs.npy"), np.load(root / "one" / "probs.npy"), atol=TOLERANCE
    )


def test_initialize_does_nothing_on_one_host_and_wants_all_three_settings(monkeypatch):
    for name in ("JAX_COORDINATOR_ADDRESS", "JAX_NUM_PROCESSES", "JAX_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    assert initialize() is False
    monkeypatch.setenv("JAX_COORDINATOR_ADDRESS", "127.0.0.1:1234")
    with pytest.raises(ValueError, match="num_processes=None"):
        initialize()
    with pytest.raises(ValueError, match=r"process_id must be in \[0, 2\)"):
        initialize(num_processes=2, process_id=2)


if __name__ == "__main__":
    {"four": _main_four, "multihost": _main_multihost}[sys.argv[1]](Path(sys.argv[2]))
