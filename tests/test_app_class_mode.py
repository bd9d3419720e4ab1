"""AppTest of a class server (`DIGITLAB_CLASS_MODE=1`): a name first, kept in the URL;
runs under people's names; others' runs read-only; a teacher publishes a run; no
free-text server folder on the Data page.

AppTest runs the entry script (where the name is asked) on a test's first run only; later
runs run the page itself. So each person here is a fresh AppTest whose URL carries their
name, and the join form's messages are checked in the browser (tests/browser)."""

import json
import time
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from dashboard import state
from digits_core.runs import inspect_run, save_run
from digits_core.serving import owner_key

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


@pytest.fixture(autouse=True)
def class_server(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path / "data-home"))
    monkeypatch.setenv("DIGITLAB_CLASS_MODE", "1")
    monkeypatch.setenv("DIGITLAB_TEACHER_CODE", "owl-42")
    return tmp_path


@pytest.fixture
def run_of(tiny_job, class_server):
    """A finished run in the class's runs folder, as `person` started it."""

    def make(person: str, label: str) -> Path:
        path = save_run(tiny_job, class_server / "runs", label=label)
        meta = json.loads((path / "meta.json").read_text())
        meta.update(owner=owner_key(person), person=person)
        (path / "meta.json").write_text(json.dumps(meta))
        time.sleep(0.01)  # distinct creation times: newest first is well defined
        return path

    return make


def visit(name: str | None = None, sid: str | None = None) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=60)
    if name is not None:
        at.query_params["name"] = name
    if sid is not None:
        at.query_params["sid"] = sid
    return at.run()


def join(name: str, code: str = "") -> AppTest:
    """A person joins through the form, then comes back with the URL it gave them."""
    at = visit()
    at.text_input(key="join_name").input(name)
    if code:
        at.text_input(key="join_code").input(code)
    at.button[0].click().run()  # the form's Join button
    assert not at.exception, [e.value for e in at.exception]
    assert "join_error" not in at.session_state
    return visit(name=url_name(at), sid=at.session_state["sid"])


def url_name(at: AppTest) -> str:
    value = at.query_params["name"]
    return value if isinstance(value, str) else value[-1]


def on_page(at: AppTest, page: str) -> AppTest:
    at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def session_of(at: AppTest) -> state.Session:
    return state._sessions()[at.session_state["sid"]]


def test_a_class_server_asks_for_a_name_before_any_page():
    at = visit()
    assert [t.value for t in at.title] == ["Join the class"]
    assert not at.sidebar.caption and not at.get("plotly_chart")  # nothing of a page yet
    for typed, why in [("", "type your name"), ("<b>Ada</b>", "cannot hold")]:
        at = visit()
        at.text_input(key="join_name").input(typed)
        at.button[0].click().run()
        assert why in at.session_state["join_error"] and not session_of(at).owner
        assert "name" not in at.query_params


def test_a_name_goes_into_the_url_and_a_reload_is_the_same_person():
    at = join("  Ada   Lovelace ")
    assert url_name(at) == "Ada Lovelace"
    assert at.title[0].value == "Digit Lab"  # the Home page, past the join form
    assert "You are **Ada Lovelace**." in [c.value for c in at.sidebar.caption]
    assert session_of(at).owner == "@ada lovelace" and not session_of(at).teacher
    again = visit(name="Ada Lovelace")  # a bookmark, or the same person on another computer
    assert again.title[0].value == "Digit Lab"
    assert again.session_state["sid"] != at.session_state["sid"]
    assert session_of(again).owner == "@ada lovelace"


def test_a_wrong_teacher_code_joins_no_one():
    at = visit()
    at.text_input(key="join_name").input("Eve")
    at.text_input(key="join_code").input("owl")
    at.button[0].click().run()
    assert "teacher code is not right" in at.session_state["join_error"]
    assert not session_of(at).owner and "name" not in at.query_params


def test_others_runs_are_read_only_and_mine_are_not(run_of):
    ada = run_of("Ada", "ada-cnn")
    bob = join("Bob")
    on_page(bob, "pages/7_Runs.py")
    table = bob.dataframe[0].value
    assert list(table["by"]) == ["Ada"] and list(table["yours"]) == [""]
    assert any("Ada's run: you can look at it" in c.value for c in bob.caption)
    assert bob.button(key="runs_delete").disabled and bob.checkbox(key=f"runs_sure_{ada.name}").disabled
    assert "runs_continue" not in [b.key for b in bob.button]
    assert not [b for b in bob.button if b.key == "runs_publish"]  # a student publishes nothing
    assert bob.selectbox(key="runs_pick").options[0].startswith("Ada's ada-cnn · digits · finished")
    assert ada.is_dir()

    mine = run_of("Bob", "bob-mlp")
    run_of("Ada", "ada-newer")
    fresh = on_page(visit(name="Bob", sid=bob.session_state["sid"]), "pages/7_Runs.py")
    assert fresh.selectbox(key="runs_pick").value == mine.name  # his own, not Ada's newer one
    bob.run()
    bob.selectbox(key="runs_pick").set_value(mine.name).run()
    assert "runs_continue" in [b.key for b in bob.button]
    assert list(bob.dataframe[0].value["yours"]) == ["", "✓", ""]
    bob.checkbox(key=f"runs_sure_{mine.name}").check().run()
    bob.button(key="runs_delete").click().run()
    assert not bob.exception and not mine.exists() and ada.is_dir()


def test_a_teacher_publishes_a_run_and_it_comes_first_for_everyone(run_of):
    demo = run_of("Ms Smith", "class demo")
    run_of("Ada", "ada-later")  # newer than the demo
    teacher = join("Ms Smith", code="owl-42")
    assert "You are **Ms Smith** · teacher." in [c.value for c in teacher.sidebar.caption]
    on_page(teacher, "pages/7_Runs.py")
    teacher.selectbox(key="runs_pick").set_value(demo.name).run()
    teacher.button(key="runs_publish").click().run()
    assert not teacher.exception and inspect_run(demo).published

    carl = join("Carl")  # no runs of his own: his pickers open on the published run
    on_page(carl, "pages/4_Evaluate.py")
    picker = next(s for s in carl.selectbox if s.key and s.key.startswith("pick_run_"))
    assert picker.value == demo.name and picker.key == f"pick_run_{demo.name}"
    assert carl.get("plotly_chart")  # and it evaluates it (read-only is not hidden)


def test_a_class_server_offers_its_folders_not_a_free_text_path():
    at = join("Ada")
    on_page(at, "pages/2_Data.py")
    at.radio(key="data_dataset").set_value("mnist").run()
    assert not at.exception
    assert "data_mnist_dir" not in [t.key for t in at.text_input]
    assert at.selectbox(key="data_mnist_choice").options  # only the folders the server offers


def test_my_runs_follow_my_name_to_another_tab():
    at = join("Ada")
    on_page(at, "pages/3_Train.py")
    form = f"train_{{}}_v{session_of(at).form_version}"
    at.radio(key=form.format("family")).set_value("numpy-mlp").run()
    at.number_input(key=form.format("epochs")).set_value(1000).run()
    at.button(key="start").click().run()
    runner = state.runner()
    [name] = runner.owned("@ada")
    assert inspect_run(Path(state.runs_dir()) / name).meta["person"] == "Ada"
    other_tab = visit(name="ada")  # the same person, another computer, another session id
    assert other_tab.session_state["sid"] != at.session_state["sid"]
    on_page(other_tab, "pages/3_Train.py")
    assert other_tab.session_state["train_view"] == name  # their run, live, in the other tab
    assert name in runner.active("@ada")
    stranger = visit(name="Bob")
    on_page(stranger, "pages/3_Train.py")
    assert stranger.session_state["train_view"] is None  # not Bob's
    runner.stop(name)
    runner.job(name).wait(10)


def test_draw_opens_on_the_ready_made_model_rather_than_another_students_run(run_of):
    """A student with no run of their own draws on the model that ships with Digit Lab,
    not on whatever a classmate trained last; their own run, once they have one, comes first,
    and the ready-made model stays a choice."""
    run_of("Ada", "ada-cnn")
    bob = on_page(join("Bob"), "pages/6_Draw.py")
    picker = next(s for s in bob.selectbox if s.label == "Model that reads your drawing")
    assert picker.value == state.READY_MADE
    assert picker.options[0].startswith("ready-made MNIST CNN") and picker.options[1].startswith("Ada's ada-cnn")
    assert any("ready-made model that ships with Digit Lab" in c.value for c in bob.caption)

    mine = run_of("Bob", "bob-mlp")
    bob.run()
    picker = next(s for s in bob.selectbox if s.label == "Model that reads your drawing")
    assert picker.value == mine.name
    assert [o.split(" · ")[0] for o in picker.options] == [
        "bob-mlp", "ready-made MNIST CNN (ships with Digit Lab)", "Ada's ada-cnn"]


def test_a_locked_class_configuration_leaves_students_only_the_open_controls(class_server):
    from digits_core.presets import ALL

    teacher = on_page(join("Mrs Owl", code="owl-42"), "pages/3_Train.py")
    teacher.selectbox(key="preset_pick").select("S1b").run()
    teacher.multiselect(key="lock_open").set_value(["lr"]).run()
    teacher.button(key="lock_publish").click().run()
    assert any("Published" in s.value for s in teacher.success)

    bob = on_page(join("Bob"), "pages/3_Train.py")
    v = session_of(bob).form_version
    assert any("you may change **learning rate**" in i.value for i in bob.info)
    assert not bob.select_slider(key=f"train_lr_v{v}").disabled
    assert bob.number_input(key=f"train_epochs_v{v}").disabled
    assert "preset_pick" not in [s.key for s in bob.selectbox]
    bob.select_slider(key=f"train_lr_v{v}").set_value(0.3).run()
    bob.session_state[f"train_epochs_v{v}"] = 3  # a forged message: the widget is disabled
    bob.run()
    held = session_of(bob).experiment
    assert held.train.lr == 0.3 and held.train.epochs == ALL["S1b"].build().train.epochs
    assert held.model == ALL["S1b"].build().model
