"""Configurations as links, and a teacher's locked configuration: read like any outside
input (Hypothesis over arbitrary query strings and files), refused in one line."""

import base64
import json
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from digits_core.config import Experiment
from digits_core.errors import ConfigError
from digits_core.presets import ALL
from digits_core.serve.links import (
    CLASS_CONFIG,
    CONTROLS,
    MAX_LINK,
    LockedConfig,
    apply_open,
    experiment_from_link,
    experiment_link,
    publish_locked,
    read_locked,
)


@pytest.mark.parametrize("name", list(ALL))
def test_every_preset_goes_through_a_link_unchanged(name):
    exp = ALL[name].build()
    value = experiment_link(exp)
    assert set(value) <= set(string.ascii_letters + string.digits + "-_")  # nothing to escape
    assert experiment_from_link(value) == exp


def test_a_link_never_carries_a_server_folder():
    exp = ALL["S2a"].build()
    exp.data.mnist_dir = "/home/teacher/private/mnist"
    value = experiment_link(exp)
    assert "private" not in base64.urlsafe_b64decode(value + "==").decode()
    forged = base64.urlsafe_b64encode(json.dumps(exp.to_dict()).encode()).decode()
    assert experiment_from_link(forged).data.mnist_dir is None


def _refused_in_one_line(value) -> None:
    try:
        exp = experiment_from_link(value)
    except ConfigError as e:
        assert "\n" not in str(e) and str(e)
        return
    exp.validate()  # what is accepted is valid


@given(st.text(max_size=300))
def test_any_query_string_is_a_valid_experiment_or_one_refusal(value):
    _refused_in_one_line(value)


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
                        st.sampled_from(["data", "model", "train", "lr", "epochs", "hidden", "dataset"]),
                        inner, max_size=4), max_leaves=20))
def test_any_json_in_a_link_is_a_valid_experiment_or_one_refusal(value):
    _refused_in_one_line(base64.urlsafe_b64encode(json.dumps(value).encode()).decode())


def test_bad_links_say_what_is_wrong():
    with pytest.raises(ConfigError, match="damaged"):
        experiment_from_link(experiment_link(Experiment())[:-7])
    with pytest.raises(ConfigError, match="over the"):
        experiment_from_link("A" * (MAX_LINK + 1))
    bad = Experiment()
    bad.train.lr = 500.0
    with pytest.raises(ConfigError, match="learning rate"):
        experiment_from_link(base64.urlsafe_b64encode(json.dumps(bad.to_dict()).encode()).decode())


def test_a_locked_configuration_lets_only_the_open_controls_through(tmp_path):
    teacher = ALL["S1b"].build()
    publish_locked(tmp_path, teacher, ["lr"])
    lock = read_locked(tmp_path)
    assert lock.experiment == teacher and lock.open == ["lr"]
    student = ALL["fast"].build()  # another model, data and everything
    student.train.lr = 0.5
    held = apply_open(lock, student)
    assert held.train.lr == 0.5
    held.train.lr, held.name = teacher.train.lr, teacher.name
    assert held == teacher  # nothing else of the student's got through


def test_every_control_is_a_field_of_the_experiment():
    exp = Experiment()
    for part, field, _ in CONTROLS.values():
        assert hasattr(getattr(exp, part), field)
    assert apply_open(LockedConfig(exp, list(CONTROLS)), ALL["fast"].build()).model == ALL["fast"].build().model


@given(st.binary(max_size=400))
def test_a_damaged_class_config_file_is_refused_never_a_free_form(tmp_path_factory, data):
    folder = tmp_path_factory.mktemp("class")
    (folder / CLASS_CONFIG).write_bytes(data)
    try:
        lock = read_locked(folder)
    except ConfigError as e:
        assert "\n" not in str(e)
        return
    assert lock is not None and all(c in CONTROLS for c in lock.open)


def test_no_class_config_is_no_lock(tmp_path):
    assert read_locked(tmp_path) is None
    with pytest.raises(ConfigError, match="no control named"):
        publish_locked(tmp_path, Experiment(), ["everything"])
