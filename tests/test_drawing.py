"""digits_core.images.drawing and digits_core.images.augment: canvas drawings -> model inputs, and the
training-time distortions. Fast and deterministic: synthetic strokes, scikit-learn's
bundled digits, no MNIST files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from drawn_digits import to_rgba
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image
from scipy import ndimage

from digits_core.errors import ConfigError, DrawingError
from digits_core.images.augment import augment_batch
from digits_core.images.drawing import MNIST_STROKE, canvas_to_image, stroke_width
from digits_core.images.imagefile import load_image_file
from digits_core.images.ink import _percentile_90, ink_map

STYLES = ("white-on-black", "white-on-transparent", "dark-on-transparent", "dark-on-white")


def pen_drawing(points, pen: float, size: int = 280) -> np.ndarray:
    """A polyline through `points` [(row, col), ...] drawn with a round pen: (size, size) 0..1."""
    line = np.zeros((size, size), bool)
    for (r0, c0), (r1, c1) in zip(points[:-1], points[1:]):
        t = np.linspace(0, 1, 4 * int(np.hypot(r1 - r0, c1 - c0)) + 2)
        rows, cols = np.round(r0 + (r1 - r0) * t), np.round(c0 + (c1 - c0) * t)
        line[rows.astype(int), cols.astype(int)] = True
    dist = ndimage.distance_transform_edt(~line)
    return np.clip(pen / 2 + 0.5 - dist, 0, 1)


def seven(top: float, left: float, height: float, pen: float = 16) -> np.ndarray:
    """A "7" with a crossbar: `height` px tall with its box's top-left corner at (top, left)."""
    w = 0.7 * height
    pts = [(top, left), (top, left + w), (top + height, left + 0.3 * w)]
    bar = [(top + 0.5 * height, left + 0.25 * w), (top + 0.5 * height, left + 0.75 * w)]
    return np.maximum(pen_drawing(pts, pen), pen_drawing(bar, pen))


def zero(cy: float, cx: float, height: float, pen: float = 16) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, 200)
    pts = list(zip(cy + height / 2 * np.sin(a), cx + 0.35 * height * np.cos(a)))
    return pen_drawing(pts, pen)


def distance(a: np.ndarray, b: np.ndarray) -> float:
    """Mean absolute difference, allowing the one-pixel jitter of MNIST's own centring."""
    return min(
        float(np.abs(np.roll(a, (dy, dx), axis=(0, 1)) - b).mean())
        for dy in (-1, 0, 1)
        for dx in (-1, 0, 1)
    )


def centre_of_mass(img: np.ndarray) -> tuple[float, float]:
    r, c = np.mgrid[: img.shape[0], : img.shape[1]]
    return float((img * r).sum() / img.sum()), float((img * c).sum() / img.sum())


# ------------------------------------------------------------------ empty, specks, bad input


@pytest.mark.parametrize("style", ["white-on-black", "white-on-transparent", "dark-on-white"])
def test_empty_canvas_is_none(style):
    assert canvas_to_image(to_rgba(np.zeros((280, 280)), style), "mnist") is None
    assert canvas_to_image(to_rgba(np.zeros((280, 280)), style), "digits") is None


def test_specks_and_single_clicks_are_none():
    speck = np.zeros((280, 280))
    speck[100:104, 50:53] = 1
    assert canvas_to_image(to_rgba(speck, "white-on-black"), "mnist") is None
    click = pen_drawing([(140, 140), (140, 140)], pen=30)  # one click of a fat pen
    assert canvas_to_image(to_rgba(click, "white-on-black"), "mnist") is None
    assert canvas_to_image(to_rgba(click, "dark-on-transparent"), "digits") is None


def test_dust_beside_a_digit_is_ignored():
    clean = seven(60, 60, 150)
    dusty = clean.copy()
    dusty[5:8, 270:273] = 1  # a stray speck far from the digit would otherwise widen the box
    a = canvas_to_image(to_rgba(clean, "white-on-black"), "mnist")
    b = canvas_to_image(to_rgba(dusty, "white-on-black"), "mnist")
    assert np.abs(a - b).max() < 1


def test_faint_noise_on_paper_is_empty():
    rng = np.random.default_rng(0)
    paper = 235 + rng.normal(0, 3, (200, 300, 3))
    assert canvas_to_image(paper.clip(0, 255).astype(np.uint8), "mnist") is None


@pytest.mark.parametrize(
    "bad",
    [
        np.zeros((0, 0)),
        np.zeros((10, 0, 4)),
        np.zeros(280),
        np.zeros((2, 280, 280, 4)),
        np.zeros((280, 280, 5)),
        np.array([["a", "b"], ["c", "d"]]),
        np.full((28, 28), np.nan),
        [[object(), object()]],
    ],
    ids=["zero-size", "zero-width", "1d", "4d", "5-channels", "strings", "nan", "objects"],
)
def test_arrays_that_are_not_images_raise(bad):
    with pytest.raises(DrawingError):
        canvas_to_image(bad, "mnist")


def test_unknown_dataset_raises():
    with pytest.raises(ConfigError):
        canvas_to_image(np.zeros((28, 28)), "cifar")


def test_load_image_file_reads_rgba(tmp_path):
    ink = seven(40, 40, 200)
    path = tmp_path / "seven.png"
    Image.fromarray(to_rgba(ink, "dark-on-white")[..., :3]).save(path)
    rgba = load_image_file(path)
    assert rgba.shape == (280, 280, 4) and rgba.dtype == np.uint8
    assert (rgba[..., 3] == 255).all()
    out = canvas_to_image(rgba, "mnist")
    assert out is not None and out.shape == (28, 28)


@pytest.mark.parametrize(
    "content", [b"", b"not an image at all", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR"]
)
def test_corrupt_files_raise_drawing_error(tmp_path, content):
    path = tmp_path / "broken.png"
    path.write_bytes(content)
    with pytest.raises(DrawingError) as e:
        load_image_file(path)
    assert "\n" not in str(e.value)


def test_truncated_png_raises_drawing_error(tmp_path):
    path = tmp_path / "cut.png"
    Image.fromarray((seven(40, 40, 200) * 255).astype(np.uint8)).save(path)
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(DrawingError):
        load_image_file(path)


def test_missing_file_raises_drawing_error(tmp_path):
    with pytest.raises(DrawingError):
        load_image_file(tmp_path / "nope.png")


# ------------------------------------------------------------------ the MNIST form


@pytest.mark.parametrize("dataset", ["mnist", "digits"])
def test_same_drawing_in_every_style_gives_the_same_input(dataset):
    ink = seven(50, 70, 180)
    outs = [
        canvas_to_image(to_rgba(ink, style), dataset)
        for style in STYLES
    ]
    outs.append(canvas_to_image((ink * 255).astype(np.uint8), dataset))  # grey, light ink
    outs.append(canvas_to_image(to_rgba(ink, "dark-on-white")[..., :3], dataset))  # RGB photo-like
    top = 255 if dataset == "mnist" else 16
    for out in outs[1:]:
        assert np.abs(out - outs[0]).max() <= 0.05 * top


@pytest.mark.parametrize(
    "top, left, height, pen",
    [(10, 10, 100, 8), (150, 160, 110, 30), (5, 60, 270, 12), (100, 20, 60, 6), (40, 90, 200, 35)],
)
def test_mnist_output_is_framed_like_mnist_wherever_and_however_drawn(top, left, height, pen):
    out = canvas_to_image(to_rgba(seven(top, left, height, pen), "white-on-black"), "mnist")
    assert out.shape == (28, 28) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 255 and out.max() > 200
    rows, cols = np.flatnonzero(out.max(1) > 0), np.flatnonzero(out.max(0) > 0)
    assert rows[-1] - rows[0] + 1 <= 20 and cols[-1] - cols[0] + 1 <= 20
    assert max(rows[-1] - rows[0], cols[-1] - cols[0]) + 1 >= 19  # the longer side is ~20
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5


def test_mnist_output_barely_depends_on_position_size_and_pen():
    ref = canvas_to_image(to_rgba(zero(140, 140, 200, 20), "white-on-black"), "mnist")
    far = distance(canvas_to_image(to_rgba(seven(40, 60, 200, 20), "white-on-black"), "mnist"), ref)
    places = [(60, 70, 90), (200, 190, 140), (140, 140, 260), (100, 200, 120), (50, 50, 60)]
    for cy, cx, h in places:
        out = canvas_to_image(to_rgba(zero(cy, cx, h, pen=0.1 * h), "white-on-black"), "mnist")
        assert distance(out, ref) < 0.15 * far  # anywhere, any size: the same input
    pens = [(60, 70, 90, 8), (200, 190, 140, 24), (140, 140, 260, 6), (140, 140, 260, 30)]
    for cy, cx, h, pen in pens:
        out = canvas_to_image(to_rgba(zero(cy, cx, h, pen), "white-on-black"), "mnist")
        assert distance(out, ref) < 0.6 * far  # another pen: still far closer than a 7


def test_mnist_stroke_width_stays_within_mnist_range():
    """A hairline on a big digit and a fat pen on a small one both come out MNIST-like."""
    hairline = canvas_to_image(to_rgba(zero(140, 140, 260, pen=4), "white-on-black"), "mnist")
    fat_pen = canvas_to_image(to_rgba(zero(140, 140, 90, pen=35), "white-on-black"), "mnist")
    as_drawn = canvas_to_image(to_rgba(zero(140, 140, 200, pen=20), "white-on-black"), "mnist")
    widths = []
    for out in (hairline, fat_pen, as_drawn):
        big = ndimage.zoom(out / 255, 4, order=1) > 0.5
        widths.append(stroke_width(big) / 4)
    lo, hi = MNIST_STROKE
    assert lo - 0.3 <= widths[0] <= lo + 0.6  # thickened to MNIST's thinnest
    assert hi - 0.6 <= widths[1] <= hi + 0.3  # thinned to MNIST's fattest
    assert lo < widths[2] < hi  # a width MNIST's writers use is left as drawn
    assert hairline.max() > 200  # and a hairline is not left faint


def test_a_real_mnist_like_image_passes_through_nearly_unchanged():
    """An image already in MNIST form (28x28, 20 px box, centred) is left almost alone."""
    img = canvas_to_image(to_rgba(zero(140, 140, 200, 20), "white-on-black"), "mnist")
    again = canvas_to_image(img.astype(np.uint8), "mnist")
    assert np.abs(again - img).mean() < 8


# ------------------------------------------------------------------ the 8x8 form


def test_digits_output_is_8x8_counts():
    out = canvas_to_image(to_rgba(seven(30, 50, 220), "white-on-black"), "digits")
    assert out.shape == (8, 8) and out.dtype == np.float32
    assert out.min() >= 0 and out.max() <= 16
    assert np.array_equal(out, np.round(out))
    assert 240 <= out.sum() <= 390  # the on-pixel count of the 8x8 set's bitmaps


@pytest.fixture(scope="module")
def sklearn_digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.images, d.target


def upscaled_drawing(img8: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """An 8x8 digit enlarged (bicubic) to 120..260 px and put anywhere on a 280x280 canvas."""
    side = int(rng.integers(120, 261))
    big = Image.fromarray((img8 / 16 * 255).astype(np.uint8)).resize((side, side), Image.BICUBIC)
    canvas = np.zeros((280, 280), np.uint8)
    r, c = rng.integers(0, 280 - side + 1, 2)
    canvas[r : r + side, c : c + side] = np.asarray(big)
    return to_rgba(canvas / 255.0, "white-on-black")


def test_drawn_sklearn_digits_round_trip(sklearn_digits):
    """Enlarged 8x8 digits, drawn back through the pipeline, are read like the originals."""
    from sklearn.svm import SVC

    images, labels = sklearn_digits
    rng = np.random.default_rng(0)
    order = rng.permutation(len(images))
    train, test = order[:1400], order[1400:1600]
    clf = SVC(gamma=0.001, C=10).fit(images[train].reshape(len(train), -1), labels[train])
    drawn = np.stack([canvas_to_image(upscaled_drawing(images[i], rng), "digits") for i in test])
    acc = (clf.predict(drawn.reshape(len(drawn), -1)) == labels[test]).mean()
    assert acc >= 0.93
    ink = drawn.sum((1, 2))
    ref = images.sum((1, 2))
    assert abs(ink.mean() - ref.mean()) < 0.15 * ref.mean()
    assert ink.std() < 2 * ref.std()


# ------------------------------------------------------------------ augmentation


@pytest.fixture(scope="module")
def batch():
    inks = [seven(40, 60, 200, pen) for pen in (8, 16, 24)]
    inks += [zero(140, 140, 200, pen) for pen in (8, 16, 24)]
    imgs = [canvas_to_image(to_rgba(ink, "white-on-black"), "mnist") for ink in inks]
    return torch.from_numpy(np.stack(imgs) / 255.0).float().unsqueeze(1)


def test_augment_keeps_shape_dtype_and_range(batch):
    out = augment_batch(batch, torch.Generator().manual_seed(0))
    assert out.shape == batch.shape and out.dtype == batch.dtype
    assert out is not batch and out.min() >= -1e-6 and out.max() <= 1 + 1e-6


def test_augment_is_deterministic_given_the_generator(batch):
    a = augment_batch(batch, torch.Generator().manual_seed(3))
    b = augment_batch(batch, torch.Generator().manual_seed(3))
    c = augment_batch(batch, torch.Generator().manual_seed(4))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_augment_changes_images_but_keeps_their_ink(batch):
    big = batch.repeat(20, 1, 1, 1)
    out = augment_batch(big, torch.Generator().manual_seed(0))
    changed = (out - big).abs().mean((1, 2, 3))
    assert (changed > 0.01).float().mean() > 0.9
    ratio = out.sum((1, 2, 3)) / big.sum((1, 2, 3))
    assert ratio.min() > 0.4 and ratio.max() < 3.5 and 0.85 < ratio.mean() < 1.4


def test_augment_strength_zero_is_identity_and_background_is_kept(batch):
    assert torch.equal(augment_batch(batch, torch.Generator(), strength=0), batch)
    shifted = batch * 2 - 1  # background at -1, as a standardised batch might have it
    out = augment_batch(shifted, torch.Generator().manual_seed(0))
    corners = out[:, :, :2, :2]
    assert torch.allclose(corners, torch.full_like(corners, -1.0))


def test_augment_works_on_8x8(sklearn_digits):
    images, _ = sklearn_digits
    x = torch.from_numpy(images[:64] / 16.0).float().unsqueeze(1)
    out = augment_batch(x, torch.Generator().manual_seed(0))
    assert out.shape == x.shape
    ratio = out.sum((1, 2, 3)) / x.sum((1, 2, 3))
    assert ratio.min() > 0.4 and ratio.max() < 2.5


def test_augment_refuses_a_wrong_shape():
    with pytest.raises(ValueError):
        augment_batch(torch.zeros(4, 28, 28), torch.Generator())


# ---- a drawing's views (canvas_views) and reading them (predict.read_views) ----


def test_views_start_with_the_canvas_image_and_add_a_narrower_one():
    from digits_core.images.drawing import NARROW, canvas_views

    rgba = zero(140, 140, 200)
    views = canvas_views(rgba, "mnist")
    assert views.shape == (2, 28, 28) and views.dtype == np.float32
    np.testing.assert_array_equal(views[0], canvas_to_image(rgba, "mnist"))
    widths = [np.ptp(np.flatnonzero(v.max(0) > 0)) + 1 for v in views]
    assert abs(widths[1] - NARROW * widths[0]) <= 1.5, widths
    heights = [np.ptp(np.flatnonzero(v.max(1) > 0)) + 1 for v in views]
    assert heights[0] == heights[1]  # only the width changes
    assert np.allclose(centre_of_mass(views[1]), (14, 14), atol=0.5)
    assert abs(views[1].sum() / views[0].sum() - NARROW) < 0.05  # area-averaged: ink kept in proportion


def test_views_of_an_empty_canvas_and_of_an_8x8_drawing():
    from digits_core.images.drawing import canvas_views

    assert canvas_views(np.zeros((280, 280, 4), np.uint8), "mnist") is None
    rgba = seven(40, 60, 180)
    views = canvas_views(rgba, "digits")
    assert views.shape == (1, 8, 8)
    np.testing.assert_array_equal(views[0], canvas_to_image(rgba, "digits"))


def test_a_drawing_is_read_from_its_first_view_when_sure_else_from_every_view():
    from hard_drawn_digits import make_hard_set

    from digits_core.analysis.predict import SURE_ALONE, predict_canvas, read_views
    from digits_core.images.drawing import canvas_views
    from digits_core.store.pretrained import load_ready_made

    run = load_ready_made()
    drawings = [rgba for rgba, _, _ in make_hard_set(seed=5, n=60)]
    views = np.stack([canvas_views(d, "mnist") for d in drawings])  # (60, 2, 28, 28)
    probs = read_views(run, views)
    assert probs.shape == (60, 10) and np.allclose(probs.sum(1), 1, atol=1e-5)
    each = run.model.probs(run.normalizer(views.reshape(120, 28, 28))).reshape(60, 2, 10).astype(np.float64)
    sure = each[:, 0].max(1) >= SURE_ALONE
    assert 0 < sure.sum() < 60  # both cases are in this sample
    mean = np.sqrt(each[:, 0] * each[:, 1])
    want = np.where(sure[:, None], each[:, 0], mean / mean.sum(1, keepdims=True))
    np.testing.assert_allclose(probs, want, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(read_views(run, views[7]), probs[7], rtol=1e-5, atol=1e-9)  # one drawing (alone: the NumPy pass)
    for i, d in enumerate(drawings[:30]):  # the Draw page reads exactly as the evaluation does
        p = predict_canvas(run, d)
        np.testing.assert_allclose(p.probs, probs[i], rtol=1e-4, atol=1e-6)
        assert len(p.views) == (1 if sure[i] else 2) and p.digit == int(probs[i].argmax())
        np.testing.assert_array_equal(p.image, canvas_to_image(d, "mnist"))


# ------------------------------------------------------------------ the grey fast path


@st.composite
def grey_pictures(draw):
    """uint8 grey images: noise, a light or dark background with strokes, blank ones."""
    h, w = draw(st.integers(1, 60)), draw(st.integers(1, 60))
    kind = draw(st.sampled_from(["any", "strokes", "flat"]))
    if kind == "any":
        return draw(arrays(np.uint8, (h, w)))
    bg = draw(st.integers(0, 255))
    x = np.full((h, w), bg, np.uint8)
    if kind == "strokes":
        rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
        ink = rng.integers(0, 256, size=(h, w)).astype(np.uint8)
        x = np.where(rng.random((h, w)) < draw(st.floats(0, 1)), ink, x).astype(np.uint8)
    return x


@settings(max_examples=300, deadline=None)
@given(grey_pictures(), st.booleans())
def test_grey_ink_map_gives_the_general_paths_numbers(x, strided):
    """A uint8 grey image takes a lookup-table path (the canvas latency); the same picture as
    uint16 takes the general float path: every number must match exactly."""
    if strided:
        x = x[::-1, ::2]
    fast = ink_map(x)
    general = ink_map(x.astype(np.uint16))  # same grey levels, read by the float path
    assert fast.dtype == general.dtype == np.float32
    assert fast.shape == x.shape
    np.testing.assert_array_equal(fast, general)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1, width=32), st.integers(1, 400)), min_size=1, max_size=40))
def test_percentile_from_counts_is_numpys(pairs):
    values = np.array([v for v, _ in pairs], np.float32)
    counts = np.array([c for _, c in pairs])
    expected = float(np.percentile(np.repeat(values, counts), 90))
    assert _percentile_90(values, counts) == expected
