"""Shared fixtures. Everything here is seeded and small; full-MNIST work is marked `slow`."""

import os
from pathlib import Path

import pytest
from hypothesis import settings
from repo_paths import SHARED_MNIST

# Property tests draw the same examples on every run (a test run that passes here passes in
# CI); HYPOTHESIS_PROFILE=explore draws new ones at every run, to look for failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The project's copy of the original MNIST files (tests and benchmarks only)."""
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST files not found in {SHARED_MNIST}")
    return SHARED_MNIST


@pytest.fixture(scope="session")
def tiny_job():
    """A NumPy MLP 64-32-10 trained 3 epochs on the bundled digits, once per test session:
    the ended job that tests of runs, pages and analysis share (read it, never change it)."""
    from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
    from digits_core.training.jobs import run_experiment

    exp = Experiment(DataConfig(), ModelConfig(family="numpy-mlp", hidden=[32]), TrainConfig(epochs=3),
                     name="tiny")
    job = run_experiment(exp)
    assert job.snapshot().status == "finished"
    return job


@pytest.fixture(autouse=True)
def _isolated_runs_and_cache(tmp_path_factory, monkeypatch):
    """No test writes into the user's runs folder or MNIST cache."""
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path_factory.mktemp("data_home")))
