"""Saved runs: exact reproduction after loading, atomic writes, broken folders reported."""

import json
import os

import numpy as np
import pytest
from saved_runs import record

from digits_core.config import ConvBlock, DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.errors import RunError
from digits_core.store.recorder import RunRecorder
from digits_core.store.runs import delete_run, inspect_run, list_runs, load_run, run_dataset
from digits_core.training.jobs import run_experiment


def _job(family, normalization="unit"):
    conv = [ConvBlock(8, 3, 1, True, 2)] if family == "cnn" else []
    e = Experiment(
        DataConfig(normalization=normalization),
        ModelConfig(family=family, hidden=[32], conv=conv),
        TrainConfig(epochs=2, lr=3e-3),
        name=f"t-{family}",
    )
    return run_experiment(e)


@pytest.mark.parametrize(
    "family, norm", [("numpy-mlp", "standardize"), ("torch-mlp", "unit"), ("cnn", "raw")]
)
def test_loaded_run_reproduces_test_accuracy_exactly(tmp_path, family, norm):
    job = _job(family, norm)
    path = record(job, tmp_path)
    run = load_run(path)
    data = run_dataset(run)
    probs = run.model.probs(run.normalizer(data.images_test))
    acc = float((probs.argmax(1) == data.labels_test).mean())
    assert acc == job.snapshot().final_test_acc == run.meta["test_acc"]
    np.testing.assert_array_equal(
        run.model.forward(data.x_test), job.model.forward(job.data.x_test)
    )
    assert run.experiment == job.experiment
    assert run.history.loss == job.snapshot().loss
    assert run.first_layer_before.shape == job.initial_first_layer.shape


def test_weights_are_stored_without_pickle(tmp_path):
    path = record(_job("numpy-mlp"), tmp_path)
    with np.load(path / "weights.npz", allow_pickle=False) as z:
        assert "dense0.W" in z.files
    path = record(_job("torch-mlp"), tmp_path)
    import torch

    state = torch.load(path / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_broken_run_folders_are_listed_not_fatal(tmp_path):
    good = record(_job("numpy-mlp"), tmp_path)
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "experiment.json").write_text("{}")
    bad_json = tmp_path / "badjson"
    bad_json.mkdir()
    for f in ("meta.json", "experiment.json", "history.json", "normalizer.npz"):
        (bad_json / f).write_text("{not json")
    corrupt = tmp_path / "corrupt"
    os.system(f"cp -r {good} {corrupt}")
    (corrupt / "weights.npz").write_bytes(b"PK\x03\x04 garbage")
    (tmp_path / ".tmp-inprogress").mkdir()  # a save in progress is invisible
    infos = {r.name: r for r in list_runs(tmp_path)}
    assert set(infos) == {good.name, "half", "badjson", "corrupt"}
    assert infos[good.name].ok
    assert not infos["half"].ok and "missing" in infos["half"].reason
    assert not infos["badjson"].ok and "JSON" in infos["badjson"].reason
    with pytest.raises(RunError, match="corrupt"):
        load_run(corrupt)
    with pytest.raises(RunError, match="half"):
        load_run(tmp_path / "half")


def test_a_failed_save_is_reported_and_leaves_no_half_written_file(tmp_path, monkeypatch):
    """A full disk while the run saves: training ends as it would, the job says why its
    folder has no checkpoint, and no temporary file is left in the folder."""
    import digits_core.store.recorder as recorder

    def fail(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(recorder, "save_weights", fail)
    e = _job("numpy-mlp").experiment
    job = run_experiment(e, recorder=RunRecorder(tmp_path, e))
    h = job.snapshot()
    assert h.status == "finished"
    assert h.warning.startswith("could not save the run to ") and "disk full)" in h.warning
    [folder] = tmp_path.iterdir()
    assert not (folder / "weights.npz").exists() and not inspect_run(folder).ok
    assert not [f.name for f in folder.iterdir() if ".tmp" in f.name]


def test_saving_twice_never_overwrites(tmp_path):
    job = _job("numpy-mlp")
    a, b = record(job, tmp_path), record(job, tmp_path, label="again")
    assert a != b and a.is_dir() and b.is_dir()


def test_delete_only_inside_runs_dir(tmp_path):
    path = record(_job("numpy-mlp"), tmp_path / "runs")
    with pytest.raises(RunError):
        delete_run(tmp_path, tmp_path / "runs")
    delete_run(path, tmp_path / "runs")
    assert not path.exists()


def test_a_saved_runs_meta_says_what_it_is(tmp_path):
    job = _job("cnn")
    meta = json.loads((record(job, tmp_path) / "meta.json").read_text())
    assert meta["family"] == "cnn" and meta["image_shape"] == [8, 8]
    assert meta["n_params"] == job.model.n_params and meta["test_acc"] == job.snapshot().final_test_acc


def test_a_run_training_on_another_machine_is_alive_while_its_meta_is_fresh(tmp_path):
    """A cluster worker's pid means nothing here: its run is judged by its last meta write."""
    import time

    from digits_core.store.runs import REMOTE_STALE_S, inspect_run

    path = record(_job("numpy-mlp"), tmp_path)
    meta = json.loads((path / "meta.json").read_text())
    meta.update(status="running", host="gpu-node-7", pid=1, updated=time.time())
    (path / "meta.json").write_text(json.dumps(meta))
    assert inspect_run(path).status == "running"
    meta["updated"] = time.time() - REMOTE_STALE_S - 1
    (path / "meta.json").write_text(json.dumps(meta))
    assert inspect_run(path).status == "interrupted"
    meta["host"] = ""  # this machine: the pid decides, and pid 1 is not the trainer's
    meta["pid_started"] = 0.0
    (path / "meta.json").write_text(json.dumps(meta))
    assert inspect_run(path).status == "interrupted"


def test_a_full_disk_keeps_the_last_checkpoint_and_says_why(tmp_path, monkeypatch, tiny_job):
    """ENOSPC at a checkpoint: the write fails in one line, the model stays in memory, the
    folder still holds the previous, whole checkpoint; once there is room again, it saves."""
    import errno

    import digits_core.store.recorder as recorder

    rec = recorder.RunRecorder(tmp_path, tiny_job.experiment)
    rec.begin(tiny_job.model, tiny_job.data, tiny_job.initial_first_layer)
    h = tiny_job.snapshot()
    assert rec.checkpoint(tiny_job.model, h) and rec.error == ""
    before = {p.name: p.read_bytes() for p in rec.path.iterdir()}
    real = recorder.save_weights

    def full(state, path):  # the disk fills up while the weights are written
        path.write_bytes(b"half")
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(recorder, "save_weights", full)
    h.message = "something new to save"
    assert not rec.checkpoint(tiny_job.model, h)
    assert rec.error == f"could not save the run to {rec.path.name} (No space left on device); it stays in memory"
    assert {p.name: p.read_bytes() for p in rec.path.iterdir()} == before  # every old file as it was
    assert not [p for p in rec.path.iterdir() if p.name.startswith(".")]  # no temporary left
    assert load_run(rec.path).history.message == tiny_job.snapshot().message  # the old one loads
    monkeypatch.setattr(recorder, "save_weights", real)
    assert rec.checkpoint(tiny_job.model, h) and rec.error == ""
    assert load_run(rec.path).history.message == "something new to save"


def test_a_read_only_runs_folder_refuses_the_start_in_one_line(tmp_path, monkeypatch):
    import errno

    from digits_core.serve.runner import JobRunner

    def read_only(self, *a, **k):
        raise OSError(errno.EROFS, "Read-only file system")

    monkeypatch.setattr(type(tmp_path), "mkdir", read_only)
    e = Experiment(DataConfig(), ModelConfig(hidden=[8]), TrainConfig(epochs=1), name="t")
    with pytest.raises(RunError, match=r"^cannot make a run folder in .* \(Read-only file system\)$"):
        JobRunner(tmp_path / "runs").start(e)


def test_sessions_saving_at_the_same_moment_never_overwrite_each_other(tmp_path, tiny_job):
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda _: record(tiny_job, tmp_path), range(8)))
    assert len(set(paths)) == 8
    assert all(inspect_run(p).ok for p in paths)
    assert sorted(p.name for p in paths) == sorted(f"tiny-{k}" for k in range(1, 9))


def test_a_background_checkpoint_is_written_off_the_callers_thread_and_a_failure_is_reported(
        tmp_path, monkeypatch, tiny_job):
    """A checkpoint handed to the writer thread is on disk once `flush` returns, written by
    another thread; a failure there (any exception: nothing would catch it) becomes `error`,
    and the next foreground checkpoint, which waits for the writer, wins."""
    import threading

    import digits_core.store.recorder as recorder

    rec = recorder.RunRecorder(tmp_path, tiny_job.experiment)
    rec.begin(tiny_job.model, tiny_job.data, tiny_job.initial_first_layer)
    h = tiny_job.snapshot()
    h.message = "written in the background"
    writers = []
    real = recorder.save_weights

    def record_thread(state, path):
        writers.append(threading.current_thread())
        real(state, path)

    monkeypatch.setattr(recorder, "save_weights", record_thread)
    assert rec.checkpoint(tiny_job.model, h, background=True)
    rec.flush()
    assert writers and writers[0] is not threading.current_thread()
    writers[0].join(5)
    assert not writers[0].is_alive()  # a flushed writer ends: a server does not collect threads
    assert load_run(rec.path).history.message == "written in the background" and rec.error == ""

    def broken(state, path):
        raise ValueError("a bug in a writer")

    monkeypatch.setattr(recorder, "save_weights", broken)
    assert rec.checkpoint(tiny_job.model, h, background=True)
    rec.flush()
    assert rec.error == f"could not save the run to {rec.path.name} (ValueError: a bug in a writer); it stays in memory"
    monkeypatch.setattr(recorder, "save_weights", real)
    h.message = "then in the foreground"
    assert rec.checkpoint(tiny_job.model, h) and rec.error == ""
    assert load_run(rec.path).history.message == "then in the foreground"


def test_a_runs_saved_test_accuracy_is_its_final_one_else_its_last_full_test():
    from digits_core.store.runs import saved_test_acc

    assert saved_test_acc({"test_acc": 0.98, "last_test_acc": 0.97}) == 0.98
    assert saved_test_acc({"test_acc": None, "last_test_acc": 0.97}) == 0.97  # stopped midway
    assert saved_test_acc({}) is None and saved_test_acc({"test_acc": "x"}) is None


def test_a_run_that_ends_little_better_than_a_guess_is_listed_finished(tmp_path):
    """Its message (what to try) is over 200 characters: meta.json's reader took such a
    finished run for a broken one."""
    from digits_core.store.recorder import RunRecorder
    from digits_core.training.jobs import run_experiment

    exp = Experiment(DataConfig(), ModelConfig(family="numpy-mlp", hidden=[8]),
                     TrainConfig(epochs=1, lr=1e-7, optimizer="sgd"), name="guess")
    job = run_experiment(exp, recorder=RunRecorder(tmp_path, exp))
    assert "little better than a guess" in job.snapshot().message
    info = inspect_run(job.recorder.path)
    assert info.status == "finished" and info.ok, info.reason


def test_a_run_whose_process_is_a_zombie_is_interrupted(tiny_job, tmp_path):
    """A process that ended but was never reaped (a Ray worker of a removed node) still has
    its pid and start time: the run it left 'running' read as training forever."""
    import subprocess
    import time

    import psutil

    path = record(tiny_job, tmp_path)
    child = subprocess.Popen(["true"])
    try:
        deadline = time.monotonic() + 30
        while psutil.Process(child.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        meta = json.loads((path / "meta.json").read_text())
        meta.update(status="running", pid=child.pid, pid_started=psutil.Process(child.pid).create_time(),
                    updated=meta["updated"] + 1)
        (path / "meta.json").write_text(json.dumps(meta))
        assert inspect_run(path).status == "interrupted"
    finally:
        child.wait()
