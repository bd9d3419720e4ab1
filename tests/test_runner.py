"""JobRunner, the seam the pages train through: a run is a folder from its first step,
one press is one job, per-person limits, the queue, closed tabs, continuing a run,
interrupted runs (a `kill -9` of a real CLI training, of a pool worker, a hung worker), and
the memory preflight.

The runner's behaviour is checked once per executor (`executor` fixture): threads and a
process pool in the default suite, Ray under the `ray` marker (`pytest -m ray`)."""

import json
import os
import signal
import subprocess
import sys

import pytest
from repo_paths import REPO
from waiting import wait_for

from digits_core.config import ConvBlock, DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.errors import ConfigError
from digits_core.nn.models import build_model
from digits_core.presets import ALL
from digits_core.serve.executors import RayExecutor, ThreadExecutor
from digits_core.serve.pool import ProcessExecutor
from digits_core.serve.runner import JobRunner, preflight
from digits_core.store.runs import inspect_run, list_runs, load_run

# Deadlines, not goals: on a machine busy enough, a spawned worker takes minutes to import
# torch (the pool allows READY_S, 180 s) and a run's steps come slowly; passing never
# depends on being quick, only a failure waits this long.
SLOW = 300


def exp(epochs=1000, batch_size=32, **kw) -> Experiment:
    return Experiment(
        data=DataConfig(dataset="digits"),
        model=ModelConfig(family="numpy-mlp", hidden=[16]),
        train=TrainConfig(epochs=epochs, batch_size=batch_size, **kw),
        name="t",
    )


@pytest.fixture(scope="module")
def pool():
    """The module's one process pool (two warm workers)."""
    pool = ProcessExecutor(2)
    yield pool
    pool.close()


@pytest.fixture(scope="module", params=["threads", "processes", pytest.param("ray", marks=pytest.mark.ray)])
def executor(request):
    """One executor per kind for the whole module: the pool and Ray start once."""
    if request.param == "threads":
        yield ThreadExecutor()
    elif request.param == "processes":
        yield request.getfixturevalue("pool")
    else:
        ray = pytest.importorskip("ray")
        yield RayExecutor(num_cpus=2, include_dashboard=False, log_to_driver=False)
        ray.shutdown()


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_a_run_is_a_folder_from_its_first_step(tmp_path, executor):
    runner = JobRunner(tmp_path, executor=executor)
    name = runner.start(exp(), owner="ann")
    assert name == "t-1" and (tmp_path / name / "experiment.json").is_file()
    assert wait_for(lambda: runner.history(name).step > 20, SLOW)
    first = runner.history(name).step
    assert wait_for(lambda: runner.history(name).step > first)  # it keeps coming
    meta = json.loads((tmp_path / name / "meta.json").read_text())
    assert meta["owner"] == "ann" and meta["status"] in ("running", "queued", "loading")
    runner.stop(name)
    assert runner.history(name).status in ("stopping", "stopped")  # seen at once, by the caller
    # Ended by the Stop, mid-run (1000 epochs would take hours): how soon is the benchmark's
    # business (`make bench-ui` times Stop in the browser), not a test's on a busy machine.
    assert wait_for(lambda: runner.history(name).status == "stopped", SLOW)
    assert runner.job(name).wait(SLOW)
    info = inspect_run(tmp_path / name)
    assert info.ok and info.status == "stopped"
    run = load_run(tmp_path / name)
    assert run.history.step == runner.history(name).step > 20
    assert len(run.history.epochs) < 1000 and run.history.message.startswith("stopped by the user")
    assert run.meta["test_acc"] is not None  # measured after the stop, and saved


def test_one_press_is_one_job_and_each_person_has_a_limit(tmp_path, executor):
    runner = JobRunner(tmp_path, executor=executor, max_jobs=4, per_owner=2)
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
        assert runner.job(name).wait(SLOW)
    assert sorted(r.name for r in list_runs(tmp_path)) == sorted([a, b, c])


def test_a_run_stopped_at_once_can_be_started_again_at_once(tmp_path):
    runner = JobRunner(tmp_path)
    a = runner.start(exp(), owner="ann")
    runner.stop(a)
    assert runner.job(a).wait(SLOW)
    b = runner.start(exp(), owner="ann")  # the same settings, within the double-click window
    assert b != a and runner.active("ann") == [b]
    runner.stop(b)
    assert runner.job(b).wait(SLOW)


def test_memory_is_given_back_once_runs_ended_and_none_trains(tmp_path):
    runner = JobRunner(tmp_path, max_jobs=2)
    a, b = runner.start(exp(), owner="ann"), runner.start(exp(), owner="bob")
    runner.stop(a)
    assert runner.job(a).wait(SLOW)
    runner.sweep(lambda owner: True)
    assert runner._settled == 1  # a ended, but b still trains: nothing released yet
    runner.stop(b)
    assert runner.job(b).wait(SLOW)
    runner.sweep(lambda owner: True)
    assert runner._settled == 0  # both ended: released (gc and malloc_trim) and counted off


def test_runs_of_a_person_without_tabs_stop_after_the_grace_only(tmp_path, executor):
    clock = Clock()
    runner = JobRunner(tmp_path, executor=executor, grace=10, clock=clock)
    mine, other = runner.start(exp(), owner="gone"), runner.start(exp(), owner="here")
    assert wait_for(lambda: runner.history(mine).step > 0 and runner.history(other).step > 0, SLOW)
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
    assert runner.job(mine).wait(SLOW) and runner.history(mine).status == "stopped"
    assert not runner.job(other).done  # the person with a tab keeps training
    runner.stop(other)
    assert runner.job(other).wait(SLOW)
    assert inspect_run(tmp_path / mine).ok  # stopped, and saved as trained so far


def test_continue_extends_the_history_with_the_optimiser_state(tmp_path, executor):
    runner = JobRunner(tmp_path, executor=executor)
    name = runner.start(exp(epochs=3, optimizer="adam"), owner="ann")
    assert wait_for(lambda: runner.job(name).done, SLOW) and runner.job(name).wait(SLOW)
    before = load_run(tmp_path / name)
    assert len(before.history.epochs) == 3 and before.optimizer_state
    assert runner.continue_run(name, 2, owner="ann") == name
    assert wait_for(lambda: runner.job(name).done, SLOW) and runner.job(name).wait(SLOW)
    after = load_run(tmp_path / name)
    assert after.history.epochs == [1, 2, 3, 4, 5]
    assert after.history.steps[: len(before.history.steps)] == before.history.steps
    assert after.history.steps == sorted(after.history.steps)
    assert after.experiment.train.epochs == 5 and after.history.status == "finished"
    assert after.history.message == "finished 5 epochs"


def test_the_queue_is_first_come_first_served_with_a_place_and_a_wait(tmp_path, executor):
    runner = JobRunner(tmp_path, executor=executor, max_jobs=1, per_owner=2)
    a = runner.start(exp(), owner="ann")
    b = runner.start(exp(lr=0.02), owner="bob")
    c = runner.start(exp(lr=0.03), owner="ann")
    assert wait_for(lambda: runner.history(a).step > 0 and runner.queue_position(c) is not None, SLOW)
    assert runner.queue_position(a) is None  # training, not waiting
    (pb, wb), (pc, wc) = runner.queue_position(b), runner.queue_position(c)
    # b waits for a; c for a and then b (the waits are estimates: only their order is promised)
    assert (pb, pc) == (1, 2) and 0 < wb < wc
    assert runner.history(c).message == "waiting for a free training slot (2 in queue)"
    assert runner.counts() == (1, 2)
    runner.stop(a)
    assert wait_for(lambda: runner.history(b).step > 0, SLOW)  # bob was first in line
    assert runner.queue_position(c)[0] == 1
    for name in (b, c):
        runner.stop(name)
    assert all(runner.job(n).wait(SLOW) for n in (a, b, c))
    assert runner.history(c).status == "stopped" and runner.queue_position(c) is None
    assert json.loads((tmp_path / c / "meta.json").read_text())["status"] == "stopped"  # its folder too


def worker_of(tmp_path, name) -> int:
    return json.loads((tmp_path / name / "meta.json").read_text())["pid"]


def test_a_killed_worker_interrupts_only_its_run_and_is_replaced(tmp_path, pool):
    runner = JobRunner(tmp_path, executor=pool)
    a, b = runner.start(exp(), owner="ann"), runner.start(exp(lr=0.02), owner="bob")
    # a checkpoint on disk (the history renames into place before the weights do)
    assert wait_for(lambda: inspect_run(tmp_path / a).ok and runner.history(b).step > 0, SLOW)
    victim = worker_of(tmp_path, a)
    assert victim in pool.pids() and victim != os.getpid() and pool.worker_pid(a) == victim
    os.kill(victim, signal.SIGKILL)
    assert wait_for(lambda: runner.job(a).done, SLOW)
    h = runner.history(a)
    assert h.status == "interrupted" and "worker process" in h.message
    info = inspect_run(tmp_path / a)
    assert info.status == "interrupted" and info.ok, info.reason  # its last checkpoint is usable
    step = runner.history(b).step
    assert wait_for(lambda: runner.history(b).step > step)  # the other run never noticed
    assert wait_for(lambda: len(pool.pids()) == 2 and victim not in pool.pids(), SLOW)
    runner.stop(b)
    assert runner.job(b).wait(SLOW) and inspect_run(tmp_path / b).status == "stopped"
    runner.continue_run(a, 1, owner="ann")  # on the new worker
    assert wait_for(lambda: runner.job(a).done, SLOW) and runner.job(a).wait(SLOW)
    assert inspect_run(tmp_path / a).status == "finished"


def test_a_hung_worker_is_killed_and_replaced(tmp_path, pool, monkeypatch):
    runner = JobRunner(tmp_path, executor=pool)
    a = runner.start(exp(), owner="ann")
    assert wait_for(lambda: runner.history(a).step > 0, SLOW)
    hung = pool.worker_pid(a)
    os.kill(hung, signal.SIGSTOP)  # alive, but silent: as stuck as a process can be
    # The short limit only once the worker is truly stopped: a niced worker on a busy machine
    # may well be silent for a second or two before, and that is not a hang.
    monkeypatch.setattr(pool, "hang_s", 1.5)
    assert wait_for(lambda: runner.job(a).done, SLOW)
    assert runner.history(a).status == "interrupted" and "sent nothing" in runner.history(a).message
    assert wait_for(lambda: len(pool.pids()) == 2 and hung not in pool.pids(), SLOW)
    assert wait_for(lambda: inspect_run(tmp_path / a).status != "running", SLOW)
    monkeypatch.setattr(pool, "hang_s", 60.0)  # a busy machine must not make b look hung
    b = runner.start(exp(lr=0.02), owner="ann")  # the pool still trains
    assert wait_for(lambda: runner.history(b).step > 0, SLOW)
    runner.stop(b)
    assert runner.job(b).wait(SLOW)


def test_a_worker_that_ignores_stop_is_killed_after_the_grace_and_replaced(tmp_path, pool):
    """The README's promise with the pool's own settings: a worker still training 10 s
    after Stop (here a stopped process: it cannot even hear it) is killed, its run kept as
    interrupted, and the pool gets a fresh worker."""
    runner = JobRunner(tmp_path, executor=pool)
    a = runner.start(exp(), owner="ann")
    assert wait_for(lambda: inspect_run(tmp_path / a).ok and runner.history(a).step > 0, SLOW)
    deaf = pool.worker_pid(a)
    os.kill(deaf, signal.SIGSTOP)
    runner.stop(a)
    assert runner.history(a).status == "stopping"
    assert wait_for(lambda: runner.job(a).done, SLOW)
    h = runner.history(a)
    assert h.status == "interrupted" and "did not stop within 10 s and was ended" in h.message, h.message
    assert inspect_run(tmp_path / a).ok  # its last checkpoint is kept
    assert wait_for(lambda: len(pool.pids()) == 2 and deaf not in pool.pids(), SLOW)


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
        # the first checkpoint is whole once its weights are in place (they rename after the history)
        assert wait_for(lambda: any(inspect_run(p).ok for p in out.glob("*")), timeout=SLOW)
    finally:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(SLOW)
    [info] = list_runs(out)
    assert info.status == "interrupted" and info.ok, info.reason
    run = load_run(info.path)
    assert run.history.epochs and run.model.n_params > 0
    r = subprocess.run([sys.executable, "-m", "digits_core", "evaluate", "--run", str(info.path)],
                       cwd=REPO, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0 and r.stdout.strip().splitlines()[-1].startswith("accuracy 0.")
    runner = JobRunner(out)
    runner.continue_run(info.name, 1)
    assert wait_for(lambda: runner.job(info.name).done, SLOW) and runner.job(info.name).wait(SLOW)
    assert inspect_run(info.path).status == "finished"


def test_the_executor_comes_from_the_environment_and_ray_only_when_asked(monkeypatch):
    code = ("import sys; from digits_core.serve.runner import JobRunner; r = JobRunner('runs-x'); "
            "print(type(r.executor).__name__, 'ray' in sys.modules)")
    env = dict(os.environ)
    env.pop("DIGITLAB_EXECUTOR", None)
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True,
                       text=True, timeout=600)
    assert r.stdout.split() == ["ThreadExecutor", "False"], r.stderr
    monkeypatch.setenv("DIGITLAB_EXECUTOR", "cluster")
    with pytest.raises(ConfigError, match="threads, processes, ray"):
        JobRunner("runs-x")


def test_preflight_accepts_every_preset_and_refuses_a_memory_hog():
    for preset in ALL.values():  # accepted, with the size of the network it would build
        e = preset.build()
        shape = (28, 28) if e.data.dataset == "mnist" else (8, 8)
        assert preflight(e) == build_model(e.model, shape, device="cpu").n_params > 0, preset.title
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


def test_a_pool_started_under_streamlit_run_does_not_rerun_the_app(tmp_path, monkeypatch):
    """Under `streamlit run` the process's `__main__` is the app script; a spawned worker
    that imported it would start a dashboard of its own. The pool spawns without it."""
    import types

    app = tmp_path / "app_script.py"
    app.write_text("raise SystemExit('the worker imported the app script')\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(app)
    monkeypatch.setitem(sys.modules, "__main__", main)
    pool = ProcessExecutor(1)
    try:
        runner = JobRunner(tmp_path / "runs", executor=pool)
        name = runner.start(exp(epochs=2), owner="ann")
        assert wait_for(lambda: runner.job(name).done, SLOW) and runner.job(name).wait(SLOW)
        assert runner.history(name).status == "finished", runner.history(name).message
    finally:
        pool.close()


def test_a_worker_that_dies_while_starting_is_replaced_and_the_pool_keeps_its_size(tmp_path):
    """A worker killed before it reported ready (out of memory while importing torch, say)
    is replaced: the pool keeps its size and still trains, instead of shrinking to none."""
    pool = ProcessExecutor(1)
    try:
        first = pool.pids()
        assert len(first) == 1
        os.kill(first[0], signal.SIGKILL)  # long before torch is imported and warm
        assert wait_for(lambda: len(pool.pids()) == 1 and first[0] not in pool.pids(), SLOW)
        runner = JobRunner(tmp_path / "runs", executor=pool)
        name = runner.start(exp(epochs=2), owner="ann")
        assert wait_for(lambda: runner.job(name).done, SLOW) and runner.job(name).wait(SLOW)
        assert runner.history(name).status == "finished", runner.history(name).message
    finally:
        pool.close()


def test_a_pool_whose_workers_never_start_gives_up_with_a_clear_message(tmp_path, monkeypatch):
    """Workers that cannot start at all (here: each one killed as it appears) are retried a
    few times, not forever; a Start then fails with a message that says so."""
    pool = ProcessExecutor(1)
    try:
        seen: set[int] = set()

        def kill_new_workers():
            for pid in pool.pids():
                if pid not in seen:
                    seen.add(pid)
                    os.kill(pid, signal.SIGKILL)
            return pool.start_failures_exhausted

        assert wait_for(kill_new_workers, SLOW)
        assert 1 < len(seen) <= 1 + pool.START_RETRIES
        runner = JobRunner(tmp_path / "runs", executor=pool)
        name = runner.start(exp(epochs=2), owner="ann")
        assert wait_for(lambda: runner.job(name).done, SLOW)
        h = runner.history(name)
        assert h.status == "failed" and "could start" in h.message, (h.status, h.message)
    finally:
        pool.close()


def test_a_deleted_run_is_forgotten_and_its_name_is_free(tmp_path):
    """Deleting an ended run removes its folder and the runner's memory of it: the pages
    list a person's runs from both, and the next run given the freed name is a new one."""
    from digits_core.errors import RunError

    runner = JobRunner(tmp_path)
    a = runner.start(exp(), owner="ann")
    assert wait_for(lambda: runner.history(a).step > 0, SLOW)
    with pytest.raises(RunError, match="still training"):
        runner.delete(a, by="ann")
    runner.stop(a)
    assert runner.job(a).wait(SLOW)
    with pytest.raises(RunError):
        runner.delete(a, by="bob")  # not theirs
    runner.delete(a, by="ann")
    assert not (tmp_path / a).exists() and runner.job(a) is None and a not in runner.owned("ann")
    b = runner.start(exp(epochs=1), owner="ann")
    assert b == a  # the freed name, for a new run
    assert runner.job(b).wait(SLOW) and runner.history(b).status == "finished"
    with pytest.raises(RunError, match="not a run folder"):
        runner.delete("../elsewhere")
