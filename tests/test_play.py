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
