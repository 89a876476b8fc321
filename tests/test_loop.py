"""``fit`` is a short loop with callbacks: its hooks, a user's callback, resumption, its size."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import jax
import numpy as np
import pytest

import seqclf
from seqclf.training import Callback, TrainConfig, fit, loop

TRAINING = Path(seqclf.__file__).parent / "training"
MODEL = seqclf.build_classifier(
    vocab_size=30, embed_dim=8, hidden_size=8, conv_filters=(), nb_buckets=61, embed_dropout=0.1
)
CONFIG = TrainConfig(epochs=2, batch_size=8, patience=0, save_every=2)  # 5 steps per epoch
TEXT = seqclf.TextConfig(vocab_size=30, max_len=10, num_buckets=1)


def _data():
    rng = np.random.default_rng(0)
    tokens = [rng.integers(2, 30, size=rng.integers(3, 10)).astype(np.int32) for _ in range(52)]
    labels = np.array([int(5 in x or 6 in x) for x in tokens])
    return (tokens[:40], labels[:40]), (tokens[40:], labels[40:])


class Recorder(Callback):
    """Records the hooks called; asks the run to stop at step ``stop_at``."""

    def __init__(self, stop_at: int | None = None):
        self.calls: list[str] = []
        self.stop_at = stop_at

    def on_train_begin(self, run):
        self.calls.append("train_begin")

    def on_epoch_begin(self, run):
        self.calls.append(f"epoch_begin {run.epoch}")

    def on_step_end(self, run):
        self.calls.append("step")
        if run.step == self.stop_at:
            run.request_stop("by test")

    def on_epoch_end(self, run, record):
        self.calls.append(f"epoch_end {record['epoch']}")

    def on_train_end(self, run):
        self.calls.append(f"train_end {run.stopped_by}")


def _params(result):
    return [np.asarray(x) for x in jax.tree_util.tree_leaves(result.state.params)]


def test_a_stopped_run_resumed_ends_as_an_uninterrupted_one_and_callbacks_see_each_hook(tmp_path):
    train, valid = _data()
    recorder = Recorder()
    full = fit(MODEL, train, valid, CONFIG, text=TEXT, progress=False, callbacks=[recorder])
    assert recorder.calls == [
        "train_begin",
        "epoch_begin 0", *["step"] * 5, "epoch_end 1",
        "epoch_begin 1", *["step"] * 5, "epoch_end 2",
        "train_end completed",
    ]  # fmt: skip
    assert full.stopped_by == "completed" and len(full.history) == 2

    store = seqclf.checkpoint.CheckpointStore(tmp_path / "cut")
    stopper = Recorder(stop_at=7)  # in epoch 2, after its checkpoint at batch 2 (step 7)
    cut = fit(MODEL, train, valid, CONFIG, text=TEXT, store=store, meta={}, callbacks=[stopper])
    assert cut.stopped_by == "by test" and int(cut.state.step) == 7
    assert stopper.calls[-2:] == ["step", "train_end by test"]  # no validation of a part epoch
    assert store.latest_step() == 7 and len(cut.history) == 1
    resumed = fit(
        MODEL, train, valid, CONFIG, text=TEXT, store=store, meta={}, resume=True, progress=False
    )
    store.close()
    assert resumed.stopped_by == "completed" and int(resumed.state.step) == 10
    for a, b in zip(_params(full), _params(resumed), strict=True):
        np.testing.assert_array_equal(a, b)  # bitwise on CPU
    seconds = lambda h: [{k: v for k, v in r.items() if k != "seconds"} for r in h]  # noqa: E731
    assert seconds(resumed.history) == seconds(full.history)


def test_fit_is_a_short_loop():
    assert len(inspect.getsource(loop.fit).splitlines()) <= 80


def _imports(path: Path) -> set[str]:
    """The seqclf.training modules ``path`` imports (module level and inside functions)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seqclf.training"):
            for alias in node.names:  # ``from pkg import module`` imports that module
                sub = f"{node.module}.{alias.name}"
                found.add(sub if _module_file(sub) is not None else node.module)
    return found


def _module_file(name: str) -> Path | None:
    path = TRAINING.parent.parent / Path(*name.split("."))
    if path.with_suffix(".py").exists():
        return path.with_suffix(".py")
    return path / "__init__.py" if (path / "__init__.py").exists() else None


def test_training_modules_are_small_and_import_no_cycle():
    files = sorted(TRAINING.rglob("*.py"))
    for f in files:
        lines = len(f.read_text().splitlines())
        assert lines <= 400 or "lines" in (ast.get_docstring(ast.parse(f.read_text())) or ""), f
    # Module (a package: its __init__) → the modules it imports.
    names = {}
    for f in files:
        parts = f.relative_to(TRAINING.parent.parent).with_suffix("").parts
        names[".".join(parts[:-1] if f.name == "__init__.py" else parts)] = f
    graph = {n: {m for m in _imports(f) if m in names} for n, f in names.items()}
    done: set[str] = set()

    def visit(node: str, path: tuple[str, ...]) -> None:
        assert node not in path, f"import cycle: {' -> '.join((*path, node))}"
        if node not in done:
            for nxt in graph[node]:
                visit(nxt, (*path, node))
            done.add(node)

    for n in graph:
        visit(n, ())
    assert "seqclf.training.loop" in graph and graph["seqclf.training.loop"]


def test_train_epoch_alone_is_one_pass_with_its_own_loss_guard():
    from seqclf.data.batching import batches
    from seqclf.training import create_train_state, train_epoch

    (ids, labels), _ = _data()
    example = next(batches(ids[:2], None, 2, max_len=10, buckets=TEXT.buckets))
    state = create_train_state(MODEL, CONFIG, 10, example)
    state, metrics, done = train_epoch(state, ids, labels, CONFIG, TEXT, 0, progress=False)
    assert done == 5 and int(state.step) == 5
    assert set(metrics) == {"train_loss", "train_accuracy"} and 0 < metrics["train_loss"] < 2
    poisoned = state.replace(params=jax.tree_util.tree_map(lambda p: p * np.nan, state.params))
    with pytest.raises(seqclf.TrainingDiverged, match=r"loss became nan at step 5 \(epoch 2\)"):
        train_epoch(poisoned, ids, labels, CONFIG, TEXT, 1, progress=False)


def test_train_epoch_donates_the_state_it_is_given_and_a_copy_survives():
    """Every step writes the new state over the old one's buffers (``train_step_in_place``): the
    state passed in is used up, a host copy of it is not, and the returned state is whole."""
    from seqclf.data.batching import batches
    from seqclf.training import create_train_state, train_epoch

    (ids, labels), _ = _data()
    example = next(batches(ids[:2], None, 2, max_len=10, buckets=TEXT.buckets))
    state = create_train_state(MODEL, CONFIG, 10, example)
    # A real copy: on CPU jax.device_get's arrays are views that keep the buffers alive, and
    # XLA then copies the state instead of writing over it.
    kept = jax.tree_util.tree_map(lambda x: np.array(x, copy=True), state.params)
    new, _, _ = train_epoch(state, ids, labels, CONFIG, TEXT, 0, progress=False)
    alive = [
        jax.tree_util.keystr(path)
        for path, leaf in jax.tree_util.tree_leaves_with_path(state.params)
        if not leaf.is_deleted()
    ]
    assert alive == []
    assert not any(leaf.is_deleted() for leaf in jax.tree_util.tree_leaves(new.params))
    moved = [
        not np.array_equal(a, b)
        for a, b in zip(
            jax.tree_util.tree_leaves(kept), jax.tree_util.tree_leaves(new.params), strict=True
        )
    ]
    assert any(moved)
