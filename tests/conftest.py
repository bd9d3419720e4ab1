"""Shared fixtures. Everything here is seeded and small; full-MNIST work is marked `slow`."""

import os
from pathlib import Path

import pytest
from hypothesis import settings
from repo_paths import REPO, SHARED_MNIST

# Property tests draw the same examples on every run (a test run that passes here passes in
# CI); HYPOTHESIS_PROFILE=explore draws new ones at every run, to look for failures.
settings.register_profile("repeatable", derandomize=True, database=None)
settings.register_profile("explore")
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "repeatable"))


@pytest.fixture(scope="session")
def mnist_dir() -> Path:
    """The original MNIST files (tests and benchmarks only): $DIGITLAB_TEST_MNIST, else the
    project's copy. Missing, the tests that need them skip, or fail where
    DIGITLAB_REQUIRE_MNIST=1 (`make test-slow`: its floors must not pass by skipping)."""
    folder = Path(os.environ.get("DIGITLAB_TEST_MNIST") or SHARED_MNIST)
    if not (folder / "train-images-idx3-ubyte.gz").is_file():
        message = f"MNIST files not found in {folder} (python -m digits_core fetch-mnist gets them)"
        if os.environ.get("DIGITLAB_REQUIRE_MNIST") == "1":
            pytest.fail(message)
        pytest.skip(message)
    return folder


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


# Left behind by any test run, not by a test: bytecode, pytest's and hypothesis' own caches.
RUN_LITTER = {".git", ".venv", "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache"}


def _tree(root: Path) -> set[str]:
    """Every file and folder below `root` (relative paths), RUN_LITTER left out."""
    found = set()
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if d not in RUN_LITTER]
        rel = Path(folder).relative_to(root)
        found.update(str(rel / name) for name in dirs + files)
    return found


@pytest.fixture(scope="session", autouse=True)
def _nothing_written_outside_temporary_folders(tmp_path_factory):
    """For the whole session (module and session fixtures included, which start before any
    test's own fixtures): runs and the download cache go to temporary folders. At the end
    the repository and the user's real cache must hold no file or folder they did not hold
    at the start."""
    real_cache = Path(os.environ.get("DIGITLAB_DATA_HOME") or Path.home() / ".cache" / "digitlab")
    before = {root: _tree(root) for root in (REPO, real_cache)}
    saved = {k: os.environ.get(k) for k in ("DIGITLAB_RUNS", "DIGITLAB_DATA_HOME")}
    os.environ["DIGITLAB_RUNS"] = str(tmp_path_factory.mktemp("session_runs"))
    os.environ["DIGITLAB_DATA_HOME"] = str(tmp_path_factory.mktemp("session_data_home"))
    yield
    for k, v in saved.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    for root, had in before.items():
        new = sorted(_tree(root) - had)
        assert not new, f"the tests wrote into {root}: {new[:10]}"


@pytest.fixture(autouse=True)
def _isolated_runs_and_cache(tmp_path_factory, monkeypatch):
    """No test writes into the user's runs folder or MNIST cache (each test its own)."""
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path_factory.mktemp("runs")))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path_factory.mktemp("data_home")))
