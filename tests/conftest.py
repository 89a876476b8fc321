"""Shared pytest fixtures, and one JAX compilation cache for the whole test session.

Most of the suite's time is XLA compiling the same few tiny models again: in every ``seqclf``
subprocess, in every new ``Predictor`` (its functions are jitted per instance) and in every
pytest-xdist worker. A persistent compilation cache shared by all of them (an empty folder made
for this session, so a run's time never depends on an earlier run) compiles each program once.
And XLA compiles without LLVM's optimisations (below). A cached executable is the program a
fresh compile gives (``tests/test_reliability.py`` relies on that for bitwise equality too);
the one test that needs a real compilation, the Ctrl-C during XLA's compile in
``tests/test_run_faults.py``, removes ``JAX_COMPILATION_CACHE_*`` from its subprocess's
environment. A cache dir already set in the environment is used as it is.
"""

import os
import shutil
import sys
import tempfile
from pathlib import Path

import pytest

# Set before anything imports jax (which reads these once, at import). pytest-xdist's workers
# and every subprocess a test starts inherit the environment, hence the same cache.
_OWN_CACHE = None
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    _OWN_CACHE = tempfile.mkdtemp(prefix="seqclf-tests-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _OWN_CACHE
    # Cache every program, however quick to compile: the tiny test models compile in well under
    # JAX's default threshold of 1 s each, and there are hundreds of them.
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "0")

# Write bytecode caches, even where the environment says not to (PYTHONDONTWRITEBYTECODE is set
# on this project's machines, and README's install runs pip with --no-compile): otherwise every
# `seqclf` subprocess and xdist worker compiles jax, flax, optax and orbax from source again (a
# tiny `seqclf train`: 18 s instead of 8 s, 2 cores, 2026-12-02). Workers and subprocesses
# inherit the environment; this process writes from here on.
os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
sys.dont_write_bytecode = False

# Compile without LLVM's optimisations: the test models are tiny, so what a test waits for is
# XLA compiling them, not running them (tests/test_fused.py: 88 s -> 65 s on 2 cores). XLA's
# own graph passes and fusions are unchanged, only LLVM's code generation does less; every
# tolerance stays as it is. Benchmarks and users keep the default. Subprocesses inherit it.
if "xla_backend_optimization_level" not in os.environ.get("XLA_FLAGS", ""):
    flags = os.environ.get("XLA_FLAGS", "")
    os.environ["XLA_FLAGS"] = f"{flags} --xla_backend_optimization_level=0".strip()


# The longest files first (their total time in a full run with -n 2, 2026-12-02, on 2 shared
# cores: 490 s down to 100 s): pytest-xdist hands files out in this order (pyproject.toml:
# --dist loadfile --no-loadscope-reorder), so that no long file starts last while the other
# worker has nothing left to do. The rest keep their usual order.
LONGEST_FIRST = [
    "test_docs_snippets.py",
    "test_train.py",
    "test_recipe.py",
    "test_accuracy_suite_smoke.py",
    "test_reliability.py",
    "test_run_faults.py",
    "test_model.py",
    "test_distributed.py",
    "test_serve_load_smoke.py",
    "test_serve.py",
    "test_train_speed_smoke.py",
    "test_ops.py",
    "test_docs_build.py",
    "test_lazy_embedding.py",
    "test_fused.py",
    "test_properties.py",
    "test_benchmarks_smoke.py",
]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))  # stable: files stay whole


def pytest_unconfigure(config: pytest.Config) -> None:
    # Only the process that made the folder removes it (with xdist: the controller, last).
    if _OWN_CACHE is not None and not hasattr(config, "workerinput"):
        shutil.rmtree(_OWN_CACHE, ignore_errors=True)


@pytest.fixture(scope="session")
def imdb_data_dir() -> Path:
    """The shared prepared TFDS data_dir (``../shared/tensorflow_datasets`` beside the repo)."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "tensorflow_datasets"
    if not (path / "imdb_reviews").is_dir():
        pytest.skip(f"no prepared TFDS data_dir with imdb_reviews at {path}")
    return path
