"""AppTest of the Compare page: a race (of one: refused; of two: to its leaderboard) and a
sweep (17 points refused; 4 runs to a heat map, the best opened in the Train form)."""

import json
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import compare, state
from digits_core.data.datasets import IMAGE_SHAPE
from digits_core.store import drawings as dr

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=60).run()
    at.switch_page("pages/11_Compare.py").run()
    assert not at.exception, [e.value for e in at.exception]
    yield at
    runner = state.runner()
    for name in runner.active():
        runner.stop(name)
        runner.job(name).wait(10)


def session_of(at):
    return state._sessions()[at.session_state["sid"]]


def kept(at, kind):
    return compare._book()[at.session_state["sid"]][kind]


def table(at, column):
    """The page's dataframe that has `column` (AppTest finds dataframes by position only)."""
    return next(d.value for d in at.dataframe if column in d.value.columns)


def wait_done(thing, timeout=120):
    deadline = time.monotonic() + timeout
    while not thing.done:
        assert time.monotonic() < deadline, "still running"
        time.sleep(0.1)


def test_a_race_of_one_is_refused_in_one_line(app):
    app.multiselect(key="race_picks").set_value(["preset:S1b"]).run()
    app.button(key="race_start").click().run()
    assert [e.value for e in app.error] == ["a race needs 2 to 4 contestants; you chose 1: add another"]
    assert not state.runner().owned(app.session_state["sid"])  # nothing started


def test_a_race_of_two_runs_to_its_leaderboard(app):
    session_of(app).experiment.model.hidden = [8]
    app.multiselect(key="race_picks").set_value(["form", "preset:S1b"]).run()
    app.number_input(key="race_epochs").set_value(2).run()
    app.button(key="race_start").click().run()
    assert not app.error, [e.value for e in app.error]
    race = kept(app, "race")
    wait_done(race)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    board = table(app, "place")
    assert len(board) == 2 and set(board["status"]) == {"finished"}
    assert set(board["drawings accuracy"]) == {"—"}  # no drawings collected yet
    shape = IMAGE_SHAPE[race.contestants[0].experiment.data.dataset]
    dr.save_drawing(state.runs_dir(), np.zeros((40, 40, 4), np.uint8), np.zeros(shape, np.float32),
                    label=1, reading=None, model="m", model_key="m", owner="someone")
    app.run()
    board = table(app, "place")
    assert all(cell.endswith("% of 1") for cell in board["drawings accuracy"])  # each scored on it
    assert list(board["place"]) == [1, 2] and board["test accuracy"].is_monotonic_decreasing
    assert any(f"**{board['contestant'][0]}** wins" in s.value for s in app.success)
    acc = json.loads(next(c for c in app.get("plotly_chart") if c.proto.id.endswith("-race_acc")).proto.spec)
    assert {t["name"] for t in acc["data"]} == set(board["contestant"])
    assert [t["line"]["color"] for t in acc["data"]] == ["#0072B2", "#E69F00"]  # Okabe-Ito, as Runs


def test_seventeen_sweep_points_are_refused_and_start_is_off(app):
    app.text_input(key="sweep_v1_lr_False").set_value(", ".join(str(0.001 * k) for k in range(1, 18))).run()
    assert any("at most 16 runs; this one asks for 17" in e.value for e in app.error)
    assert app.button(key="sweep_start").disabled


def test_a_four_run_sweep_draws_its_heat_map_and_opens_the_best(app):
    exp = session_of(app).experiment
    exp.model.hidden, exp.train.epochs = [8], 2
    app.text_input(key="sweep_v1_lr_False").set_value("0.00001, 0.01").run()
    app.selectbox(key="sweep_p2").set_value("width").run()
    app.text_input(key="sweep_v2_width_False").set_value("4, 32").run()
    assert any(c.value == "4 runs." for c in app.caption)
    app.button(key="sweep_start").click().run()
    sweep = kept(app, "sweep")
    wait_done(sweep)
    app.run()
    assert not app.exception, [e.value for e in app.exception]
    spec = json.loads(next(c for c in app.get("plotly_chart") if c.proto.id.endswith("-sweep_result")).proto.spec)
    heat = spec["data"][0]
    assert heat["type"] == "heatmap" and heat["x"] == ["1e-05", "0.01"] and heat["y"] == ["4", "32"]
    assert len(table(app, "run")) == 4
    app.button(key="sweep_best").click().run()
    opened = session_of(app).experiment
    assert opened.train.lr == 0.01 and opened.train.epochs == 2
    assert opened.model.hidden[0] == sweep.best().model.hidden[0]
