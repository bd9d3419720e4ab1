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
from saved_runs import record
from streamlit.testing.v1 import AppTest

from dashboard import state
from dashboard.plain import plain
from digits_core.serve.serving import owner_key
from digits_core.store.runs import inspect_run

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
        path = record(tiny_job, class_server / "runs", label=label)
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


def is_teacher(at: AppTest) -> bool:
    return state.TEACHER_KEY in at.session_state and at.session_state[state.TEACHER_KEY]


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
    assert session_of(at).owner == "@ada lovelace" and not is_teacher(at)
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
    teacher = join_here("Ms Smith", code="owl-42")
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


def join_here(name: str, code: str = "") -> AppTest:
    """A person joins through the form and stays in that browser tab (a teacher's right is
    the tab's: a new AppTest would be a reload)."""
    at = visit()
    at.text_input(key="join_name").input(name)
    if code:
        at.text_input(key="join_code").input(code)
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert "join_error" not in at.session_state, at.session_state["join_error"]
    return at


def captions(at: AppTest) -> list[str]:
    return [c.value for c in at.sidebar.caption]


def test_the_teachers_link_makes_no_one_else_a_teacher(run_of):
    """The teacher's address (on the projector) carries a session id: opened by a student
    with his own name, it gives him neither the teacher's right nor the teacher's session."""
    demo = run_of("Ada", "ada-cnn")
    teacher = join_here("Ms Smith", code="owl-42")
    assert is_teacher(teacher)
    teacher_sid = teacher.session_state["sid"]

    bob = visit(name="Bob T", sid=teacher_sid)
    assert "You are **Bob T**." in captions(bob)
    assert bob.session_state["sid"] != teacher_sid  # the teacher's session stays the teacher's
    on_page(bob, "pages/7_Runs.py")
    bob.selectbox(key="runs_pick").set_value(demo.name).run()
    assert not [b for b in bob.button if b.key == "runs_publish"]
    assert session_of(teacher).person == "Ms Smith"

    same_name = visit(name="Ms Smith", sid=teacher_sid)  # the whole link, name and all
    assert "You are **Ms Smith**." in captions(same_name)  # a name is not a right
    on_page(same_name, "pages/7_Runs.py")
    assert not [b for b in same_name.button if b.key == "runs_publish"]

    teacher.run()  # the teacher's own tab still is
    on_page(teacher, "pages/7_Runs.py")
    teacher.selectbox(key="runs_pick").set_value(demo.name).run()
    teacher.button(key="runs_publish").click().run()
    assert inspect_run(demo).published


def test_a_teacher_who_reloads_types_the_code_again_in_the_sidebar(run_of):
    demo = run_of("Ada", "ada-cnn")
    wrong = visit(name="Ms Smith")
    assert "You are **Ms Smith**." in captions(wrong)  # the name alone: not a teacher
    wrong.sidebar.text_input(key="teacher_code").input("owl-4")
    wrong.sidebar.button(key="teacher_code_go").click().run()
    assert "not right" in wrong.session_state["teacher_code_error"] and not is_teacher(wrong)
    again = visit(name="Ms Smith")
    again.sidebar.text_input(key="teacher_code").input("owl-42")
    again.sidebar.button(key="teacher_code_go").click().run()
    on_page(again, "pages/7_Runs.py")
    again.selectbox(key="runs_pick").set_value(demo.name).run()
    assert [b for b in again.button if b.key == "runs_publish"]
    told = visit(name="Ms Smith", sid=again.session_state["sid"])  # a reload: the right stays behind
    assert "You are **Ms Smith**." in captions(told)


def test_guessing_the_teacher_code_is_slowed_down_and_said_so():
    for i in range(5):
        at = visit()
        at.text_input(key="join_name").input("Eve")
        at.text_input(key="join_code").input(f"owl-{i}")
        at.button[0].click().run()
        assert "teacher code is not right" in at.session_state["join_error"]
    at = visit()
    at.text_input(key="join_name").input("Eve")
    at.text_input(key="join_code").input("owl-42")  # right, but during the wait
    at.button[0].click().run()
    error = at.session_state["join_error"]
    assert "too many wrong teacher codes" in error and "try again in" in error
    assert not session_of(at).owner and not is_teacher(at)


HOSTILE = ["![p](http://127.0.0.1:9/p.png)", "<b>x</b>", "**x**"]


def shown_as_markup(at: AppTest) -> list[str]:
    """Every text of the tab that Streamlit renders as Markdown, and (after a "chart:")
    every chart's legend and title, which Plotly reads as HTML."""
    texts = []
    for kind in ("markdown", "caption", "success", "error", "warning", "info", "title", "subheader"):
        texts += [e.value for e in getattr(at, kind)]
    for kind in ("checkbox", "button", "toggle", "expander"):
        texts += [e.label for e in getattr(at, kind)]
    texts += [e.value for e in at.sidebar.caption]
    for chart in at.get("plotly_chart"):
        figure = json.loads(chart.proto.spec)
        texts += ["chart: " + str(t.get("name", "")) for t in figure.get("data", [])]
        texts.append("chart: " + json.dumps(figure.get("layout", {}).get("title", "")))
    return texts


def test_names_people_typed_are_shown_as_text_on_every_page(run_of):
    """Run names with Markdown and HTML in them, one of each person's, on every page a
    classmate opens: none of them is rendered (an image fetched, bold text), each is shown."""
    for label in HOSTILE:
        run_of("Ada", label)
    mine = run_of("Bob", "**x** mine")
    seen = []
    for page in ("pages/1_Home.py", "pages/3_Train.py", "pages/4_Evaluate.py", "pages/5_Embedding.py",
                 "pages/6_Draw.py", "pages/7_Runs.py"):
        at = on_page(visit(name="Bob"), page)
        if page.endswith("6_Draw.py"):
            picker = next(s for s in at.selectbox if s.label == "Model that reads your drawing")
            picker.set_value(mine.name).run()
        if page.endswith("7_Runs.py"):
            at.multiselect(key="runs_compare").set_value([p.name for p in state.all_runs()][:3]).run()
            for info in state.all_runs():
                at.selectbox(key="runs_pick").set_value(info.name).run()
                seen += shown_as_markup(at)
        seen += shown_as_markup(at)
        assert not at.exception, (page, [e.value for e in at.exception])
    for raw in HOSTILE + ["**x** mine"]:
        assert not [t for t in seen if raw in t and not t.startswith("chart: ")], raw
    assert not [t for t in seen if "<b>" in t]
    text = "\n".join(seen)
    assert plain("**x** mine") in text  # the sidebar, the Draw caption: shown, escaped
    assert plain(HOSTILE[0]) in text  # Runs: the delete box, ...
    assert "&lt;b&gt;x&lt;/b&gt;" in text  # the comparison chart's legend


def break_meta(path: Path) -> None:
    """A run whose meta.json the reader refuses (a name with a NUL, from before names were checked)."""
    meta = json.loads((path / "meta.json").read_text())
    meta["label"] = "mine\x00"
    (path / "meta.json").write_text(json.dumps(meta))


def test_a_broken_run_stays_its_owners_and_its_owner_or_the_teacher_deletes_it(run_of):
    ada_run, bob_run = run_of("Ada", "ada-cnn"), run_of("Bob", "bob-mlp")
    break_meta(ada_run)
    break_meta(bob_run)
    ada = on_page(visit(name="Ada"), "pages/7_Runs.py")
    ada.selectbox(key="runs_pick").set_value(ada_run.name).run()
    assert any("This run is broken" in e.value for e in ada.error)
    assert not any("Someone else's run" in c.value for c in ada.caption)
    assert list(ada.dataframe[0].value["by"]) == ["Bob", "Ada"]
    ada.selectbox(key="runs_pick").set_value(bob_run.name).run()
    assert ada.button(key="runs_delete").disabled  # Bob's, broken or not
    ada.selectbox(key="runs_pick").set_value(ada_run.name).run()
    ada.checkbox(key=f"runs_sure_{ada_run.name}").check().run()
    ada.button(key="runs_delete").click().run()
    assert not ada.exception and not ada_run.exists() and bob_run.is_dir()

    teacher = on_page(join_here("Ms Smith", code="owl-42"), "pages/7_Runs.py")
    teacher.selectbox(key="runs_pick").set_value(bob_run.name).run()
    teacher.checkbox(key=f"runs_sure_{bob_run.name}").check().run()
    teacher.button(key="runs_delete").click().run()
    assert not teacher.exception and not bob_run.exists()


def test_a_run_name_with_a_control_character_is_refused_where_it_is_typed(run_of):
    ada_run = run_of("Ada", "ada-cnn")
    ada = on_page(visit(name="Ada"), "pages/3_Train.py")
    ada.session_state["train_view"] = ada_run.name
    ada.run()
    ada.text_input(key=f"rename_{ada_run.name}").input("mine\x00").run()
    assert any("control characters" in e.value for e in ada.error)
    assert inspect_run(ada_run).ok and inspect_run(ada_run).label == "ada-cnn"


def test_a_person_over_the_cap_is_refused_on_start_and_the_teacher_frees_their_space(run_of, monkeypatch):
    monkeypatch.setenv("DIGITLAB_MAX_RUNS_PER_PERSON", "2")
    run_of("Ada", "ada-1")
    run_of("Ada", "ada-2")
    run_of("Bob", "bob-1")
    ada = on_page(visit(name="Ada"), "pages/3_Train.py")
    ada.button(key="start").click().run()
    refusal = [e.value for e in ada.error if "you keep 2 runs" in e.value]
    assert refusal and "delete some on the Runs page" in refusal[0]
    assert not state.runner().owned("@ada")  # nothing started

    teacher = on_page(join_here("Ms Smith", code="owl-42"), "pages/7_Runs.py")
    space = next(d.value for d in teacher.dataframe if "MB" in d.value.columns)
    assert list(space["person"]) == ["Ada", "Bob"] or list(space["person"]) == ["Bob", "Ada"]
    assert dict(zip(space["person"], space["runs"])) == {"Ada": 2, "Bob": 1}
    teacher.selectbox(key="runs_space_who").set_value("@ada").run()
    teacher.checkbox(key="runs_space_sure_@ada").check().run()
    teacher.button(key="runs_free").click().run()
    assert not teacher.exception
    assert sorted(i.owner for i in state.all_runs()) == ["@bob"]
    assert any("Deleted 2 runs of Ada" in s.value for s in teacher.success)

    student = on_page(visit(name="Bob"), "pages/7_Runs.py")
    assert not [d for d in student.dataframe if "MB" in d.value.columns]  # the teacher's view only


def test_a_locked_class_configuration_leaves_students_only_the_open_controls(class_server):
    from digits_core.presets import ALL

    teacher = on_page(join_here("Mrs Owl", code="owl-42"), "pages/3_Train.py")
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
