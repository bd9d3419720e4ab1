"""AppTest of the app shell and the Home, Data, Train and Runs pages, plus pages/_shared.

`run_every` never fires under AppTest, so the live view is polled by re-running the script.
"""

import gzip
import time
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.mnist import MNIST_FILES
from digits_core.presets import ALL, CLASSIC
from digits_core.runs import save_run
from digits_core.jobs import run_experiment

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")
MY_PAGES = ["pages/1_Home.py", "pages/2_Data.py", "pages/3_Train.py", "pages/7_Runs.py"]


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Every test gets its own runs folder and an empty MNIST data home."""
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path / "data-home"))
    return tmp_path


@pytest.fixture
def app():
    at = AppTest.from_file(APP, default_timeout=60)
    yield at
    for job in at.session_state["jobs"].values() if "jobs" in at.session_state else []:
        job.stop()
        job.wait(10)


def on_page(at: AppTest, page: str) -> AppTest:
    at.run()
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def wait_for_job(at: AppTest, statuses: tuple[str, ...], timeout: float = 40):
    job = list(at.session_state["jobs"].values())[-1]
    deadline = time.monotonic() + timeout
    while job.snapshot().status not in statuses:
        assert time.monotonic() < deadline, f"job still {job.snapshot().status}"
        time.sleep(0.2)
    at.run()  # what the live fragment would show on its next tick
    assert not at.exception, [e.value for e in at.exception]
    return job


def tiny_job():
    exp = Experiment(
        data=DataConfig(dataset="digits"),
        model=ModelConfig(family="numpy-mlp", hidden=[16]),
        train=TrainConfig(epochs=2),
        name="tiny",
    )
    return run_experiment(exp)


def saved_run(runs: Path) -> Path:
    return save_run(tiny_job(), runs)


@pytest.mark.parametrize("page", MY_PAGES)
def test_every_page_renders(app, page):
    on_page(app, page)


def sidebar_text(at: AppTest) -> str:
    """The shared sidebar. AppTest drops what the entry script drew once `switch_page` was
    used (a real server keeps it on every page), so read it on the default page only."""
    return "\n".join(c.value for c in at.sidebar.caption)


def test_sidebar_shows_jobs_data_and_runs_folder(app, isolated):
    app.run()
    text = sidebar_text(app)
    assert "No training jobs yet." in text
    assert "Data: **digits**" in text
    assert str((isolated / "runs").resolve()) in text


def test_home_shows_the_grid_and_one_button_per_preset(app):
    on_page(app, "pages/1_Home.py")
    assert app.get("plotly_chart"), "the sample grid is missing"
    keys = {b.key for b in app.button}
    assert {"preset_fast", *(f"preset_{name}" for name in CLASSIC)} <= keys
    # MNIST is absent in this data home: MNIST presets are disabled and point to the Data page.
    assert app.button(key="preset_S2a").disabled and not app.button(key="preset_S1a").disabled
    assert any("Data page" in link.label for link in app.get("page_link"))


def test_a_preset_button_fills_the_train_page(app):
    on_page(app, "pages/1_Home.py")
    app.button(key="preset_fast").click().run()
    assert not app.exception
    assert app.session_state["experiment"].name == "fast"
    assert app.radio(key="train_family").value == "cnn"
    assert app.number_input(key="train_epochs").value == 15
    assert not app.button(key="start").disabled


def test_data_page_stores_the_sessions_data_settings(app):
    on_page(app, "pages/2_Data.py")
    assert len(app.get("plotly_chart")) == 3  # samples, class distribution, mean images
    app.number_input(key="data_train_size").set_value(500).run()
    app.selectbox(key="data_split_digits").select("ordered").run()
    assert not app.exception and not app.error
    cfg = app.session_state["data_config"]
    assert (cfg.dataset, cfg.train_size, cfg.split) == ("digits", 500, "ordered")
    assert "500 training and 360 test images" in app.success[0].value


def test_data_page_says_plainly_that_mnist_is_missing(app, isolated):
    on_page(app, "pages/2_Data.py")
    app.radio(key="data_dataset").set_value("mnist").run()
    assert not app.exception
    assert any("MNIST is not on this machine" in w.value for w in app.warning)
    assert str(isolated / "data-home" / "mnist") in [c.value for c in app.code]
    assert app.button(key="data_download")
    assert app.session_state["data_config"].dataset == "digits"  # unchanged until MNIST is here
    app.text_input(key="data_mnist_dir").input(str(isolated / "nowhere")).run()
    assert not app.exception
    assert any("does not exist" in e.value for e in app.error)


def fake_mnist(folder: Path, n_train: int = 200, n_test: int = 100) -> Path:
    """Four small IDX files with MNIST's names and format (random 28x28 images)."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for split, n in (("train", n_train), ("test", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        header = lambda magic, *dims: b"".join(int(v).to_bytes(4, "big") for v in (magic, *dims))
        for key, payload in (
            (f"{split}-images", header(2051, n, 28, 28) + images.tobytes()),
            (f"{split}-labels", header(2049, n) + labels.tobytes()),
        ):
            (folder / MNIST_FILES[key][0]).write_bytes(gzip.compress(payload))
    return folder


def test_data_page_uses_a_custom_mnist_folder(app, isolated):
    folder = fake_mnist(isolated / "my-mnist")
    on_page(app, "pages/2_Data.py")
    app.radio(key="data_dataset").set_value("mnist").run()
    app.text_input(key="data_mnist_dir").input(str(folder)).run()
    assert not app.exception and not app.error
    assert "200 training and 100 test images of 28x28" in app.success[0].value
    cfg = app.session_state["data_config"]
    assert (cfg.dataset, cfg.split, cfg.mnist_dir) == ("mnist", "official", str(folder))
    app.switch_page("pages/3_Train.py").run()
    assert app.session_state["experiment"].data == cfg  # the Train page trains on it
    assert not app.error and not app.button(key="start").disabled


def test_every_preset_fills_the_form_exactly(app):
    on_page(app, "pages/3_Train.py")
    app.number_input(key="train_epochs").set_value(7).run()
    for name, preset in ALL.items():
        app.selectbox(key="preset_pick").select(name).run()
        assert not app.exception
        # What the widgets show rebuilds the preset, field for field.
        assert app.session_state["experiment"] == preset.build(), name
    app.number_input(key="train_epochs").set_value(7).run()
    assert app.session_state["experiment"].name == f"{list(ALL)[-1]} (edited)"


def test_train_page_trains_saves_and_lists_a_run(app, isolated):
    on_page(app, "pages/3_Train.py")
    app.radio(key="train_family").set_value("numpy-mlp").run()
    app.text_input(key="train_hidden").input("32").run()
    app.number_input(key="train_epochs").set_value(3).run()
    assert app.metric[0].label == "Parameters" and app.metric[0].value == "2,410"
    app.button(key="start").click().run()
    assert not app.exception
    wait_for_job(app, ("finished",))
    metrics = {m.label: m.value for m in app.metric}
    assert metrics["Test accuracy"].endswith("%") and float(metrics["Test accuracy"][:-1]) > 80
    fresh = AppTest.from_file(APP, default_timeout=60)
    fresh.session_state["jobs"] = app.session_state["jobs"]
    assert "finished, test" in sidebar_text(fresh.run())

    app.button(key="save_run").click().run()
    assert not app.exception
    assert any("Saved to" in s.value for s in app.success)
    assert len(list((isolated / "runs").iterdir())) == 1

    app.switch_page("pages/7_Runs.py").run()
    assert not app.exception
    assert app.dataframe[0].value["status"].tolist() == ["finished"]


def test_stop_from_the_live_view(app):
    on_page(app, "pages/3_Train.py")
    app.radio(key="train_family").set_value("numpy-mlp").run()
    app.text_input(key="train_hidden").input("1024, 1024").run()
    app.number_input(key="train_epochs").set_value(1000).run()
    app.button(key="start").click().run()
    job = wait_for_job(app, ("running",))
    # The job lives in the session: it keeps training while another page is shown.
    app.switch_page("pages/2_Data.py").run()
    app.switch_page("pages/3_Train.py").run()
    assert not app.exception and job.snapshot().status == "running"
    assert app.selectbox(key="job_view").value == job.id
    app.button(key="stop_job").click().run()
    job = wait_for_job(app, ("stopped",), timeout=10)
    assert "stopped by the user" in job.snapshot().message
    assert any("Stopped" in i.value for i in app.info)
    assert app.button(key="save_run")  # a stopped run keeps its model and can be saved


@pytest.mark.parametrize(
    "widths, message",
    [("12, abc", "positive whole numbers"), ("4096, 4096, 4096", "over the cap")],
)
def test_bad_hidden_widths_show_an_error_and_disable_start(app, widths, message):
    on_page(app, "pages/3_Train.py")
    app.text_input(key="train_hidden").input(widths).run()
    assert not app.exception
    assert any(message in e.value for e in app.error)
    assert app.button(key="start").disabled


def test_runs_page_lists_broken_runs_and_loads_a_good_one(app, isolated):
    runs = isolated / "runs"
    good = saved_run(runs)
    (runs / "half-written").mkdir()
    (runs / "half-written" / "experiment.json").write_text("{}")
    on_page(app, "pages/7_Runs.py")
    table = app.dataframe[0].value
    status = dict(zip(table["run"], table["status"]))
    assert status[good.name] == "finished"
    assert status["half-written"].startswith("broken: incomplete: missing meta.json")

    app.selectbox(key="runs_pick").select("half-written").run()
    assert not app.exception
    assert any("This run is broken" in e.value for e in app.error)

    app.selectbox(key="runs_pick").select(good.name).run()
    app.button(key="runs_load").click().run()
    assert not app.exception
    assert good.name in app.session_state["loaded_runs"]
    assert app.session_state["selected_run"] == good.name

    app.multiselect(key="runs_compare").select(good.name).run()
    assert not app.exception and len(app.get("plotly_chart")) == 2

    assert app.button(key="runs_delete").disabled
    app.checkbox(key=f"runs_sure_{good.name}").check().run()
    app.button(key="runs_delete").click().run()
    assert not app.exception
    assert not good.exists() and (runs / "half-written").exists()


def pick_page():
    import streamlit as st

    from pages import _shared

    run = _shared.pick_run("Model", key="probe_pick")
    st.write("picked", None if run is None else run.experiment.name)


def test_pick_run_offers_the_sessions_models(isolated):
    from digits_core.runs import load_run
    from pages import _shared

    at = AppTest.from_function(pick_page, default_timeout=60).run()
    assert [i.value for i in at.info] == [_shared.NO_MODEL_MESSAGE]

    job = tiny_job()
    good = save_run(job, isolated / "runs")
    at.session_state["jobs"] = {job.id: job}
    at.session_state["loaded_runs"] = {good.name: load_run(good)}
    at.run()
    assert not at.exception
    box = at.selectbox(key="probe_pick")
    assert box.value == good.name  # the newest model is the default
    assert box.options[0].startswith("tiny · digits · trained ")
    assert box.options[1].startswith(f"tiny · digits · saved {good.name}")
    assert at.session_state["selected_run"] == good.name
    assert [m.value for m in at.markdown] == ["picked tiny"]

    box.select_index(0).run()
    assert at.session_state["selected_run"] == job.id
    assert job.id in at.session_state["job_runs"]
