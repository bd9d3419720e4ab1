"""Caps on what one person keeps on a shared server: counted per owner, refused with a way
to free space, checked by the job runner before a run starts."""

import pytest
from waiting import wait_for

from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.errors import ConfigError
from digits_core.serve.runner import JobRunner
from digits_core.serve.serving import owner_key
from digits_core.store.quota import (
    Caps,
    Usage,
    caps_from_env,
    check_room,
    folder_bytes,
    usage_by_owner,
)


def test_usage_is_counted_per_owner():
    u = usage_by_owner([("@ada", 10), ("@bob", 5), ("@ada", 7)])
    assert u["@ada"] == Usage(2, 17) and u["@bob"] == Usage(1, 5)


def test_room_is_refused_at_the_cap_with_how_to_free_it():
    caps = Caps(items=3, bytes=100 * 2**20)
    check_room(Usage(2, 50 * 2**20), caps, adding=10 * 2**20)
    with pytest.raises(ConfigError, match=r"you keep 3 runs and one person may keep at most 3 on this server; delete some on the Runs page"):
        check_room(Usage(3, 0), caps)
    with pytest.raises(ConfigError, match=r"take 95.0 MB and this one would need about 10.0 MB more") as e:
        check_room(Usage(1, 95 * 2**20), caps, adding=10 * 2**20)
    assert "\n" not in str(e.value) and "make room" in str(e.value)
    check_room(Usage(10**6, 10**15), Caps())  # no caps: anything goes


def test_caps_have_class_defaults_and_none_elsewhere(monkeypatch):
    monkeypatch.delenv("DIGITLAB_MAX_RUNS_PER_PERSON", raising=False)
    monkeypatch.delenv("DIGITLAB_MAX_MB_PER_PERSON", raising=False)
    assert not caps_from_env(class_server=False).any
    on = caps_from_env(class_server=True)
    assert on.items and on.bytes and on.bytes >= 100 * 2**20  # room for a lesson's runs
    monkeypatch.setenv("DIGITLAB_MAX_RUNS_PER_PERSON", "5")
    monkeypatch.setenv("DIGITLAB_MAX_MB_PER_PERSON", "0")  # 0: that cap off
    assert caps_from_env(class_server=False) == Caps(items=5, bytes=None)
    monkeypatch.setenv("DIGITLAB_MAX_MB_PER_PERSON", "lots")
    with pytest.raises(ConfigError, match="must be a number"):
        caps_from_env(class_server=True)


def test_folder_bytes_adds_up_the_files(tmp_path):
    (tmp_path / "a").write_bytes(b"x" * 100)
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b").write_bytes(b"x" * 23)
    assert folder_bytes(tmp_path) == 123 and folder_bytes(tmp_path / "missing") == 0


def tiny(name: str) -> Experiment:
    return Experiment(DataConfig(), ModelConfig(family="numpy-mlp", hidden=[8]), TrainConfig(epochs=1), name=name)


def finish(runner: JobRunner, name: str) -> None:
    assert wait_for(lambda: runner.job(name).done) and runner.job(name).wait(30)


def test_the_runner_refuses_a_run_over_a_persons_cap_and_others_still_start(tmp_path):
    runner = JobRunner(tmp_path, own_runs_only=True, caps=Caps(items=2))
    ada = owner_key("Ada")
    for n in ("a1", "a2"):
        finish(runner, runner.start(tiny(n), owner=ada, person="Ada"))
    with pytest.raises(ConfigError, match="you keep 2 runs"):
        runner.start(tiny("a3"), owner=ada, person="Ada")
    finish(runner, runner.start(tiny("b1"), owner=owner_key("Bob"), person="Bob"))
    first = min(p.name for p in tmp_path.iterdir())
    runner.delete(first, by=ada)  # freeing space makes room again
    finish(runner, runner.start(tiny("a3"), owner=ada, person="Ada"))


def test_the_runner_counts_the_bytes_a_person_keeps(tmp_path):
    runner = JobRunner(tmp_path, caps=Caps(bytes=1))
    with pytest.raises(ConfigError, match="would need about"):
        runner.start(tiny("big"), owner="3f2a9c1b7d6e5f40")
    assert not list(tmp_path.iterdir())  # refused before anything was written
