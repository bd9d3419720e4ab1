"""AppTest of marking a drawing on the Draw page and of the Drawings page (the canvas is
injected as the pad sends it; see test_app_analysis_pages.py)."""

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.datasets import load_digits
from streamlit.testing.v1 import AppTest

from digits_core import drawings as dr
from digits_core.runs import load_run, save_run

PAGES = Path(__file__).resolve().parents[1] / "pages"


@pytest.fixture
def run(tiny_job, tmp_path, monkeypatch):
    runs = tmp_path / "runs"
    monkeypatch.setenv("DIGITLAB_RUNS", str(runs))
    return load_run(save_run(tiny_job, runs))


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
    at = AppTest.from_file(str(PAGES / "6_Draw.py"), default_timeout=60).run()
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
    [pills] = at.get("button_group")
    pills.set_value(other).run()
    _ok(at)
    [d] = dr.list_drawings(run.path.parent)
    assert (d.label, d.reading) == (other, read) and d.misread
    assert any(f"a {other}, misread as {read}" in s.value for s in at.success)


def test_the_cap_reached_says_so_on_the_draw_page(run, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DRAWINGS_PER_PERSON", "1")
    at = _draw(run, _drawn(0))
    [b for b in at.button if b.label.startswith("Right")][0].click().run()
    at.session_state["draw_canvas"] = _canvas_state(_drawn(1))
    at.run()
    [b for b in at.button if b.label.startswith("Right")][0].click().run()
    assert any("the most one person may keep" in e.value for e in at.error)
    assert len(dr.list_drawings(run.path.parent)) == 1
