"""Any picture is read or refused in one line: random noise (a photo of paper is noise to
the ink finder), animations, PNG metadata bombs, and any bytes or canvas value at all, through
the Draw page's way in (`load_image_file` -> `predict_canvas`) and the CLI's `predict`."""

import io
import struct
import subprocess
import sys
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image, PngImagePlugin
from repo_paths import REPO
from saved_runs import record

from digits_core.analysis.predict import predict_canvas
from digits_core.errors import DigitLabError, DrawingError
from digits_core.images.imagefile import load_image_file
from digits_core.store.pretrained import load_ready_made
from digits_core.store.runs import load_run

SOME = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                        HealthCheck.function_scoped_fixture])


def png(img: Image.Image, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", **kw)
    return buf.getvalue()


def noise(side: int = 280, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (side, side), dtype=np.uint8)


def chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def with_chunk(image_png: bytes, kind: bytes, data: bytes) -> bytes:
    """`image_png` with one more chunk right after its header (IHDR)."""
    end_of_ihdr = 8 + 8 + 13 + 4
    return image_png[:end_of_ihdr] + chunk(kind, data) + image_png[end_of_ihdr:]


@pytest.fixture(scope="module")
def readers(tiny_job, tmp_path_factory):
    """A run on the bundled digits and the ready-made MNIST model: both ways a drawing is read."""
    return [load_run(record(tiny_job, tmp_path_factory.mktemp("runs"))), load_ready_made()]


def read_or_refuse(run, rgba) -> str:
    """The reading's message, or the one-line refusal; any other exception fails the test."""
    try:
        return predict_canvas(run, rgba).message
    except DrawingError as e:
        assert "\n" not in str(e) and str(e)
        return str(e)


@pytest.mark.parametrize("layout", ["grey", "rgb", "rgba opaque", "rgba noisy alpha"])
def test_a_picture_of_noise_is_said_not_to_look_like_one_digit(readers, layout):
    grey = noise()
    rgba = {"grey": grey, "rgb": np.dstack([grey] * 3),
            "rgba opaque": np.dstack([grey] * 3 + [np.full_like(grey, 255)]),
            "rgba noisy alpha": np.dstack([grey] * 3 + [noise(seed=1)])}[layout]
    for run in readers:
        with pytest.raises(DrawingError, match="does not look like one digit"):
            predict_canvas(run, rgba)


def test_an_uploaded_png_of_noise_is_read_then_refused_in_one_line(readers):
    rgba = load_image_file(png(Image.fromarray(noise())))
    for run in readers:
        assert "does not look like one digit" in read_or_refuse(run, rgba)


def test_predict_on_the_command_line_says_so_too(tmp_path):
    path = tmp_path / "noise.png"
    path.write_bytes(png(Image.fromarray(noise())))
    r = subprocess.run([sys.executable, "-m", "digits_core", "predict", str(path)],
                       capture_output=True, text=True, cwd=REPO, timeout=300, check=False)
    assert "Traceback" not in r.stderr, r.stderr
    lines = (r.stdout + r.stderr).strip().splitlines()
    assert len(lines) == 1 and "does not look like one digit" in lines[0], lines


def test_an_animation_is_refused_before_its_frames_are_decoded():
    frames = [Image.new("L", (4000, 4000)), Image.new("L", (4000, 4000), 255)]
    data = png(frames[0], save_all=True, append_images=frames[1:])
    assert len(data) < 5 * 2**20
    with pytest.raises(DrawingError, match="animation of 2 frames") as e:
        load_image_file(data)
    assert "one frame" in str(e.value)


@pytest.mark.parametrize("kind, payload", ids=["zTXt", "iCCP", "iTXt"], argvalues=[
    (b"zTXt", b"Comment\x00\x00" + zlib.compress(b"a" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), 9)),
    (b"iCCP", b"icc\x00\x00" + zlib.compress(b"\x00" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), 9)),
    (b"iTXt", b"Comment\x00\x01\x00\x00\x00" + zlib.compress(b"a" * (PngImagePlugin.MAX_TEXT_CHUNK + 1), 9)),
])
def test_a_metadata_bomb_is_refused_in_a_persons_words(kind, payload):
    data = with_chunk(png(Image.fromarray(noise(28))), kind, payload)
    with pytest.raises(DrawingError) as e:
        load_image_file(data)
    assert "its metadata is too large to read safely" in str(e.value)
    assert "MAX_TEXT_CHUNK" not in str(e.value) and "\n" not in str(e.value)


def test_many_text_chunks_that_add_up_are_refused_the_same_way():
    one = b"Comment\x00\x00" + zlib.compress(b"a" * (PngImagePlugin.MAX_TEXT_CHUNK // 2), 9)
    data = png(Image.fromarray(noise(28)))
    for _ in range(PngImagePlugin.MAX_TEXT_MEMORY // (PngImagePlugin.MAX_TEXT_CHUNK // 2) + 2):
        data = with_chunk(data, b"zTXt", one)
    with pytest.raises(DrawingError, match="its metadata is too large to read safely"):
        load_image_file(data)


SEEDS = [png(Image.fromarray(noise(40))), png(Image.fromarray(noise(40)).convert("RGBA")),
         png(Image.new("L", (40, 40)), save_all=True, append_images=[Image.new("L", (40, 40), 9)]),
         with_chunk(png(Image.fromarray(noise(20))), b"zTXt", b"k\x00\x00" + zlib.compress(b"a" * 5000))]


@st.composite
def mutated(draw, seed: bytes) -> bytes:
    b = bytearray(seed)
    for _ in range(draw(st.integers(0, 4))):
        at = draw(st.integers(0, max(len(b) - 1, 0)))
        if draw(st.booleans()):
            b[at:at + 1] = bytes([draw(st.integers(0, 255))])
        else:
            del b[at:]
    return bytes(b)


@SOME
@given(data=st.one_of(st.binary(max_size=300), *[mutated(s) for s in SEEDS]))
def test_any_bytes_as_an_image_are_read_and_read_as_a_drawing_or_refused_in_one_line(readers, data):
    try:
        rgba = load_image_file(data)
    except DigitLabError as e:
        assert "\n" not in str(e) and str(e)
        return
    for run in readers:
        read_or_refuse(run, rgba)


@SOME
@given(seed=st.integers(0, 2**32 - 1), side=st.integers(1, 300), ink=st.floats(0.0, 1.0),
       alpha=st.sampled_from(["opaque", "clear", "noise", "strokes"]))
def test_any_canvas_value_gets_a_reading_or_a_one_line_refusal(readers, seed, side, ink, alpha):
    """A canvas value is whatever the browser sends: noise of any density, any alpha."""
    rng = np.random.default_rng(seed)
    grey = np.where(rng.random((side, side)) < ink, rng.integers(0, 256, (side, side)), 0).astype(np.uint8)
    a = {"opaque": np.full_like(grey, 255), "clear": np.zeros_like(grey), "noise": rng.integers(0, 256, grey.shape),
         "strokes": grey}[alpha].astype(np.uint8)
    rgba = np.dstack([grey, grey, grey, a])
    for run in readers:
        read_or_refuse(run, rgba)
