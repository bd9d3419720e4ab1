"""AppTest of marking a drawing on the Draw page and of the Drawings page (the canvas is
injected as the pad sends it; see test_app_analysis_pages.py)."""

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from saved_runs import record
from sklearn.datasets import load_digits
from streamlit.testing.v1 import AppTest

from digits_core.store import drawings as dr
from digits_core.store.runs import load_run

PAGES = Path(__file__).resolve().parents[1] / "pages"


@pytest.fixture
def run(tiny_job, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("DIGITLAB_RUNS", str(runs))
    return load_run(record(tiny_job, runs))


def _canvas_state(rgba: np.ndarray) -> dict:
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    return {"drawing": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}


def _drawn(k: int = 0) -> np.ndarray:
    grey = Image.fromarray((load_digits().images[k] / 16 * 255).astype(np.float32), mode="F")
    ink = np.clip(np.pad(np.asarray(grey.resize((200, 200), Image.Resampling.BICUBIC)), 40), 0, 255)
    ink = ink.astype(np.uint8)
    return np.dstack([ink, ink, ink, np.full_like(ink, 255)])


def _draw(run, rgba) -> AppTest:
    """The Draw page reading `rgba` with `run` picked (a saved run this session did not start
    is not the person's: the page opens on the ready-made model)."""
    at = AppTest.from_file(str(PAGES / "6_Draw.py"), default_timeout=60).run()
    next(s for s in at.selectbox if s.label == "Model that reads your drawing").set_value(run.path.name).run()
    at.session_state["draw_canvas"] = _canvas_state(rgba)
    return at.run()


def _ok(at):
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def test_nothing_is_kept_without_the_click_then_right_keeps_it_and_undo_takes_it_back(run):
    at = _draw(run, _drawn())
    _ok(at)
    read = int(at.metric[0].value)
    assert dr.list_drawings(run.path.parent) == []  # a reading alone keeps nothing
    [right] = [b for b in at.button if b.label.startswith("Right")]
    right.click().run()
    _ok(at)
    [d] = dr.list_drawings(run.path.parent)
    assert (d.label, d.reading, d.model_key) == (read, read, run.path.name)
    assert dr.model_input(run.path.parent, d.id).shape == (8, 8)
    assert any("Kept as read right" in s.value for s in at.success)
    [undo] = [b for b in at.button if b.label == "Undo"]
    undo.click().run()
    _ok(at)
    assert dr.list_drawings(run.path.parent) == []
    assert any(b.label.startswith("Right") for b in at.button)


def test_no_its_a_keeps_it_with_the_digit_clicked(run):
    at = _draw(run, _drawn())
    read = int(at.metric[0].value)
    other = (read + 3) % 10
    [pills] = [b for b in at.get("button_group") if (b.key or "").startswith("mark_other_")]  # not the inside view's
    pills.set_value(other).run()
    _ok(at)
    [d] = dr.list_drawings(run.path.parent)
    assert (d.label, d.reading) == (other, read) and d.misread
    assert any(f"a {other}, misread as {read}" in s.value for s in at.success)


def test_the_cap_reached_says_so_on_the_draw_page(run, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DRAWINGS_PER_PERSON", "1")
    at = _draw(run, _drawn(0))
    next(b for b in at.button if b.label.startswith("Right")).click().run()
    at.session_state["draw_canvas"] = _canvas_state(_drawn(1))
    at.run()
    next(b for b in at.button if b.label.startswith("Right")).click().run()
    assert any("the most one person may keep" in e.value for e in at.error)
    assert len(dr.list_drawings(run.path.parent)) == 1


# ------------------------------------------------------------------ the Drawings page

APP = str(Path(__file__).resolve().parents[1] / "streamlit_app.py")


def _mnist_input(rgba):
    from digits_core.images.drawing import canvas_to_image

    return canvas_to_image(rgba, "mnist")


def _keep(runs, label, owner, person="", k=0, reading=None):
    rgba = _drawn(k)
    return dr.save_drawing(runs, rgba, _mnist_input(rgba), label=label, reading=reading, model="ready-made",
                           model_key=":ready-made:", owner=owner, person=person)


def _page(at: AppTest) -> AppTest:
    at.switch_page("pages/10_Drawings.py").run()
    _ok(at)
    return at


def _tiles(at) -> list[str]:
    return [m.value for m in at.markdown if 'class="drawing-tile"' in m.value]


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path / "data-home"))
    return tmp_path / "runs"


def test_the_drawings_page_without_drawings_says_how_to_get_some(runs):
    at = _page(AppTest.from_file(APP, default_timeout=60).run())
    assert any("No drawings yet" in i.value for i in at.info)


def test_the_grid_the_misread_filter_the_score_and_delete(runs):
    at = AppTest.from_file(APP, default_timeout=60).run()
    me = at.session_state["sid"]
    from digits_core.analysis.drawing_scores import read_inputs
    from digits_core.store.pretrained import load_ready_made

    ready = load_ready_made()
    kept = [_keep(runs, label, me, k=k) for k, label in ((0, 0), (0, 6), (1, 1))]  # digit 0 once labelled 6
    reads = read_inputs(ready, np.stack([dr.model_input(runs, d.id) for d in kept]))
    _page(at)
    assert len(_tiles(at)) == 3
    at.button_group(key="drawings_view").set_value("Score").run()
    [cm] = [m.value for m in at.markdown if 'class="drawing-confusion"' in m.value]
    assert cm.count('data-n="1"') + 2 * cm.count('data-n="2"') == 3
    wrong = sum(int(r) != d.label for r, d in zip(reads, kept))
    assert wrong >= 1  # a 0 called a 6 is misread
    at.button_group(key="drawings_view").set_value("Drawings").run()
    at.radio(key="drawings_which").set_value(at.radio(key="drawings_which").options[1]).run()
    assert len(_tiles(at)) == wrong
    at.radio(key="drawings_which").set_value("all").run()
    at.button(key=f"del_{kept[1].id}").click().run()
    _ok(at)
    assert [d.id for d in dr.list_drawings(runs)] == [kept[0].id, kept[2].id]
    assert len(_tiles(at)) == 2


def test_class_mode_students_see_their_own_and_the_shared_set_a_teacher_takes_one_out(runs, monkeypatch):
    monkeypatch.setenv("DIGITLAB_CLASS_MODE", "1")
    monkeypatch.setenv("DIGITLAB_TEACHER_CODE", "owl-42")
    ada = _keep(runs, 1, "@ada", "Ada", k=1)
    _keep(runs, 0, "@ben", "Ben", k=0)
    ben = AppTest.from_file(APP, default_timeout=60)
    ben.query_params["name"] = "Ben"
    _page(ben.run())
    assert len(_tiles(ben)) == 2
    assert not any(b.key == f"del_{ada.id}" for b in ben.button)  # not Ben's to delete
    assert not any(b.key == f"unshare_{ada.id}" for b in ben.button)  # nor to take out
    assert not any(b.key == "drawings_download" for b in ben.get("download_button"))

    teacher = AppTest.from_file(APP, default_timeout=60).run()
    teacher.text_input(key="join_name").input("Tess")
    teacher.text_input(key="join_code").input("owl-42")
    teacher.button[0].click().run()
    _page(teacher)
    assert teacher.get("download_button")  # the teacher downloads the class's set
    teacher.button(key=f"unshare_{ada.id}").click().run()
    _ok(teacher)
    _page(ben)
    assert len(_tiles(ben)) == 1  # out of the class's set
    ada_at = AppTest.from_file(APP, default_timeout=60)
    ada_at.query_params["name"] = "Ada"
    _page(ada_at.run())
    assert len(_tiles(ada_at)) == 2  # Ada still sees her own
