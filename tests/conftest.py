"""Shared fixtures. Everything here is seeded and small; full-MNIST work is marked `slow`."""

from pathlib import Path

import pytest
from repo_paths import SHARED_MNIST


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The project's copy of the original MNIST files (tests and benchmarks only)."""
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST files not found in {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture(autouse=True)
def _isolated_runs_and_cache(tmp_path_factory, monkeypatch):
    """No test writes into the user's runs folder or MNIST cache."""
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path_factory.mktemp("data_home")))
