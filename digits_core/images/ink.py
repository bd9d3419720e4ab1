"""Where the ink is: any picture of a digit (a canvas, a photo, a scan; RGBA, RGB or grey,
uint8 or float) -> an ink map (strokes 1, background 0), read at half size when it is a
canvas, with dust and single pen clicks dropped, and cropped to its extent. `drawing` then
remakes the ink the way a dataset was made.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digits_core.errors import DrawingError

MAX_SIDE = 1024  # larger images are first shrunk by an integer factor to at most this
MNIST_HALVE_FROM = 256  # the MNIST pipeline reads uint8 images this big (to MAX_SIDE) at half size,
DOT_SIZE = 0.04  # ink spanning less than this share of the canvas side is a speck
CLICK_SIZE = 0.15  # a round blob smaller than this share of the side is one pen click
NOT_ONE_DIGIT = ("this picture does not look like one digit: its marks are scattered specks (noise, "
                 "paper grain); draw one digit, or photograph one written large, dark on light")


def halve_canvas(image):
    """A uint8 image 256..MAX_SIDE px on its longer side as one grey channel (the alpha
    when it carries the strokes, else the luminance) at half size (2x2 means), else itself.

    The MNIST form needs a 20 px box; a canvas digit is at least 90 px tall, still 45 px at
    half size, and every later step looks at 4x fewer pixels (the canvas latency).
    """
    x = image if isinstance(image, np.ndarray) else None
    if x is None or x.dtype != np.uint8 or x.ndim not in (2, 3):
        return image
    side = max(x.shape[:2])
    if not MNIST_HALVE_FROM <= side <= MAX_SIDE:
        return image
    if x.ndim == 3:  # to one grey channel first, as ink_map would read it
        x = _grey_u8(x)
    h, w = x.shape[0] // 2 * 2, x.shape[1] // 2 * 2
    total = x[:h:2, :w:2].astype(np.uint16)
    total += x[1:h:2, :w:2]
    total += x[:h:2, 1:w:2]
    total += x[1:h:2, 1:w:2]
    return ((total + 2) // 4).astype(np.uint8)


def _grey_u8(x: np.ndarray) -> np.ndarray:
    """x (H, W, C) uint8 -> (H, W) uint8: the alpha when it carries the strokes (it varies
    by more than 25), else the luminance 0.299 R + 0.587 G + 0.114 B in integers."""
    words = _rgba_words(x)
    if x.shape[2] in (2, 4):
        if words is not None:  # alpha is each word's top byte: its range in two passes
            span = (int(words.max()) >> 24) - (int(words.min()) >> 24)
        else:
            span = int(x[..., -1].max()) - int(x[..., -1].min())
        if span > 25:
            return x[..., -1]
        if words is not None and not ((words ^ (words >> 8)) & 0xFFFF).any():
            return x[..., 0]  # R = G = B (the canvas's white on black): (77 + 150 + 29) R / 256 = R
        x = x[..., :-1]
    if x.shape[2] == 3:
        lum = x[..., 0].astype(np.uint16) * 77
        lum += x[..., 1].astype(np.uint16) * 150
        lum += x[..., 2].astype(np.uint16) * 29
        return ((lum + 128) >> 8).astype(np.uint8)
    return x[..., 0]


def _rgba_words(x: np.ndarray) -> np.ndarray | None:
    """A contiguous RGBA uint8 image (H, W, 4) as (H, W) uint32 words R | G << 8 | B << 16
    | A << 24 (no copy), so one pass reads all four channels; None for any other layout."""
    if x.ndim == 3 and x.shape[2] == 4 and x.dtype == np.uint8 and x.flags.c_contiguous and np.little_endian:
        return x.view(np.uint32)[..., 0]
    return None


def ink_map(image: np.ndarray) -> np.ndarray:
    """image (H, W[, C]) -> ink (H, W) float32 in 0..1: 1 on strokes, 0 on the background.

    Alpha that varies carries the strokes (a canvas with a transparent background);
    otherwise the ink is the luminance difference from the background, whose level is the
    median of the image border, so both light-on-dark and dark-on-light read the same.
    Then the strongest ink is stretched to 1 and faint marks (under a fifth of it: paper
    grain, shadows) become background; with no mark a fifth off the background, it is empty.
    """
    raw = np.asarray(image) if isinstance(image, np.ndarray) else None
    if raw is not None and raw.dtype == np.uint8 and raw.ndim == 2 and max(raw.shape) <= MAX_SIDE and raw.size:
        return _grey_ink_map(raw)  # a canvas read at half size comes here
    if raw is not None and raw.dtype == np.uint8 and raw.ndim == 3 and raw.shape[2] in (2, 4):
        # a canvas: look at the alpha before converting anything (most of the time in here)
        alpha = raw[..., -1]
        if int(alpha.max()) - int(alpha.min()) > 25:
            raw = raw[..., -1:]  # the strokes are in the alpha; the colours do not matter
    x = _as_float_image(image if raw is None else raw)
    ink = None
    if x.ndim == 3 and x.shape[2] in (2, 4):
        alpha = x[..., -1]
        if alpha.max() - alpha.min() > 0.1:
            ink = alpha
        x = x[..., :-1]
    elif raw is not None and x.ndim == 2 and raw.ndim == 3 and raw.shape[2] in (2, 4):
        ink = x  # the alpha alone, kept above
    if ink is None:
        if x.ndim == 3 and x.shape[2] == 3:
            lum = x @ np.array([0.299, 0.587, 0.114], np.float32)
        else:
            lum = x.reshape(x.shape[:2])
        ink = _off_background(lum, float(np.median(_border(lum))))
    ink = np.clip(ink, 0.0, 1.0)
    marks = ink[ink > MARK]
    top = float(np.percentile(marks, 90)) if marks.size else 0.0
    if top < 2 * MARK:
        return np.zeros(ink.shape, np.float32)
    return _stretched(ink, top)


MARK = 0.1  # ink this faint is not a mark; the strongest marks must reach twice it


def _off_background(lum, bg: float):
    """Ink as the luminance difference from the background level `bg`, light-on-dark or
    dark-on-light alike (not yet clipped to 0..1)."""
    if bg >= 0.5:
        return (bg - lum) / max(bg, 1e-3)
    return (lum - bg) / max(1.0 - bg, 1e-3)


def _stretched(ink, top: float):
    """Ink 0..1 stretched so `top` (the strong marks' level) reads 1 and a fifth of it 0."""
    floor = 0.2 * top
    return np.clip((ink - floor) / (top - floor), 0.0, 1.0).astype(np.float32)


_GREY_LEVELS = np.arange(256, dtype=np.uint8).astype(np.float32) / np.float32(255.0)


def _grey_ink_map(x: np.ndarray) -> np.ndarray:
    """`ink_map` of a uint8 grey image (H, W) (at most MAX_SIDE), the same numbers.

    Every step is a function of a pixel's grey level, so it runs on the 256 levels and one
    lookup paints the image; the 90th percentile of the marks comes from the levels'
    counts. (The canvas latency: a third of ink_map's time.)
    """
    levels = _GREY_LEVELS
    ink = np.clip(_off_background(levels, float(np.median(levels[_border(x)]))), 0.0, 1.0)
    counts = np.bincount(x.ravel(), minlength=256)
    marked = (ink > MARK) & (counts > 0)
    top = _percentile_90(ink[marked], counts[marked]) if marked.any() else 0.0
    if top < 2 * MARK:
        return np.zeros(x.shape, np.float32)
    return np.take(_stretched(ink, top), x)


def _percentile_90(values: np.ndarray, counts: np.ndarray) -> float:
    """np.percentile(np.repeat(values, counts), 90) for float32 `values`, the same number,
    from the counts (numpy's default linear method, as numpy 2.4 rounds it)."""
    order = np.argsort(values, kind="stable")
    values, ends = values[order], np.cumsum(counts[order])
    n = int(ends[-1])
    at = (n - 1) * 0.9  # the virtual index
    if at >= n - 1:
        return float(values[-1])
    k = int(np.floor(at))
    t = at - k
    a, b = values[np.searchsorted(ends, [k, k + 1], side="right")]
    diff = b - a  # float32, as numpy's lerp works in the array's type
    return float(b - diff * np.float32(1 - t) if t >= 0.5 else a + diff * np.float32(t))


# ------------------------------------------------------------------ the two datasets


def _as_float_image(image) -> np.ndarray:
    """Checks that `image` is an image and returns it as float32 in 0..1, shrunk by a whole
    factor when a side exceeds MAX_SIDE."""
    try:
        x = np.asarray(image)
    except Exception:
        raise DrawingError("the drawing is not an array of pixels") from None
    if x.dtype == bool:
        x = x.astype(np.uint8) * 255
    if not (np.issubdtype(x.dtype, np.integer) or np.issubdtype(x.dtype, np.floating)):
        raise DrawingError(f"the drawing must hold numbers, not {x.dtype}")
    if x.ndim == 3 and x.shape[2] == 1:
        x = x[..., 0]
    if x.ndim not in (2, 3) or (x.ndim == 3 and x.shape[2] not in (2, 3, 4)):
        raise DrawingError(
            f"a drawing is (H, W), (H, W, 3) or (H, W, 4); got an array of shape {x.shape}"
        )
    if x.size == 0:
        raise DrawingError(f"the drawing is empty (shape {x.shape})")
    if np.issubdtype(x.dtype, np.floating):
        if not np.isfinite(x).all():
            raise DrawingError("the drawing holds NaN or infinite values")
        scale = 1.0 if x.max() <= 1.0 else 255.0
    else:
        scale = 255.0 if x.max() <= 255 else float(np.iinfo(x.dtype).max)
    k = -(-max(x.shape[:2]) // MAX_SIDE)
    if k > 1:  # a 12-megapixel photo holds no more of a 20 px digit than a 1000 px copy
        if min(x.shape[:2]) < k:  # a strip thinner than one block (3x20000): stretch its edge
            x = np.pad(x, [(0, max(0, k - s)) for s in x.shape[:2]] + [(0, 0)] * (x.ndim - 2), "edge")
        h, w = x.shape[0] // k * k, x.shape[1] // k * k
        blocks = x[:h, :w].reshape(h // k, k, w // k, k, *x.shape[2:])
        return blocks.sum(axis=(1, 3), dtype=np.float32) / np.float32(scale * k * k)
    return x.astype(np.float32) / np.float32(scale)


def _border(a: np.ndarray) -> np.ndarray:
    """The outer ring of `a (H, W)`, 1/50 of the side thick (at least one pixel)."""
    t = max(1, min(a.shape) // 50)
    return np.concatenate([a[:t].ravel(), a[-t:].ravel(), a[:, :t].ravel(), a[:, -t:].ravel()])


def drop_specks(ink: np.ndarray) -> np.ndarray | None:
    """Remove dust far smaller than the drawing; None when nothing but a speck or a dot is left."""
    strong = ink > 0.5
    rows, cols = np.flatnonzero(strong.any(1)), np.flatnonzero(strong.any(0))
    if rows.size == 0:
        return None
    # the pieces are labelled inside the box that holds them all, often half the image
    box = np.s_[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]
    labels, n = ndimage.label(strong[box], structure=np.ones((3, 3)))
    areas = np.bincount(labels.ravel())[1:]
    small = np.flatnonzero(areas < 0.01 * areas.sum()) + 1
    if small.size:
        dust = np.zeros(strong.shape, bool)
        dust[box] = np.isin(labels, small)
        dust = ndimage.binary_dilation(dust, iterations=2)
        ink = np.where(dust, 0.0, ink).astype(np.float32)
        strong &= ~dust
        rows, cols = np.flatnonzero(strong.any(1)), np.flatnonzero(strong.any(0))
        if rows.size == 0:  # every mark is a speck: noise, grain, a photo of paper
            raise DrawingError(NOT_ONE_DIGIT)
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    side = max(ink.shape)
    if max(h, w) < max(2.0, DOT_SIZE * side):
        return None
    fill = strong.sum() / (h * w)
    if max(h, w) < CLICK_SIZE * side and max(h, w) < 1.5 * min(h, w) and fill > 0.6:
        return None  # a round blob the size of one pen click
    return ink


def crop(ink: np.ndarray) -> np.ndarray:
    """The bounding box of the ink: the strokes (over half strength) and their soft edge.

    MNIST's 20 px box holds a digit's anti-aliased edge too; on a small image (an MNIST
    digit itself) that edge is a whole pixel, on a canvas a fraction of one.
    """
    strong = ink > 0.5
    rows, cols = np.flatnonzero(strong.any(1)), np.flatnonzero(strong.any(0))
    r0, r1 = max(rows[0] - 2, 0), min(rows[-1] + 3, ink.shape[0])
    c0, c1 = max(cols[0] - 2, 0), min(cols[-1] + 3, ink.shape[1])
    window = ink[r0:r1, c0:c1]
    rows, cols = np.flatnonzero(window.any(1)), np.flatnonzero(window.any(0))
    return window[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


__all__ = ["CLICK_SIZE", "DOT_SIZE", "MAX_SIDE", "MNIST_HALVE_FROM", "NOT_ONE_DIGIT", "crop", "drop_specks", "halve_canvas", "ink_map"]
