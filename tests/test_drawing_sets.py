"""A set of drawings as one zip: a round trip, and a hostile corpus refused in one line
(a zip bomb, a path that climbs out, a PNG that lies about its size, a label of 11), with
a Hypothesis property over arbitrary bytes."""

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from digits_core.store import drawings as dr
from digits_core.store.drawing_sets import export_set, import_set, read_set
from digits_core.store.drawings import DrawingStoreError


def _pad(label: int) -> np.ndarray:
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[60:220, 120 + 5 * label:140 + 5 * label] = 255  # a bar: some ink, read as a digit
    return rgba


def _png(rgba) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    return buf.getvalue()


def _zip(members: dict[str, bytes], csv_text: str | None = None) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        if csv_text is not None:
            zf.writestr("labels.csv", csv_text)
        for k, v in members.items():
            zf.writestr(k, v)
    return buf.getvalue()


def test_a_set_goes_out_and_comes_back_with_its_labels(tmp_path):
    src, dst = tmp_path / "a", tmp_path / "b"
    for label in (3, 7, 7):
        dr.save_drawing(src, _pad(label), np.zeros((28, 28), np.float32), label=label, reading=1,
                        model="S4", model_key="S4", owner="@ada", person="Ada")
    data = export_set(src, dr.list_drawings(src))
    assert import_set(dst, data, owner="@ben", person="Ben") == 3
    back = dr.list_drawings(dst)
    assert sorted(d.label for d in back) == [3, 7, 7] and {d.owner for d in back} == {"@ben"}
    assert all(dr.model_input(dst, d.id).max() > 100 for d in back)  # read again as the pad's digit


def test_a_label_of_11_is_refused_naming_the_row():
    data = _zip({"images/a.png": _png(_pad(1))}, "file,label\nimages/a.png,11\n")
    with pytest.raises(DrawingStoreError, match=r"row 2: the label must be a digit 0..9, got '11'"):
        read_set(data)


@pytest.mark.parametrize("name", ["../evil.png", "images/../../evil.png", "/etc/evil.png", "C:/evil.png"])
def test_a_path_that_climbs_out_is_refused(name):
    data = _zip({name: _png(_pad(1))}, f"file,label\n{name},1\n")
    with pytest.raises(DrawingStoreError, match="outside the set"):
        read_set(data)


def test_a_zip_bomb_is_refused_from_its_directory_before_unpacking():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.csv", "file,label\nimages/a.png,1\n")
        zf.writestr("images/a.png", b"\0" * (300 * 2**20))  # 300 MB of zeros: a few hundred KB packed
    assert len(buf.getvalue()) < 2 * 2**20
    with pytest.raises(DrawingStoreError, match="unpacks to 300 MB"):
        read_set(buf.getvalue())


def test_a_bomb_that_lies_in_its_directory_is_read_only_as_far_as_it_declared():
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("labels.csv", "file,label\nimages/a.png,1\n")
        zf.writestr("images/a.png", b"\0" * (50 * 2**20))
    raw = bytearray(buf.getvalue())
    # the central directory's "uncompressed size" of images/a.png says 100 bytes
    at = raw.rfind(b"PK\x01\x02")
    raw[at + 24:at + 28] = struct.pack("<I", 100)
    with pytest.raises(DrawingStoreError, match="images/a.png"):
        read_set(bytes(raw))


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def test_a_png_that_claims_a_huge_size_is_refused_from_its_header():
    ihdr = struct.pack(">IIBBBBB", 60000, 60000, 8, 6, 0, 0, 0)
    png = b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(b"\0" * 100)) \
        + _png_chunk(b"IEND", b"")
    data = _zip({"images/a.png": png}, "file,label\nimages/a.png,1\n")
    with pytest.raises(DrawingStoreError, match=r"images/a.png: .*at most 1024 pixels a side"):
        read_set(data)


def test_a_png_whose_pixels_fall_short_of_its_header_is_refused():
    png = _png(_pad(1))
    short = png[: len(png) // 2]
    data = _zip({"images/a.png": short}, "file,label\nimages/a.png,1\n")
    with pytest.raises(DrawingStoreError, match="images/a.png: cannot read"):
        read_set(data)


@pytest.mark.parametrize("data, says", [
    (b"", "not a zip"),
    (b"PK\x03\x04 garbage", "not a zip"),
    (_zip({"images/a.png": b"x"}), "no labels.csv"),
    (_zip({}, "name,digit\n"), "header file,label"),
    (_zip({}, "file,label\nimages/missing.png,3\n"), "row 2: 'images/missing.png' is not in the file"),
    (_zip({"run.py": b"import os"}, "file,label\n"), "neither labels.csv"),
    (_zip({"images/a.png": b"not a png"}, "file,label\nimages/a.png,4\n"), "images/a.png: cannot read"),
])
def test_other_malformed_sets_get_one_line(data, says):
    with pytest.raises(DrawingStoreError, match=says) as e:
        read_set(data)
    assert "\n" not in str(e.value)


def test_an_import_over_the_cap_keeps_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DRAWINGS_PER_PERSON", "2")
    data = _zip({f"images/{k}.png": _png(_pad(k)) for k in range(3)},
                "file,label\n" + "".join(f"images/{k}.png,{k}\n" for k in range(3)))
    with pytest.raises(DrawingStoreError, match="these 3"):
        import_set(tmp_path, data, owner="me")
    assert dr.list_drawings(tmp_path) == []


@settings(max_examples=150, deadline=None)
@given(st.binary(max_size=4096))
def test_any_bytes_are_read_or_refused_in_one_line(data):
    try:
        read_set(data)
    except DrawingStoreError as e:
        assert "\n" not in str(e)


@settings(max_examples=100, deadline=None)
@given(csv_text=st.text(max_size=300), png=st.binary(max_size=600))
def test_any_csv_and_member_are_read_or_refused_in_one_line(csv_text, png):
    data = _zip({"images/a.png": png}, csv_text)
    try:
        items = read_set(data)
    except DrawingStoreError as e:
        assert "\n" not in str(e)
    else:
        assert all(0 <= it.label <= 9 for it in items)
