"""The Play view: strokes painted over a test digit make the image the model reads (a white
pen adds ink, a black one rubs it out, nothing drawn leaves the digit as it was), the
fewest strokes that changed the reading are named, and the page works on the ready-made
model with no run (AppTest: the canvas component does not render there, so the page reads
the digit with no strokes)."""

import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from streamlit.testing.v1 import AppTest

from digits_core.analysis.play import compose, flip_line, start_digit

PAGES = Path(__file__).resolve().parents[1] / "pages"


def test_nothing_drawn_leaves_the_digit_as_it_was():
    digit = np.random.default_rng(0).uniform(0, 255, (28, 28)).astype(np.float32)
    np.testing.assert_array_equal(compose(digit, None, 255.0), digit)
    clear = np.zeros((280, 280, 4), np.uint8)
    np.testing.assert_allclose(compose(digit, clear, 255.0), digit, rtol=1e-5)


def test_a_white_pen_adds_ink_and_a_black_pen_rubs_it_out():
    digit = np.zeros((28, 28), np.float32)
    digit[10:20, 10:20] = 255.0
    pad = np.zeros((280, 280, 4), np.uint8)
    pad[0:50, 0:50] = [255, 255, 255, 255]  # white over blank: 5x5 pixels of ink
    pad[100:200, 100:200] = [0, 0, 0, 255]  # black over the square: rubbed out
    out = compose(digit, pad, 255.0)
    assert (out[:5, :5] == 255).all() and (out[10:20, 10:20] == 0).all()
    assert out[20:, 20:].max() == 0


def test_a_pad_that_is_not_a_multiple_of_the_digit_is_refused():
    with pytest.raises(ValueError, match="whole multiple"):
        compose(np.zeros((28, 28)), np.zeros((100, 100, 4), np.uint8), 255.0)
    with pytest.raises(ValueError, match="RGBA"):
        compose(np.zeros((28, 28)), np.zeros((280, 280), np.uint8), 255.0)


def test_the_fewest_strokes_that_changed_it_are_named():
    assert flip_line(4, [4, 4, 9, 4, 9]) == "3 strokes turned this 4 into a 9"
    assert flip_line(4, [7]) == "1 stroke turned this 4 into a 7"
    assert flip_line(4, [4, 4]) is None


def test_the_start_is_a_digit_the_model_reads_right():
    labels = np.array([4, 4, 9, 4])
    preds = np.array([9, 1, 9, 4])
    assert start_digit(labels, preds, 4) == 3
    assert start_digit(labels, preds, 7) is None


def test_the_play_page_reads_a_test_digit_with_the_ready_made_model():
    os.environ["DIGITLAB_RUNS"] = tempfile.mkdtemp()
    at = AppTest.from_file(str(PAGES / "9_Play.py"), default_timeout=90).run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [m.value for m in at.metric] == ["4"]
    assert "towards 4" in " ".join(m.value for m in at.markdown)
    at.button(key="play_nudge").click().run()
    assert not at.exception
    assert "nudged: read as" in " ".join(m.value for m in at.markdown)


def test_the_play_page_works_on_a_run_of_the_persons(tiny_job, tmp_path):
    """A NumPy MLP on the 8x8 digits: its test digits, read and nudged, on the same pad."""
    from saved_runs import record

    record(tiny_job, tmp_path / "runs", owner="player-0001")
    os.environ["DIGITLAB_RUNS"] = str(tmp_path / "runs")
    at = AppTest.from_file(str(PAGES / "9_Play.py"), default_timeout=90)
    at.session_state["sid"] = "player-0001"  # the session that trained it
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert "tiny" in " ".join(c.value for c in at.caption)
    assert at.metric and "towards" in " ".join(m.value for m in at.markdown)
    at.button(key="play_nudge").click().run()
    assert not at.exception


def _drawn_seven() -> np.ndarray:
    """A 7 as the Draw page's pad sends it: white strokes on black, 280x280 RGBA."""
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = 255
    rgba[60:85, 60:220, :3] = 255  # the bar
    for y in range(85, 230):  # the stem, slanting down to the left
        x = 200 - (y - 85) // 2
        rgba[y, x - 12:x + 12, :3] = 255
    return rgba


def _play(runs: str, sid: str | None = None) -> AppTest:
    os.environ["DIGITLAB_RUNS"] = runs
    at = AppTest.from_file(str(PAGES / "9_Play.py"), default_timeout=90)
    if sid:
        at.session_state["sid"] = sid
    return at


def test_play_can_start_from_the_last_drawing_with_the_ready_made_model():
    """The Draw page's last drawing (kept in the session) is the start: Play shows that
    drawing, prepared as Draw prepared it, and the same reading Draw gave."""
    from dashboard.pictures import png_data_url
    from dashboard.play_view import LAST_DRAWING
    from digits_core.analysis.predict import predict_canvas
    from digits_core.images.pictures import display_image
    from digits_core.store.pretrained import load_ready_made

    rgba = _drawn_seven()
    drawn = predict_canvas(load_ready_made(), rgba)
    assert drawn.digit is not None and drawn.digit != 4  # not the test digit Play starts from by default
    at = _play(tempfile.mkdtemp())
    at.session_state[LAST_DRAWING] = rgba
    at.run()
    at.radio(key="play_start").set_value("my last drawing").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert [m.value for m in at.metric] == [str(drawn.digit)]
    shown = png_data_url(display_image(drawn.image, 255.0, size=1))
    assert any(shown in m.value for m in at.markdown), "the input shown is not the drawing"
    at.button(key="play_nudge").click().run()
    assert not at.exception


def test_play_without_a_drawing_says_to_draw_one_first():
    at = _play(tempfile.mkdtemp()).run()
    at.radio(key="play_start").set_value("my last drawing").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "Draw page" in " ".join(i.value for i in at.info)
    assert not at.metric


def test_play_starts_from_the_last_drawing_on_a_run_of_the_persons(tiny_job, tmp_path):
    """An 8x8 model: the drawing is prepared for its dataset, as Draw prepares it."""
    from saved_runs import record

    from dashboard.play_view import LAST_DRAWING
    from digits_core.analysis.predict import predict_canvas
    from digits_core.store.runs import load_run

    path = record(tiny_job, tmp_path / "runs", owner="player-0001")
    drawn = predict_canvas(load_run(path), _drawn_seven())
    assert drawn.digit is not None and drawn.image.shape == (8, 8)
    at = _play(str(tmp_path / "runs"), sid="player-0001")
    at.session_state[LAST_DRAWING] = _drawn_seven()
    at.run()
    at.radio(key="play_start").set_value("my last drawing").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    assert "tiny" in " ".join(c.value for c in at.caption)
    assert [m.value for m in at.metric] == [str(drawn.digit)]


def test_the_drawing_read_on_draw_is_the_start_on_play_in_the_same_session():
    """Through the whole app: a drawing read on the Draw page is still there on Play (it
    survives moving between pages), with the reading Draw gave."""
    import base64
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(_drawn_seven()).save(buf, format="PNG")
    os.environ["DIGITLAB_RUNS"] = tempfile.mkdtemp()
    at = AppTest.from_file(str(PAGES.parent / "streamlit_app.py"), default_timeout=90).run()
    at.switch_page("pages/6_Draw.py").run()
    at.session_state["draw_canvas"] = {"drawing": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}
    at.run()
    [read] = [m.value for m in at.metric if m.label == "Prediction"]
    at.switch_page("pages/9_Play.py").run()
    at.radio(key="play_start").set_value("my last drawing").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [m.value for m in at.metric] == [read]
    assert f"as this model reads it: a {read}." in " ".join(c.value for c in at.caption)
