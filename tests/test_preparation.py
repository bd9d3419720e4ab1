"""The preparation view shows the drawing pipeline's own steps: with every step on, its
last picture is exactly what the model reads; switched off, the digit keeps its place or
size, and a tiny drawing in a corner stays tiny there."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digits_core.images.drawing import canvas_to_image, canvas_views
from digits_core.images.preparation import prepare


def _pad(rows, cols, pen=18, side=280):
    """A white-on-black 'RGBA canvas' with one thick stroke in the box rows x cols."""
    ink = np.zeros((side, side), np.uint8)
    ink[rows[0]:rows[1], cols[0]:cols[0] + pen] = 255  # a 1-like bar
    ink[rows[0]:rows[0] + pen, cols[0]:cols[1]] = 255  # and a flag: a 7
    return np.dstack([ink, ink, ink, ink])


SEVEN = _pad((60, 230), (100, 200))
CORNER = _pad((10, 60), (10, 45), pen=8)


@pytest.mark.parametrize("dataset", ["mnist", "digits"])
def test_with_every_step_on_the_last_picture_is_what_the_model_reads(dataset):
    p = prepare(SEVEN, dataset)
    np.testing.assert_array_equal(p.image, canvas_to_image(SEVEN, dataset))
    assert not p.changed
    names = [s.name for s in p.steps]
    assert names[:3] == ["canvas", "ink found", "cropped"]
    if dataset == "mnist":
        assert names[3:] == ["scaled into 20x20", "centred"]
        assert max(p.steps[3].image.shape) == 20


def test_the_narrowed_view_is_the_second_view_read():
    p = prepare(SEVEN, "mnist", narrowed=True)
    assert p.steps[-1].name == "narrowed view"
    np.testing.assert_array_equal(p.steps[-1].image * 255, canvas_views(SEVEN, "mnist")[1])


def test_without_centring_a_corner_drawing_stays_in_the_corner():
    p = prepare(CORNER, "mnist", centre=False)
    assert p.changed
    rows, cols = np.nonzero(p.image > 128)
    assert rows.mean() < 10 and cols.mean() < 10  # centred it would sit around (14, 14)
    centred = prepare(CORNER, "mnist").image
    rows, cols = np.nonzero(centred > 128)
    assert abs(rows.mean() - 14) < 3 and abs(cols.mean() - 14) < 3


def test_without_size_normalisation_a_small_drawing_stays_small():
    small = prepare(CORNER, "mnist", size=False)
    rows = np.nonzero(small.image > 64)[0]
    assert np.ptp(rows) < 8  # drawn on a fifth of the pad: about a fifth of 28 px
    rows = np.nonzero(prepare(CORNER, "mnist").image > 64)[0]
    assert np.ptp(rows) >= 18


def test_an_empty_pad_or_a_speck_has_no_image():
    blank = np.zeros((280, 280, 4), np.uint8)
    assert prepare(blank, "mnist").image is None
    speck = blank.copy()
    speck[100:103, 100:103] = 255
    assert prepare(speck, "mnist").image is None


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 200), st.integers(0, 200), st.integers(3, 80), st.booleans(), st.booleans())
def test_any_stroke_gives_a_28x28_image_or_none(top, left, length, centre, size):
    ink = np.zeros((280, 280), np.uint8)
    ink[top:top + length, left:left + 12] = 255
    p = prepare(np.dstack([ink] * 4), "mnist", centre=centre, size=size)
    assert p.image is None or (p.image.shape == (28, 28) and 0 <= p.image.min() and p.image.max() <= 255)
