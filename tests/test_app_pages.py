"""AppTest of the app shell and the Home, Data, Train and Runs pages, and of the state model
(dashboard.state): one experiment behind the form, runs kept as they train, a session
that survives a reload, the newest run as the default.

`run_every` never fires under AppTest, so the live view is polled by re-running the script.
"""

import http.server
import json
import re
import threading
import time
from pathlib import Path

import pytest
from idx_files import fake_mnist
from saved_runs import record
from streamlit.testing.v1 import AppTest
from waiting import wait_for

from dashboard import state
from digits_core.presets import ALL, CLASSIC

REPO = Path(__file__).resolve().parents[1]
APP = str(REPO / "streamlit_app.py")
# A deadline for one script run, not a goal: a page's first run imports torch, and with the
# machine's cores taken that alone has taken over a minute.
SCRIPT_S = 300
MY_PAGES = ["pages/1_Home.py", "pages/2_Data.py", "pages/3_Train.py", "pages/7_Runs.py"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own runs folder and an empty MNIST data home."""
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path / "data-home"))
    return tmp_path


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=SCRIPT_S)
    yield at
    runner = state.runner()
    for name in runner.active():
        runner.stop(name)
        runner.job(name).wait(10)


def session_of(at: AppTest) -> state.Session:
    return state._sessions()[at.session_state["sid"]]


def key(at: AppTest, name: str) -> str:
    """The Train form's widget key for `name` in the session's current form version."""
    return f"train_{name}_v{session_of(at).form_version}"


def on_page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def last_run(at: AppTest) -> str:
    return state.runner().owned(at.session_state["sid"])[-1]


def wait_for_run(at: AppTest, statuses: tuple[str, ...], timeout: float = 120) -> str:
    name = last_run(at)
    deadline = time.monotonic() + timeout
    while state.runner().history(name).status not in statuses:
        assert time.monotonic() < deadline, f"run still {state.runner().history(name).status}"
        time.sleep(0.1)
    job = state.runner().job(name)
    if job is not None and statuses[0] not in ("running", "loading"):
        job.wait(10)
    at.run()  # what the live fragment would show on its next tick
    assert not at.exception, [e.value for e in at.exception]
    return name


@pytest.fixture
def saved_run(tiny_job):
    """Save the session's tiny run (again) into a runs folder; returns the new folder."""
    return lambda runs: record(tiny_job, runs)


@pytest.mark.parametrize("page", MY_PAGES)
def test_every_page_renders(app, page):
    on_page(app, page)


def sidebar_text(at: AppTest) -> str:
    """The shared sidebar. AppTest drops what the entry script drew once `switch_page` was
    used (a real server keeps it on every page), so read it on the default page only."""
    return "\n".join(c.value for c in at.sidebar.caption)


def test_sidebar_shows_runs_and_data(app):
    app.run()
    text = sidebar_text(app)
    assert "No runs yet." in text and "Data: **digits**" in text
    assert len(app.session_state["sid"]) >= 8 and app.query_params["sid"] == [app.session_state["sid"]] or \
        app.query_params["sid"] == app.session_state["sid"]


def test_home_shows_the_grid_and_one_button_per_preset(app):
    on_page(app, "pages/1_Home.py")
    [grid] = [h.proto.body for h in app.get("html") if 'class="digit-grid"' in h.proto.body]
    assert 'src="data:image/png;base64,' in grid and "one row per label 0 to 9" in grid
    keys = {b.key for b in app.button}
    assert {"preset_fast", *(f"preset_{name}" for name in CLASSIC)} <= keys
    # MNIST is absent in this data home: MNIST presets are disabled and point to the Data page.
    assert app.button(key="preset_S2a").disabled and not app.button(key="preset_S1a").disabled
    assert any("Data page" in link.label for link in app.get("page_link"))


def test_a_preset_button_fills_the_train_page(app):
    on_page(app, "pages/1_Home.py")
    app.button(key="preset_fast").click().run()
    assert not app.exception
    assert session_of(app).experiment == ALL["fast"].build()
    assert app.radio(key=key(app, "family")).value == "cnn"
    assert app.number_input(key=key(app, "epochs")).value == 15
    assert not app.button(key="start").disabled


def test_data_page_stores_the_sessions_data_settings(app):
    on_page(app, "pages/2_Data.py")
    assert len(app.get("plotly_chart")) == 3  # samples, class distribution, mean images
    app.number_input(key="data_train_size").set_value(500).run()
    app.selectbox(key="data_split_digits").select("ordered").run()
    assert not app.exception and not app.error
    cfg = session_of(app).experiment.data
    assert (cfg.dataset, cfg.train_size, cfg.split) == ("digits", 500, "ordered")
    assert "500 training and 360 test images" in app.success[0].value
    app.number_input(key="data_train_size").set_value(5000).run()  # more than the 1,437 there are
    assert not app.exception and not app.error
    assert session_of(app).experiment.data.train_size is None  # all, as the page and sidebar say
    assert "1,437 training images, fewer than the 5,000 asked for" in app.info[0].value
    assert "1,437 training and 360 test images" in app.success[0].value
    assert any("all training images" in c.value for c in app.sidebar.caption)


def test_data_page_says_plainly_that_mnist_is_missing(app, isolated):
    on_page(app, "pages/2_Data.py")
    app.radio(key="data_dataset").set_value("mnist").run()
    assert not app.exception
    assert any("MNIST is not on this machine" in w.value for w in app.warning)
    assert app.button(key="data_download")
    assert session_of(app).experiment.data.dataset == "digits"  # unchanged until MNIST is here
    app.text_input(key="data_mnist_dir").input(str(isolated / "nowhere")).run()
    assert not app.exception
    assert any("does not exist" in e.value for e in app.error)


def test_a_custom_mnist_folder_is_known_to_every_page_and_remembered(app, isolated):
    folder = fake_mnist(isolated / "my-mnist")
    on_page(app, "pages/2_Data.py")
    app.radio(key="data_dataset").set_value("mnist").run()
    app.text_input(key="data_mnist_dir").input(str(folder)).run()
    assert not app.exception and not app.error
    assert "200 training and 100 test images of 28x28" in app.success[0].value
    cfg = session_of(app).experiment.data
    assert (cfg.dataset, cfg.split, cfg.mnist_dir) == ("mnist", "official", str(folder))
    app.switch_page("pages/1_Home.py").run()
    assert not app.button(key="preset_S2a").disabled  # Home knows the folder
    app.switch_page("pages/3_Train.py").run()
    app.selectbox(key="preset_pick").select("S4").run()
    exp = session_of(app).experiment
    assert exp.name == "S4" and exp.data.mnist_dir == str(folder)  # a preset keeps the folder
    assert not app.error and not app.button(key="start").disabled
    app.switch_page("pages/2_Data.py").run()
    assert app.text_input(key="data_mnist_dir").value == str(folder)
    settings = json.loads((isolated / "runs" / "settings.json").read_text())
    assert settings["mnist_dir"] == str(folder)  # and the next session starts with it
    fresh = AppTest.from_file(APP, default_timeout=SCRIPT_S).run()
    assert session_of(fresh).experiment.data.mnist_dir == str(folder)


def test_an_mnist_subset_outlives_a_digits_preset_in_between(app, isolated):
    """A class demo on 150 MNIST images, then a digits preset, then an MNIST one again: the
    MNIST preset trains on the 150 again (a subset is remembered per dataset)."""
    folder = fake_mnist(isolated / "my-mnist")
    on_page(app, "pages/2_Data.py")
    app.radio(key="data_dataset").set_value("mnist").run()
    app.text_input(key="data_mnist_dir").input(str(folder)).run()
    app.number_input(key="data_train_size").set_value(150).run()
    assert session_of(app).experiment.data.train_size == 150
    app.switch_page("pages/3_Train.py").run()
    app.selectbox(key="preset_pick").select("S1a").run()
    assert session_of(app).experiment.data.dataset == "digits"
    assert session_of(app).experiment.data.train_size is None  # digits: its own subset (none)
    app.selectbox(key="preset_pick").select("default-cnn").run()
    data = session_of(app).experiment.data
    assert (data.dataset, data.train_size, data.mnist_dir) == ("mnist", 150, str(folder))


def test_every_preset_fills_the_form_exactly_and_edits_keep_it(app):
    on_page(app, "pages/3_Train.py")
    app.number_input(key=key(app, "epochs")).set_value(7).run()
    for name, preset in ALL.items():
        app.selectbox(key="preset_pick").select(name).run()
        assert not app.exception
        want = preset.build()
        # What the widgets show rebuilds the preset, field for field...
        assert session_of(app).experiment == want, name
        assert app.radio(key=key(app, "family")).value == want.model.family, name
        # ...and editing one field changes that field only.
        app.number_input(key=key(app, "epochs")).set_value(want.train.epochs + 1).run()
        edited = session_of(app).experiment
        assert edited.name == f"{name} (edited)" and edited.model == want.model, name
        assert edited.train.epochs == want.train.epochs + 1 and edited.train.lr == want.train.lr


def test_weight_averaging_is_a_checkbox_the_numpy_mlp_cannot_tick(app):
    on_page(app, "pages/3_Train.py")
    app.selectbox(key="preset_pick").select("default-cnn").run()
    box = app.checkbox(key=key(app, "average"))
    assert box.value and session_of(app).experiment.train.weight_average == 0.98
    box.uncheck().run()
    assert session_of(app).experiment.train.weight_average == 0.0
    app.checkbox(key=key(app, "average")).check().run()
    assert session_of(app).experiment.train.weight_average == 0.98
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    assert app.checkbox(key=key(app, "average")).disabled
    assert session_of(app).experiment.train.weight_average == 0.0
    assert not app.exception


def test_train_page_trains_and_the_run_is_kept_as_it_trains(app, isolated):
    on_page(app, "pages/3_Train.py")
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    app.text_input(key=key(app, "hidden")).input("32").run()
    app.number_input(key=key(app, "epochs")).set_value(3).run()
    assert app.metric[0].label == "Parameters" and app.metric[0].value == "2,410"
    app.button(key="start").click().run()
    app.button(key="start").click().run()  # a double click is one run
    assert not app.exception
    folders = [p for p in (isolated / "runs").iterdir() if p.is_dir()]
    assert len(folders) == 1 and (folders[0] / "meta.json").is_file()  # a folder from the start
    name = wait_for_run(app, ("finished",))
    assert any("Finished 3 epochs" in s.value for s in app.success)
    assert any(m.value.startswith("test accuracy **") for m in app.markdown)  # the full test set's
    app.switch_page("pages/7_Runs.py").run()
    assert not app.exception
    table = app.dataframe[0].value
    assert table["status"].tolist() == ["finished"] and table["run"].tolist() == [name]
    app.switch_page("pages/3_Train.py").run()
    app.text_input(key=f"rename_{name}").input("Ada's first MLP").run()  # renamed in its callback
    assert not app.exception and not app.error
    info = next(i for i in state.all_runs() if i.name == name)
    assert info.label == "Ada's first MLP"
    app.switch_page("pages/7_Runs.py").run()
    [shown] = app.selectbox(key="runs_pick").options  # their run, as they see it listed
    assert shown.startswith("Ada's first MLP · digits · finished · test "), shown


def test_stop_shows_stopping_at_once_and_keeps_the_model(app):
    on_page(app, "pages/3_Train.py")
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    app.text_input(key=key(app, "hidden")).input("1024, 1024").run()
    app.number_input(key=key(app, "epochs")).set_value(1000).run()
    app.button(key="start").click().run()
    name = wait_for_run(app, ("running",))
    assert wait_for(lambda: state.runner().history(name).step > 0, 60)
    info = next(i for i in state.all_runs() if i.name == name)
    label, picker_label = state.run_label(info), state.run_label(info, live=False)
    app.run()  # the live panel, as its next poll draws it
    assert wait_for(lambda: state.runner().history(name).probe_test_acc, 60)
    app.run()
    assert any(m.value.startswith("live test accuracy **") and "subset" in m.value for m in app.markdown)
    assert " · digits · running " in label and label.endswith("%"), label  # its progress, from memory
    assert picker_label.endswith(" · digits · running"), picker_label  # a picker's would go stale
    # The run belongs to the server: it keeps training while another page is shown.
    app.switch_page("pages/2_Data.py").run()
    app.switch_page("pages/3_Train.py").run()
    assert not app.exception and state.runner().history(name).status == "running"
    app.button(key=f"stop_{name}").click().run()
    assert state.runner().history(name).status in ("stopping", "stopped")
    wait_for_run(app, ("stopped",))
    assert "stopped by the user" in state.runner().history(name).message
    assert any("Stopped" in i.value for i in app.info)
    assert app.button(key=f"continue_{name}")  # a stopped run keeps its model and can go on
    assert " · stopped · test " in state.run_label(next(i for i in state.all_runs() if i.name == name))


def test_a_queued_run_shows_its_place_then_runs_when_a_slot_frees(app, monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_JOBS", "1")  # this test's runs folder gets a new runner
    on_page(app, "pages/3_Train.py")
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    app.number_input(key=key(app, "epochs")).set_value(1000).run()
    app.button(key="start").click().run()
    first = wait_for_run(app, ("running",))
    app.number_input(key=key(app, "epochs")).set_value(999).run()
    app.button(key="start").click().run()
    second = last_run(app)
    assert second != first and state.runner().history(second).status == "queued"
    [bar] = app.get("progress")
    assert "**Queued** · number 1 in line" in bar.proto.text, bar.proto.text
    state.runner().stop(first)
    wait_for_run(app, ("running",))
    app.run()
    assert not app.exception
    [bar] = app.get("progress")
    assert bar.proto.text.startswith("**Running** · epoch"), bar.proto.text
    state.runner().stop(second)


@pytest.mark.parametrize(
    "widths, message",
    [("12, abc", "positive whole numbers"), ("4096, 4096, 4096", "over the cap")],
)
def test_bad_hidden_widths_show_an_error_and_disable_start(app, widths, message):
    on_page(app, "pages/3_Train.py")
    app.text_input(key=key(app, "hidden")).input(widths).run()
    assert not app.exception
    assert any(message in e.value for e in app.error)
    assert app.button(key="start").disabled


@pytest.mark.parametrize(
    "field, value, message",
    [("epochs", 0, "epochs must be 1..1000, got 0"), ("batch", 99999, "batch size must be 1..8192"),
     ("l2", 5.0, "L2 must be 0..1"), ("seed", -1, "seed must be")],
)
def test_numbers_out_of_range_show_an_error_and_disable_start(app, field, value, message):
    """The widgets take any number (a bounded one would keep an out-of-range entry to itself,
    and Start would train its last valid value): the config's checks say what is allowed."""
    on_page(app, "pages/3_Train.py")
    app.number_input(key=key(app, field)).set_value(value).run()
    assert not app.exception
    assert any(message in e.value for e in app.error), [e.value for e in app.error]
    assert app.button(key="start").disabled
    app.number_input(key=key(app, field)).set_value({"epochs": 2, "batch": 32, "l2": 0.0, "seed": 1}[field]).run()
    assert not app.error and not app.button(key="start").disabled


def test_every_problem_of_the_form_is_shown_at_once(app):
    """Bad widths, a negative seed, absurd epochs and a batch of 0 together: four lines, not
    one round at a time."""
    on_page(app, "pages/3_Train.py")
    app.text_input(key=key(app, "hidden")).input("abc, -5")
    app.number_input(key=key(app, "epochs")).set_value(99999999)
    app.number_input(key=key(app, "batch")).set_value(0)
    app.number_input(key=key(app, "seed")).set_value(-7).run()
    assert not app.exception
    [error] = [e.value for e in app.error]
    lines = error.splitlines()
    assert len(lines) == 4 and all(line.startswith("- ") for line in lines), error
    assert "abc" in lines[0] and "seed must be" in lines[1]
    assert "epochs must be 1..1000" in lines[2] and "batch size must be" in lines[3]
    assert app.button(key="start").disabled
    assert app.metric[0].value == "—"  # no parameter count for settings that cannot train


def test_runs_page_lists_broken_runs_opens_and_deletes(app, isolated, saved_run):
    runs = isolated / "runs"
    good = saved_run(runs)
    (runs / "half-written").mkdir()
    (runs / "half-written" / "experiment.json").write_text("{}")
    on_page(app, "pages/7_Runs.py")
    table = app.dataframe[0].value
    status = dict(zip(table["run"], table["status"]))
    assert status[good.name] == "finished"
    assert status["half-written"] == "broken: meta.json is missing"

    app.selectbox(key="runs_pick").select("half-written").run()
    assert not app.exception
    assert any("This run is broken" in e.value for e in app.error)

    app.selectbox(key="runs_pick").select(good.name).run()
    app.button(key="runs_open").click().run()
    assert not app.exception and session_of(app).chosen_run == good.name
    assert len(app.get("plotly_chart")) == 2  # the compare charts, of the newest runs

    assert app.button(key="runs_delete").disabled
    app.checkbox(key=f"runs_sure_{good.name}").check().run()
    app.button(key="runs_delete").click().run()
    assert not app.exception
    assert not good.exists() and (runs / "half-written").exists()


def pick_page():
    import streamlit as st

    from dashboard import state

    info = state.pick_run("Model")
    st.write(f"picked {None if info is None else info.name}")


def test_pick_run_opens_on_the_newest_run_unless_one_was_chosen(isolated, saved_run):
    at = AppTest.from_function(pick_page, default_timeout=SCRIPT_S).run()
    assert [m.value for m in at.markdown] == ["picked None"]
    first = saved_run(isolated / "runs")
    at.run()
    assert [m.value for m in at.markdown] == [f"picked {first.name}"]
    second = saved_run(isolated / "runs")
    at.run()
    assert [m.value for m in at.markdown] == [f"picked {second.name}"]  # follows the newest
    at.selectbox(key=f"pick_run_{second.name}").select(first.name).run()
    third = saved_run(isolated / "runs")
    at.run()
    assert [m.value for m in at.markdown] == [f"picked {first.name}"]  # the choice sticks
    assert third.exists()


def moving_labels_page():
    import streamlit as st

    from dashboard import state

    n = st.session_state["n"] = st.session_state.get("n", 0) + 1
    labels = {"a": "a · finished", "b": f"b · running {n} %", "c": "c · finished"}
    for key in ("pick", "many"):  # what Streamlit hands over for a label it no longer shows
        if f"sent_{key}" in st.session_state:
            st.session_state[key] = st.session_state.pop(f"sent_{key}")
    state.keep_choice("pick", labels)
    state.keep_choice("many", labels)
    one = st.selectbox("pick", list(labels), key="pick", format_func=labels.get)
    many = st.multiselect("many", list(labels), key="many", format_func=labels.get)
    st.write(f"picked {one} {many}")


def test_a_choice_survives_its_label_changing():
    """The browser sends a picker's choice back as the label it showed when it was chosen
    (a real browser: tests/browser/test_journeys.py); AppTest sends the value, so the page
    writes the old label into the picker's state, as Streamlit hands it over when it no
    longer matches any option."""
    at = AppTest.from_function(moving_labels_page, default_timeout=SCRIPT_S).run()
    at.selectbox(key="pick").select("b")
    at.multiselect(key="many").select("b").select("c")
    at.run()
    assert at.markdown[0].value == "picked b ['b', 'c']"
    at.session_state["sent_pick"] = "b · running 2 %"  # shown at run 2; this is run 3
    at.session_state["sent_many"] = ["b · running 2 %", "c · finished", "gone · finished"]
    at.run()
    assert at.markdown[0].value == "picked b ['b', 'c']"
    assert at.selectbox(key="pick").value == "b" and at.session_state["pick"] == "b"
    assert len(at.session_state["_labels_pick"]) == 5  # a, c and b's label at each run


def test_a_reload_finds_the_same_session_and_its_running_run(app):
    on_page(app, "pages/3_Train.py")
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    app.number_input(key=key(app, "epochs")).set_value(1000).run()
    app.button(key="start").click().run()
    name = wait_for_run(app, ("running",))
    sid = app.session_state["sid"]
    reloaded = AppTest.from_file(APP, default_timeout=SCRIPT_S)
    reloaded.query_params["sid"] = sid  # F5 keeps the URL
    reloaded.run()
    reloaded.switch_page("pages/3_Train.py").run()
    assert not reloaded.exception
    assert reloaded.session_state["sid"] == sid
    assert reloaded.session_state["train_view"] == name
    assert reloaded.number_input(key=key(reloaded, "epochs")).value == 1000  # the form too
    assert reloaded.button(key=f"stop_{name}")
    step = state.runner().history(name).step
    assert wait_for_run_progress(name, step)


def wait_for_run_progress(name: str, step: int, timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while state.runner().history(name).step <= step:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_served_to_a_class_the_data_page_offers_folders_and_shows_no_server_paths(app, isolated,
                                                                                  monkeypatch):
    folder = fake_mnist(isolated / "class-data")
    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    monkeypatch.setenv("DIGITLAB_DATA_DIRS", str(folder))
    on_page(app, "pages/2_Data.py")
    app.radio(key="data_dataset").set_value("mnist").run()
    assert not app.exception
    assert not [t for t in app.text_input if t.key == "data_mnist_dir"]  # no free-text path
    box = app.selectbox(key="data_mnist_choice")
    assert box.options == ["class-data", "mnist"] and box.value == "mnist"
    box.select("class-data").run()
    assert not app.exception and "200 training and 100 test images" in app.success[0].value
    shown = " ".join(str(e.value) for kind in ("markdown", "caption", "code", "success", "warning",
                                                "error", "info") for e in app.get(kind))
    assert str(isolated) not in shown and "/root" not in shown and "/home" not in shown


def test_label_smoothing_is_a_number_for_the_torch_models_only(app):
    on_page(app, "pages/3_Train.py")
    app.selectbox(key="preset_pick").select("default-cnn").run()
    box = app.number_input(key=key(app, "smoothing"))
    assert box.value == 0.1 and not box.disabled
    box.set_value(0.2).run()
    assert session_of(app).experiment.train.label_smoothing == 0.2
    app.number_input(key=key(app, "smoothing")).set_value(0.9).run()
    assert any("label smoothing must be 0..0.5" in e.value for e in app.error), [e.value for e in app.error]
    assert app.button(key="start").disabled
    app.number_input(key=key(app, "smoothing")).set_value(0.1).run()
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    assert app.number_input(key=key(app, "smoothing")).disabled
    assert session_of(app).experiment.train.label_smoothing == 0.0
    assert not app.exception  # (MNIST is not here: that error stays; none about smoothing)
    assert not any("label smoothing must" in e.value for e in app.error), [e.value for e in app.error]


def test_a_diverged_run_is_not_continued_and_its_model_is_flagged(app):
    """Its loss blew up: the Train page offers no Continue (the runner refuses it too) and
    says what to do; the analysis pages warn that its model reads like a guess."""
    from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
    from digits_core.errors import RunError

    on_page(app, "pages/3_Train.py")
    runner = state.runner()
    exp = Experiment(DataConfig(), ModelConfig(family="numpy-mlp", hidden=[32]),
                     TrainConfig(epochs=3, lr=1.0, optimizer="sgd", loss_reduction="sum"), name="hot")
    name = runner.start(exp, owner=app.session_state["sid"])
    assert runner.job(name).wait(30) and runner.history(name).status == "diverged"
    app.run()
    assert not app.exception and app.session_state["train_view"] == name
    assert not [b for b in app.button if b.key == f"continue_{name}"]
    assert any("not continued" in c.value for c in app.caption)
    with pytest.raises(RunError, match="diverged"):
        runner.continue_run(name, 1, owner=app.session_state["sid"])
    app.switch_page("pages/4_Evaluate.py").run()
    assert not app.exception
    assert any("diverged" in w.value for w in app.warning)


def test_the_confusion_matrix_is_legible_at_a_projector(app, isolated, saved_run):
    """Presenter mode: the counts in the cells, the digits and the axis titles at 18 px."""
    saved_run(isolated / "runs")

    def sizes() -> set:
        [chart] = [c for c in app.get("plotly_chart") if c.proto.id.endswith("-confusion_chart")]
        spec = json.loads(chart.proto.spec)
        layout = spec["layout"]
        return {spec["data"][0]["textfont"]["size"],
                *(layout[a]["tickfont"]["size"] for a in ("xaxis", "yaxis")),
                *(layout[a]["title"]["font"]["size"] for a in ("xaxis", "yaxis"))}

    on_page(app, "pages/4_Evaluate.py")
    assert sizes() == {13}
    app.toggle(key="presenter").set_value(True).run()
    assert not app.exception
    assert sizes() == {18}


def test_evaluate_opens_each_model_on_its_own_most_confused_cell(app, isolated, saved_run):
    """A cell picked for one model does not stay picked for the next one chosen."""
    first = saved_run(isolated / "runs")
    second = saved_run(isolated / "runs")
    on_page(app, "pages/4_Evaluate.py")
    worst = (app.selectbox(key="cell_true").value, app.selectbox(key="cell_pred").value)
    assert worst[0] != worst[1]  # a mistake: the model's most confused pair
    app.selectbox(key="cell_true").select(0)
    app.selectbox(key="cell_pred").select(0).run()
    assert (app.selectbox(key="cell_true").value, app.selectbox(key="cell_pred").value) == (0, 0)
    app.selectbox(key=f"pick_run_{second.name}").select(first.name).run()
    assert not app.exception
    assert (app.selectbox(key="cell_true").value, app.selectbox(key="cell_pred").value) == worst


def own(app: AppTest, *runs: Path) -> None:
    """Make saved runs this session's person's (as if they had started them)."""
    for run in runs:
        meta = json.loads((run / "meta.json").read_text())
        meta["owner"] = app.session_state["sid"]
        (run / "meta.json").write_text(json.dumps(meta))


def test_choices_are_found_again_after_another_page(app, isolated, saved_run):
    """The run shown on Train, the runs compared on Runs and the cell picked on Evaluate are
    as the person left them after a visit to another page (Streamlit drops the state of
    widgets a page does not draw); the run picked on Train is the one Evaluate opens on."""
    older, newer = saved_run(isolated / "runs"), saved_run(isolated / "runs")
    on_page(app, "pages/3_Train.py")
    own(app, older, newer)
    app.run()
    assert app.session_state["train_view"] == newer.name
    app.selectbox(key="train_view").select(older.name).run()
    app.switch_page("pages/2_Data.py").run()
    app.switch_page("pages/3_Train.py").run()
    assert not app.exception and app.selectbox(key="train_view").value == older.name
    app.switch_page("pages/4_Evaluate.py").run()
    assert app.selectbox(key=f"pick_run_{older.name}").value == older.name  # followed Train
    app.selectbox(key="cell_true").select(2)
    app.selectbox(key="cell_pred").select(7).run()
    app.switch_page("pages/7_Runs.py").run()
    app.multiselect(key="runs_compare").unselect(newer.name).run()
    assert app.multiselect(key="runs_compare").value == [older.name]
    app.switch_page("pages/4_Evaluate.py").run()
    assert (app.selectbox(key="cell_true").value, app.selectbox(key="cell_pred").value) == (2, 7)
    app.switch_page("pages/7_Runs.py").run()
    assert not app.exception and app.multiselect(key="runs_compare").value == [older.name]


def test_the_sidebar_lists_the_newest_runs_and_counts_the_others(app, isolated, saved_run):
    on_page(app, "pages/2_Data.py")
    own(app, *(saved_run(isolated / "runs") for _ in range(8)))
    app.run()
    captions = [c.value for c in app.sidebar.caption]
    assert sum(" · digits · finished" in c for c in captions) == 6
    assert "…and 2 older on the Runs page" in captions


def test_evaluate_it_opens_the_run_shown_on_train(app, isolated, saved_run):
    older, newer = saved_run(isolated / "runs"), saved_run(isolated / "runs")
    on_page(app, "pages/3_Train.py")
    own(app, older, newer)
    app.run()
    app.selectbox(key="train_view").select(older.name).run()
    session_of(app).chosen_run = None  # only the button decides here
    app.button(key=f"to_evaluate_{older.name}").click().run()
    assert not app.exception
    assert app.selectbox(key=f"pick_run_{older.name}").value == older.name


# ------------------------------------------------------------------ the README's promises


def long_numpy_run(app: AppTest, epochs: int) -> None:
    """Fill the form for a NumPy MLP run on the digits that outlasts any test, and press Start."""
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    app.number_input(key=key(app, "epochs")).set_value(epochs).run()
    app.button(key="start").click().run()


def test_a_person_trains_at_most_jobs_per_session_runs_at_once(app, monkeypatch):
    monkeypatch.setenv("DIGITLAB_JOBS_PER_SESSION", "1")  # this test's runs folder: a new runner
    on_page(app, "pages/3_Train.py")
    long_numpy_run(app, 1000)
    first = wait_for_run(app, ("running",))
    long_numpy_run(app, 999)  # other settings: not a double click
    assert not app.exception
    assert any("you already have 1 run training" in e.value for e in app.error), [e.value for e in app.error]
    assert state.runner().owned(app.session_state["sid"]) == [first]  # no second run, not even queued
    state.runner().stop(first)


def test_a_run_over_the_memory_limit_is_refused_on_the_train_page_with_its_estimate(app, monkeypatch):
    on_page(app, "pages/3_Train.py")
    assert not app.button(key="start").disabled, [e.value for e in app.error]  # within the default limit
    monkeypatch.setenv("DIGITLAB_MAX_MEMORY_MB", "1")
    app.run()
    assert not app.exception
    [error] = [e.value for e in app.error]
    assert re.fullmatch(r"this run would need about [\d,]+ MB of memory, over the limit of 1 MB; .+", error), error
    assert app.button(key="start").disabled and not state.runner().owned(app.session_state["sid"])


def test_the_data_pages_split_normalisation_and_seed_are_what_the_run_trains_on(app, isolated):
    on_page(app, "pages/2_Data.py")
    app.selectbox(key="data_split_digits").select("ordered").run()
    app.selectbox(key="data_normalization").select("standardize").run()
    app.number_input(key="data_seed").set_value(7).run()
    assert not app.exception and not app.error
    app.switch_page("pages/3_Train.py").run()
    assert "digits**, ordered split, all training images, standardize pixels, seed 7." in " ".join(
        c.value for c in app.caption)
    app.radio(key=key(app, "family")).set_value("numpy-mlp").run()
    app.number_input(key=key(app, "epochs")).set_value(1).run()
    app.button(key="start").click().run()
    name = wait_for_run(app, ("finished",))
    data = json.loads((isolated / "runs" / name / "experiment.json").read_text())["data"]
    assert (data["split"], data["normalization"], data["seed"]) == ("ordered", "standardize", 7)


def test_train_again_with_these_settings_fills_the_train_page_with_that_runs_settings(app, isolated, saved_run,
                                                                                    tiny_job):
    run = saved_run(isolated / "runs")
    on_page(app, "pages/3_Train.py")
    app.number_input(key=key(app, "epochs")).set_value(42).run()  # something else on the form first
    app.switch_page("pages/7_Runs.py").run()
    app.selectbox(key="runs_pick").select(run.name).run()
    app.button(key="runs_again_btn").click().run()
    assert not app.exception
    assert any("Its settings are on the Train page" in link.label for link in app.get("page_link"))
    app.switch_page("pages/3_Train.py").run()
    assert not app.exception
    want = tiny_job.experiment
    assert app.radio(key=key(app, "family")).value == want.model.family
    assert app.number_input(key=key(app, "epochs")).value == want.train.epochs != 42
    got = session_of(app).experiment
    assert (got.model, got.train, got.data) == (want.model, want.train, want.data)


def everything_shown(at: AppTest) -> str:
    """The protobuf text of every element the script drew (text, tables, charts, JSON)."""
    seen, todo = [], [at._tree]
    while todo:
        node = todo.pop()
        todo.extend(getattr(node, "children", {}).values())
        proto = getattr(node, "proto", None)
        if proto is not None:
            seen.append(str(proto))
    return "\n".join(seen)


def test_served_to_a_class_no_page_shows_an_absolute_server_path(app, isolated, saved_run, monkeypatch):
    folder = fake_mnist(isolated / "class-data")
    monkeypatch.setenv("DIGITLAB_PUBLIC", "1")
    monkeypatch.setenv("DIGITLAB_DATA_DIRS", str(folder))
    run = saved_run(isolated / "runs")
    secrets = [str(isolated), str(REPO), str(Path.home()), "/root", "/home/"]
    pages = sorted(p.name for p in (REPO / "pages").glob("*.py"))
    app_source = (REPO / "streamlit_app.py").read_text()
    assert all(f'"pages/{page}"' in app_source for page in pages)  # every page the app serves
    for page in pages:
        on_page(app, f"pages/{page}")
        if page == "2_Data.py":
            app.radio(key="data_dataset").set_value("mnist").run()
        if page == "7_Runs.py":
            app.selectbox(key="runs_pick").select(run.name).run()
        assert not app.exception, page
        shown = everything_shown(app)
        # drawn with the run (pages that show no saved run: the run-free ones)
        assert run.name in shown or page in ("1_Home.py", "2_Data.py", "3_Train.py", "8_Backprop.py", "10_Drawings.py",
                                             "11_Compare.py"), page
        leaked = [s for s in secrets if s in shown]
        assert not leaked, (page, leaked)


def test_the_data_page_downloads_mnist_from_a_mirror_and_then_uses_it(app, isolated, mnist_dir, monkeypatch):
    """The Download button against a real HTTP server on 127.0.0.1 that serves the original
    files (the app's own mirrors, swapped for it: the test machine is offline)."""
    from dashboard import mnist_panel
    from digits_core.data.mnist import fetch_mnist

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(mnist_dir), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        local = (f"http://127.0.0.1:{server.server_port}/",)
        monkeypatch.setattr(mnist_panel, "fetch_mnist",
                            lambda **kw: fetch_mnist(mirrors=local, timeout=30, **kw))
        on_page(app, "pages/2_Data.py")
        app.radio(key="data_dataset").set_value("mnist").run()
        assert any("MNIST is not on this machine" in w.value for w in app.warning)
        app.button(key="data_download").click().run(timeout=300)
    finally:
        server.shutdown()
        server.server_close()
    assert not app.exception and not app.error, [e.value for e in app.error]
    cache = isolated / "data-home" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(p.name for p in mnist_dir.glob("*-ubyte.gz"))
    assert not any("MNIST is not on this machine" in w.value for w in app.warning)
    assert session_of(app).experiment.data.dataset == "mnist"
    assert "60,000 training and 10,000 test images" in app.success[0].value


def test_a_shared_link_fills_the_form_and_starts_nothing(app):
    from digits_core.serve.links import experiment_link

    want = ALL["S1b"].build()
    on_page(app, "pages/3_Train.py")
    link = next(c.value for c in app.code if "?exp=" in c.value)
    assert experiment_link(session_of(app).experiment) in link  # the form's own experiment
    app.query_params["exp"] = experiment_link(want)
    app.run()
    assert not app.exception and not app.error
    assert session_of(app).experiment == want
    assert app.number_input(key=key(app, "epochs")).value == want.train.epochs
    assert any("filled from the link" in s.value for s in app.success)
    assert "exp" not in app.query_params  # a reload keeps the person's edits
    assert not state.runner().owned(app.session_state["sid"])  # nothing started


def test_a_bad_link_is_refused_in_one_line_and_the_form_kept(app):
    on_page(app, "pages/3_Train.py")
    before = session_of(app).experiment
    app.query_params["exp"] = "eyJ0cmFpbiI6eyJsciI6LTF9fQ"  # {"train":{"lr":-1}}
    app.run()
    assert [e.value.count("\n") for e in app.error] == [0]
    assert "not used" in app.error[0].value and "learning rate" in app.error[0].value
    assert session_of(app).experiment == before


def test_the_s4_preset_turns_its_live_tsne_on(app, isolated):
    """S4 is the live-embedding demo: choosing it ticks Live t-SNE, and Home's button too."""
    folder = fake_mnist(isolated / "my-mnist")
    on_page(app, "pages/2_Data.py")
    app.radio(key="data_dataset").set_value("mnist").run()
    app.text_input(key="data_mnist_dir").input(str(folder)).run()
    app.switch_page("pages/3_Train.py").run()
    app.selectbox(key="preset_pick").select("S4").run()
    assert app.checkbox(key=key(app, "live")).value
    assert session_of(app).experiment.train.live_embedding
    app.selectbox(key="preset_pick").select("default-cnn").run()
    assert not app.checkbox(key=key(app, "live")).value
    app.switch_page("pages/1_Home.py").run()
    app.button(key="preset_S4").click().run()
    assert session_of(app).experiment.train.live_embedding


def test_runs_of_different_losses_are_compared_relative_to_their_start(app, isolated, saved_run):
    """A cross-entropy run beside a summed squared error (S1a's ~80): one axis drew the first
    flat at 0, so each is drawn over its own start, said on the chart and beside it; the
    x-axis can be images seen (steps x batch) or time as well as epochs."""
    from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
    from digits_core.training.jobs import run_experiment

    summed = run_experiment(Experiment(DataConfig(), ModelConfig(family="numpy-mlp", hidden=[16]),
                                       TrainConfig(epochs=1, loss="mse-softmax", loss_reduction="sum",
                                                   batch_size=20, lr=0.01), name="summed"))
    record(summed, isolated / "runs")
    saved_run(isolated / "runs")
    on_page(app, "pages/7_Runs.py")
    assert len(app.multiselect(key="runs_compare").value) == 2
    view = app.radio(key="runs_loss_view_True")
    assert view.value == "relative to each run's start"
    assert any("different kinds or scales" in c.value for c in app.caption)
    loss = json.loads(app.get("plotly_chart")[1].proto.spec)
    assert "start" in loss["layout"]["yaxis"]["title"]["text"]
    app.radio(key="runs_x").set_value("images").run()
    loss = json.loads(app.get("plotly_chart")[1].proto.spec)
    assert loss["layout"]["xaxis"]["title"]["text"] == "images seen"
    app.radio(key="runs_x").set_value("time").run()
    assert not app.exception
