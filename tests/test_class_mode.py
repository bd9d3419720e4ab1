"""Class mode in the core: names, owners, teachers, and who may change a run.

A class server (`DIGITLAB_CLASS_MODE=1`) keeps each person's runs under their name: anyone
may look at any run, only its owner may rename, continue or delete it, and a teacher may
publish a run to the class. The dashboard's side is in test_app_class_mode.py."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st
from saved_runs import record
from waiting import wait_for

from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.errors import ConfigError, RunError
from digits_core.serve.runner import JobRunner
from digits_core.serve.serving import (
    class_mode,
    is_teacher,
    owner_key,
    person_name,
    served_publicly,
)
from digits_core.store.runs import inspect_run, list_runs


def test_class_mode_is_off_unless_the_operator_turns_it_on(monkeypatch):
    monkeypatch.delenv("DIGITLAB_CLASS_MODE", raising=False)
    monkeypatch.delenv("DIGITLAB_PUBLIC", raising=False)
    assert not class_mode() and not served_publicly()
    monkeypatch.setenv("DIGITLAB_CLASS_MODE", "1")
    # a class server is a public one: no free-text server folders, no absolute paths
    assert class_mode() and served_publicly()


@pytest.mark.parametrize("typed, shown", [
    ("Ada", "Ada"), ("  Ada   Lovelace ", "Ada Lovelace"), ("José Núñez", "José Núñez"),
    ("O'Brien-Smith", "O'Brien-Smith"), ("李雷", "李雷"), ("x" * 40, "x" * 40),
])
def test_names_people_type_are_kept_as_they_wrote_them(typed, shown):
    assert person_name(typed) == shown


@pytest.mark.parametrize("typed, why", [
    ("", "type your name"), ("   ", "type your name"), (None, "type your name"),
    ("x" * 41, "at most 40"), ("...", "a letter or a digit"), ("<script>", "cannot hold"),
    ("a/b", "cannot hold"), ("ada\x00", "cannot hold"), ("@ada", "cannot hold"),
])
def test_a_name_that_cannot_be_one_is_refused_with_the_reason(typed, why):
    with pytest.raises(ConfigError, match=why):
        person_name(typed)


@given(st.text(max_size=60))
def test_any_text_is_a_name_or_a_one_line_refusal(text):
    try:
        name = person_name(text)
    except ConfigError as e:
        assert "\n" not in str(e)
    else:
        assert 1 <= len(name) <= 40 and name == name.strip()
        # an owner key is never a session id (those have no '@'), and it ignores case
        assert owner_key(name) == "@" + name.casefold() and owner_key(text) == owner_key(name)


def test_one_person_whatever_case_or_spacing_they_type():
    assert owner_key("Ada  Lovelace") == owner_key("ada lovelace") == "@ada lovelace"
    assert owner_key("Ada") != owner_key("Bob")


def test_a_teacher_is_a_listed_login_or_whoever_types_the_code(monkeypatch):
    monkeypatch.delenv("DIGITLAB_TEACHERS", raising=False)
    monkeypatch.delenv("DIGITLAB_TEACHER_CODE", raising=False)
    assert not is_teacher(login="ms.smith@school.org") and not is_teacher(code="")
    monkeypatch.setenv("DIGITLAB_TEACHERS", "Ms.Smith@school.org, mr jones")
    assert is_teacher(login="ms.smith@school.org") and is_teacher(login="Mr Jones")
    assert not is_teacher(login="ada@school.org")
    assert not is_teacher(code="owl")  # no code configured: typing one does nothing
    monkeypatch.setenv("DIGITLAB_TEACHER_CODE", "owl-42")
    assert is_teacher(code="owl-42") and is_teacher(code=" owl-42 ")
    assert not is_teacher(code="owl-4") and not is_teacher(code=None) and not is_teacher(code="")


def _run(tmp_path, tiny_job, owner, person):
    path = record(tiny_job, tmp_path, label="mine")
    meta = json.loads((path / "meta.json").read_text())
    meta.update(owner=owner, person=person)
    (path / "meta.json").write_text(json.dumps(meta))
    return path


def test_only_its_owner_renames_or_deletes_a_run(tmp_path, tiny_job):
    path = _run(tmp_path, tiny_job, owner_key("Ada"), "Ada")
    runner = JobRunner(tmp_path, own_runs_only=True)
    info = inspect_run(path)
    assert info.ok and info.person == "Ada" and info.owner == "@ada"
    with pytest.raises(RunError, match="only Ada can rename mine"):
        runner.rename(path.name, "stolen", by=owner_key("Bob"))
    with pytest.raises(RunError, match="only Ada can delete mine"):
        runner.delete(path.name, by=owner_key("Bob"))
    assert path.is_dir() and inspect_run(path).label == "mine"  # nothing changed
    runner.rename(path.name, "Ada's best", by=owner_key("ADA"))
    assert inspect_run(path).label == "Ada's best"
    runner.delete(path.name, by=owner_key("ada"))
    assert not path.exists()


def test_without_a_class_anyone_may_change_any_run(tmp_path, tiny_job):
    path = _run(tmp_path, tiny_job, "3f2a9c1b7d6e5f40", "")
    runner = JobRunner(tmp_path)
    assert inspect_run(path).person == ""  # a session id is not a name
    runner.rename(path.name, "renamed")
    assert inspect_run(path).label == "renamed"
    runner.delete(path.name)
    assert not path.exists()


def test_only_a_teacher_publishes_a_run_and_can_take_it_back(tmp_path, tiny_job):
    path = _run(tmp_path, tiny_job, owner_key("Ms Smith"), "Ms Smith")
    runner = JobRunner(tmp_path, own_runs_only=True)
    with pytest.raises(RunError, match="only a teacher can publish"):
        runner.publish(path.name, teacher=False)
    assert not inspect_run(path).published
    runner.publish(path.name, teacher=True)
    [info] = list_runs(tmp_path)
    assert info.published and info.ok and info.person == "Ms Smith"
    runner.publish(path.name, False, teacher=True)
    assert not inspect_run(path).published


def test_on_a_class_server_only_the_owner_continues_a_run(tmp_path):
    runner = JobRunner(tmp_path, own_runs_only=True)
    exp = Experiment(DataConfig(), ModelConfig(family="numpy-mlp", hidden=[8]), TrainConfig(epochs=1), name="t")
    name = runner.start(exp, owner=owner_key("Ada"), person="Ada")
    assert wait_for(lambda: runner.job(name).done) and runner.job(name).wait(30)
    info = inspect_run(tmp_path / name)
    assert info.meta["person"] == "Ada" and info.owner == "@ada"
    with pytest.raises(RunError, match="only Ada can continue"):
        runner.continue_run(name, 1, owner=owner_key("Bob"))
    assert runner.continue_run(name, 1, owner=owner_key("ada")) == name
    assert wait_for(lambda: runner.job(name).done) and runner.job(name).wait(30)
    assert inspect_run(tmp_path / name).meta["epochs_done"] == 2


@pytest.mark.parametrize("typed, why", [
    ("mine\x00", "control characters"), ("a\x1bb", "control characters"), ("x" * 61, "at most 60"),
    ("   ", "cannot be empty"),
])
def test_a_run_name_that_would_break_the_run_is_refused_on_the_way_in(tmp_path, tiny_job, typed, why):
    path = _run(tmp_path, tiny_job, owner_key("Ada"), "Ada")
    with pytest.raises(RunError, match=why) as e:
        JobRunner(tmp_path).rename(path.name, typed, by=owner_key("Ada"))
    assert "\n" not in str(e.value)
    info = inspect_run(path)
    assert info.ok and info.label == "mine"


@given(st.text(max_size=80))
def test_any_run_name_is_kept_readable_or_refused_in_one_line(tmp_path_factory, tiny_job, text):
    path = _run(tmp_path_factory.mktemp("r"), tiny_job, owner_key("Ada"), "Ada")
    try:
        JobRunner(path.parent).rename(path.name, text, by=owner_key("Ada"))
    except RunError as e:
        assert "\n" not in str(e)
    assert inspect_run(path).ok  # whatever was typed, the run reads as before


def test_a_broken_run_stays_its_owners_and_its_owner_deletes_it(tmp_path, tiny_job):
    path = _run(tmp_path, tiny_job, owner_key("Ada"), "Ada")
    meta = json.loads((path / "meta.json").read_text())
    meta["label"] = "mine\x00"  # written by an older version, or by hand
    (path / "meta.json").write_text(json.dumps(meta))
    info = inspect_run(path)
    assert info.status == "broken" and "label" in info.reason
    assert info.owner == "@ada" and info.person == "Ada"  # still Ada's
    with pytest.raises(RunError, match="only Ada can delete"):
        JobRunner(tmp_path).delete(path.name, by=owner_key("Bob"))
    JobRunner(tmp_path).delete(path.name, by=owner_key("Ada"))
    assert not path.exists()
