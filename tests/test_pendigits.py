"""Real pen digits (UCI pendigits) read strictly and drawn as the pad draws."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digits_core.analysis.pendigits import read_unipen, render, writer_split
from digits_core.errors import DataError

SAMPLE = """.INCLUDE dene.doc
.LEXICON "0" "1"
.SEGMENT DIGIT    0 ? "7"
.COMMENT 7 3  12
.PEN_DOWN
 100  400
 300  400
 200  100
.PEN_UP
.DT 100

.SEGMENT DIGIT    1 ? "1"
.COMMENT 1 5  12
.PEN_DOWN
 200  400
 200  100
.PEN_UP
.PEN_DOWN
 150  90
 250  90
.PEN_UP
"""


def _file(tmp_path, text):
    p = tmp_path / "x.unipen"
    p.write_text(text)
    return p


def test_digits_labels_writers_and_strokes_are_read(tmp_path):
    seven, one = read_unipen(_file(tmp_path, SAMPLE))
    assert (seven.label, seven.writer, len(seven.strokes)) == (7, 3, 1)
    assert (one.label, one.writer, len(one.strokes)) == (1, 5, 2)
    assert seven.strokes[0].tolist() == [[100, 400], [300, 400], [200, 100]]


@pytest.mark.parametrize("bad, says", [
    (SAMPLE.replace('"7"', '"12"'), "label 12"),
    (SAMPLE.replace(" 300  400", " 300  x"), "two numbers"),
    (SAMPLE.replace(".COMMENT 7 3  12", ".COMMENT 7"), "writer"),
    (".SEGMENT DIGIT 0 ? \"3\"\n.COMMENT 3 1 1\n", "no strokes"),
    (SAMPLE.replace(".COMMENT 7 3  12\n", ""), "naming its writer"),
])
def test_a_malformed_file_is_refused_naming_the_line(tmp_path, bad, says):
    with pytest.raises(DataError, match=says) as e:
        read_unipen(_file(tmp_path, bad))
    assert "line" in str(e.value) and "\n" not in str(e.value)


def test_a_digit_is_drawn_upright_on_a_black_pad_with_a_round_pen(tmp_path):
    seven, _ = read_unipen(_file(tmp_path, SAMPLE))
    rgba = render(seven, np.random.default_rng(0))
    assert rgba.shape == (280, 280, 4) and (rgba[..., 3] == 255).all()
    ink = rgba[..., 0] > 128
    rows, cols = np.flatnonzero(ink.any(1)), np.flatnonzero(ink.any(0))
    top_row = ink[rows[0] + 2]
    assert top_row.sum() > 0.5 * (cols[-1] - cols[0])  # the 7's bar is at the top (y grows upwards)
    assert 0.40 * 280 * 0.9 <= rows[-1] - rows[0] <= 280


def test_writers_are_split_apart(tmp_path):
    digits = read_unipen(_file(tmp_path, SAMPLE))
    tune, held = writer_split(digits, 1)
    assert tune | held == {3, 5} and not tune & held and len(held) == 1


@settings(max_examples=100, deadline=None)
@given(st.text(alphabet=st.sampled_from(list(".SEGMENTDIGCOPUWN_ 0123456789\"?\n-x")), max_size=400))
def test_any_text_is_read_or_refused_in_one_line(tmp_path_factory, text):
    p = tmp_path_factory.mktemp("u") / "x.unipen"
    p.write_text(text)
    try:
        for d in read_unipen(p):
            assert 0 <= d.label <= 9 and d.strokes and d.writer >= 0
    except DataError as e:
        assert "\n" not in str(e)
