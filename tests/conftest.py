"""Shared pytest fixtures."""

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def imdb_data_dir() -> Path:
    """The shared prepared TFDS data_dir (``../shared/tensorflow_datasets`` beside the repo)."""
    path = Path(__file__).resolve().parents[1].parent / "shared" / "tensorflow_datasets"
    if not (path / "imdb_reviews").is_dir():
        pytest.skip(f"no prepared TFDS data_dir with imdb_reviews at {path}")
    return path
