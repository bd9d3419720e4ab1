"""JobRunner, the seam the pages train through: a run is a folder from its first step,
one press is one job, per-person limits, closed tabs, continuing a run, interrupted runs
(a `kill -9` of a real CLI training), and the memory preflight."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from digits_core.config import ConvBlock, DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.errors import ConfigError
from digits_core.models import count_params
from digits_core.presets import ALL
from digits_core.runner import JobRunner, preflight
from digits_core.runs import inspect_run, list_runs, load_run
from repo_paths import REPO


def exp(epochs=1000, batch_size=32, **kw) -> Experiment:
    return Experiment(
        data=DataConfig(dataset="digits"),
        model=ModelConfig(family="numpy-mlp", hidden=[16]),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, **kw),
        name="t",
    )


def wait_for(predicate, timeout=20.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_run_is_a_folder_from_its_first_step(tmp_path):
    runner = JobRunner(tmp_path)
    name = runner.start(exp(), owner="ann")
    assert name == "t-1" and (tmp_path / name / "experiment.json").is_file()
    assert wait_for(lambda: runner.history(name).step > 20)
    meta = json.loads((tmp_path / name / "meta.json").read_text())
    assert meta["owner"] == "ann" and meta["status"] in ("running", "queued", "loading")
    runner.stop(name)
    assert runner.history(name).status in ("stopping", "stopped")  # seen at once
    assert runner.job(name).wait(10)
    info = inspect_run(tmp_path / name)
    assert info.ok and info.status == "stopped"
    run = load_run(tmp_path / name)
    assert run.history.step == runner.history(name).step > 20
    assert run.meta["test_acc"] is not None  # measured after the stop, and saved


def test_one_press_is_one_job_and_each_person_has_a_limit(tmp_path):
    runner = JobRunner(tmp_path, max_jobs=4, per_owner=2)
    a = runner.start(exp(), owner="ann")
    assert runner.start(exp(), owner="ann") == a  # a double click
    b = runner.start(exp(lr=0.02), owner="ann")
    assert b != a and runner.active("ann") == [a, b]
    with pytest.raises(ConfigError, match="already have 2 runs training"):
        runner.start(exp(lr=0.03), owner="ann")
    c = runner.start(exp(lr=0.03), owner="bob")  # another person is not limited by ann
    assert runner.owned("bob") == [c]
    for name in (a, b, c):
        runner.stop(name)
        assert runner.job(name).wait(10)
    assert sorted(r.name for r in list_runs(tmp_path)) == sorted([a, b, c])


def test_a_run_stopped_at_once_can_be_started_again_at_once(tmp_path):
    runner = JobRunner(tmp_path)
    a = runner.start(exp(), owner="ann")
    runner.stop(a)
    assert runner.job(a).wait(10)
    b = runner.start(exp(), owner="ann")  # the same settings, within the double-click window
    assert b != a and runner.active("ann") == [b]
    runner.stop(b)
    assert runner.job(b).wait(10)


def test_runs_of_a_person_without_tabs_stop_after_the_grace_only(tmp_path):
    clock = Clock()
    runner = JobRunner(tmp_path, grace=10, clock=clock)
    mine, other = runner.start(exp(), owner="gone"), runner.start(exp(), owner="here")
    alive = {"gone": False, "here": True}
    assert runner.sweep(alive.get) == []  # first seen gone: the grace starts now
    clock.t = 9.9
    assert runner.sweep(alive.get) == []
    alive["gone"] = True  # a reload within the grace keeps the run
    runner.sweep(alive.get)
    alive["gone"] = False
    clock.t = 15
    assert runner.sweep(alive.get) == []
    clock.t = 25
    assert runner.sweep(alive.get) == [mine]
    assert runner.job(mine).wait(10) and runner.history(mine).status == "stopped"
    assert not runner.job(other).done  # the person with a tab keeps training
    runner.stop(other)
    assert runner.job(other).wait(10)
    assert inspect_run(tmp_path / mine).ok  # stopped, and saved as trained so far


def test_continue_extends_the_history_with_the_optimiser_state(tmp_path):
    runner = JobRunner(tmp_path)
    name = runner.start(exp(epochs=3, optimizer="adam"), owner="ann")
    assert wait_for(lambda: runner.job(name).done) and runner.job(name).wait(10)
    before = load_run(tmp_path / name)
    assert len(before.history.epochs) == 3 and before.optimizer_state
    assert runner.continue_run(name, 2, owner="ann") == name
    assert wait_for(lambda: runner.job(name).done) and runner.job(name).wait(10)
    after = load_run(tmp_path / name)
    assert after.history.epochs == [1, 2, 3, 4, 5]
    assert after.history.steps[: len(before.history.steps)] == before.history.steps
    assert after.history.steps == sorted(after.history.steps)
    assert after.experiment.train.epochs == 5 and after.history.status == "finished"
    assert after.history.message == "finished 5 epochs"


def test_a_run_whose_process_died_is_interrupted_and_still_usable(tmp_path):
    """A real `python -m digits_core train`, killed with SIGKILL after its first checkpoint."""
    out = tmp_path / "runs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "digits_core", "train", "--dataset", "digits", "--model",
         "numpy-mlp", "--hidden", "32", "--epochs", "1000", "--batch-size", "8", "--out", str(out),
         "--quiet"],
        cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    try:
        assert wait_for(lambda: any((p / "weights.npz").exists() for p in out.glob("*")), timeout=60)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(10)
    [info] = list_runs(out)
    assert info.status == "interrupted" and info.ok, info.reason
    run = load_run(info.path)
    assert run.history.epochs and run.model.n_params > 0
    r = subprocess.run([sys.executable, "-m", "digits_core", "evaluate", "--run", str(info.path)],
                       cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].startswith("accuracy 0.")
    runner = JobRunner(out)
    runner.continue_run(info.name, 1)
    assert wait_for(lambda: runner.job(info.name).done, 60) and runner.job(info.name).wait(10)
    assert inspect_run(info.path).status == "finished"


def test_preflight_accepts_every_preset_and_refuses_a_memory_hog():
    for preset in ALL.values():
        e = preset.build()
        assert preflight(e) == count_params(e.model, (28, 28) if e.data.dataset == "mnist" else (8, 8))
    hog = Experiment(
        data=DataConfig(dataset="mnist", split="official"),
        model=ModelConfig(family="cnn", hidden=[64], conv=[ConvBlock(128, 3, 1, True, 1)] * 2),
        train=TrainConfig(batch_size=4096),
    )
    with pytest.raises(ConfigError, match="MB of memory"):
        preflight(hog)
    hog.train.batch_size = 8
    hog.model.conv = [ConvBlock(32, 3, 1, True, 2)]
    assert preflight(hog) > 0
    with pytest.raises(ConfigError, match="learning rate"):
        hog.train.lr = -1
        preflight(hog)
