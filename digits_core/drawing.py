"""Canvas drawings and image files -> the image a model trained on a dataset expects.

A drawing is remade the way its dataset was made, so a model sees numbers like its
training images:

- "mnist": crop to the ink, scale the longer side to 20 px keeping the aspect ratio
  (anti-aliased), place in a 28x28 frame with the centre of mass at pixel (14, 14), as
  LeCun et al. made MNIST from NIST's binary images. Strokes are kept as drawn unless their
  width falls outside the range MNIST's writers used, then redrawn at the nearest edge of
  that range (a 6 px pen on a full canvas or a 35 px pen on a small digit is outside it).
- "digits": scikit-learn's 8x8 set (UCI optdigits) came from NIST's normalised 32x32
  bitmaps: slant removed, stroke width normalised, the character fitted to the box keeping
  its aspect ratio, then on-pixels counted in 4x4 blocks (0..16). The drawing goes through
  the same steps; one whose count of on-pixels falls outside the set's range is redrawn
  with the pen that brings it to the nearest edge of that range.

The ink is the centre line of the strokes (a Zhang-Suen thinning) redrawn with a round
pen where a stroke width is imposed.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from .errors import ConfigError, DrawingError
from .strokes import stroke_width, thin

MNIST_BOX = 20  # longer side of the digit inside the 28x28 frame
MNIST_SIZE = 28
MNIST_CENTER = 14.0  # where MNIST put the centre of mass (row and column, pixel index)
MNIST_STROKE = (1.55, 3.25)  # 10th..90th percentile of MNIST's stroke widths, 28x28 pixels
DIGITS_BOX = 32  # the normalised bitmap the 8x8 blocks were counted on
DIGITS_INK = (261, 368)  # 5th..95th percentile of on-pixels in the 8x8 set's 32x32 bitmaps
WORK = 4  # working resolution of the 8x8 pipeline: this many pixels per output pixel
MNIST_WORK = 2  # the MNIST pipeline's: the stroke is measured on a 40 px copy of the crop
MAX_SIDE = 1024  # larger images are first shrunk by an integer factor to at most this
MNIST_HALVE_FROM = 256  # the MNIST pipeline reads uint8 images this big (to MAX_SIDE) at half size,
MNIST_HALF_CROP = 64  # when the ink there is at least this many px on its longer side
DOT_SIZE = 0.04  # ink spanning less than this share of the canvas side is a speck
CLICK_SIZE = 0.15  # a round blob smaller than this share of the side is one pen click
NARROW = 0.6  # canvas_views' second view: the 20 px box squeezed to this share of its width


def canvas_to_image(image: np.ndarray, dataset: str) -> np.ndarray | None:
    """A drawing as the dataset's model input, or None when nothing is drawn.

    image: (H, W, 4) RGBA, (H, W, 3) RGB or (H, W) grey; uint8 (0..255) or float (0..1).
    Light ink on a dark background, ink in the alpha channel, or dark ink on a light
    background are all recognised. Returns (28, 28) float32 in 0..255 for "mnist",
    (8, 8) float32 in 0..16 (integer counts) for "digits"; None for an empty canvas or a
    speck. Raises DrawingError when `image` is not an image, ConfigError for another dataset.
    """
    crop = _ink_crop(image, dataset)
    if crop is None:
        return None
    if dataset == "mnist":
        return _place_by_mass(_mnist_box(crop)) * np.float32(255.0)
    return _to_digits(crop)


def canvas_views(image: np.ndarray, dataset: str) -> np.ndarray | None:
    """The drawing as `canvas_to_image` gives it, and for "mnist" a second, narrower view:
    (V, H, W) float32, or None for an empty canvas. A reader unsure of the first view
    averages the model's log probabilities over all of them (`predict.read_views`).

    People draw on a canvas wider than MNIST's writers wrote on paper (a round 6 or a 1
    with a long flag fills the 20 px box sideways, and MNIST has few digits that wide): the
    second view is the same 20 px box narrowed to NARROW of its width, so a wide digit is
    also read in MNIST's proportions. Measured on the drawn sets (`scripts/eval_drawn.py`),
    it lifts the hard set's worst classes (1, 6) without costing the MNIST-writer set.
    """
    got = canvas_reading(image, dataset)
    if got is None:
        return None
    first, more = got
    return np.concatenate([first[None], more()])


def canvas_reading(image: np.ndarray, dataset: str):
    """(the first view (H, W), a function that makes the other views (V - 1, H, W)), or None
    for an empty canvas: a reader sure of the first view never pays for the others."""
    crop = _ink_crop(image, dataset)
    if crop is None:
        return None
    if dataset != "mnist":
        return _to_digits(crop), lambda: np.zeros((0, 8, 8), np.float32)
    box = _mnist_box(crop)
    scale = np.float32(255.0)
    return _place_by_mass(box) * scale, lambda: (_place_by_mass(_narrow(box, NARROW)) * scale)[None]


def _ink_crop(image, dataset: str) -> np.ndarray | None:
    """The drawing's ink (h, w) 0..1 cropped to its extent, or None when nothing is drawn."""
    if dataset not in ("mnist", "digits"):
        raise ConfigError(f"no drawing pipeline for dataset {dataset!r}; use mnist or digits")
    if dataset == "mnist":
        half = _halve_canvas(image)
        if half is not image:
            ink = _drop_specks(ink_map(half))
            if ink is not None:
                crop = _crop(ink)
                if max(crop.shape) >= MNIST_HALF_CROP:
                    return crop
            # a small drawing (or none): read it again at full size, as below
    ink = ink_map(image)
    ink = _drop_specks(ink)
    if ink is None:
        return None
    return _crop(ink)


def _narrow(box: np.ndarray, share: float) -> np.ndarray:
    """`box (h, w)` 0..1 squeezed sideways to `share` of its width (area-averaged)."""
    from PIL import Image

    h, w = box.shape
    width = max(1, round(w * share))
    if width == w:
        return box
    out = Image.fromarray(np.ascontiguousarray(box, np.float32), mode="F").resize((width, h), Image.Resampling.BOX)
    return np.clip(np.asarray(out, np.float32), 0.0, 1.0)


def _halve_canvas(image):
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
        bg = float(np.median(_border(lum)))
        if bg >= 0.5:
            ink = (bg - lum) / max(bg, 1e-3)
        else:
            ink = (lum - bg) / max(1.0 - bg, 1e-3)
    ink = np.clip(ink, 0.0, 1.0)
    marks = ink[ink > 0.1]
    top = float(np.percentile(marks, 90)) if marks.size else 0.0
    if top < 0.2:
        return np.zeros(ink.shape, np.float32)
    floor = 0.2 * top
    return np.clip((ink - floor) / (top - floor), 0.0, 1.0).astype(np.float32)


# ------------------------------------------------------------------ the two datasets


def _mnist_box(crop: np.ndarray) -> np.ndarray:
    """crop (h, w) ink 0..1 -> the digit in its 20 px box (longer side 20), 0..1, its
    stroke in MNIST's range (`_place_by_mass` puts it in the 28x28 frame).

    The stroke is measured on a copy of the crop only twice the size of the 20 px box, far
    cheaper than at the canvas's size; only a stroke out of MNIST's range is thinned and
    redrawn, at WORK pixels per output pixel (the centre line of a 2x copy is too jagged).
    """
    work = _resize(crop, MNIST_BOX * MNIST_WORK)
    mask = work > 0.5 * work.max()
    # a round pen p px wide measures p - 1 at any resolution; MNIST_STROKE was measured at
    # WORK px per pixel, where it reads 1/WORK px under the pen, here at MNIST_WORK per pixel
    width = (stroke_width(mask) + 1.0) / MNIST_WORK - 1.0 / WORK
    lo, hi = MNIST_STROKE
    if lo <= width <= hi:
        box = _resize(crop, MNIST_BOX)
    else:
        side = MNIST_BOX * WORK
        work = _resize(crop, side)
        skeleton = thin(work > 0.5 * work.max())
        pen = float(np.clip(width, lo, hi)) * WORK + 1.0  # a pen of p px measures p - 1
        box = _resize(_redraw(_line_points(skeleton), pen, side), MNIST_BOX)
    return box


def _to_digits(crop: np.ndarray) -> np.ndarray:
    """crop (h, w) ink 0..1 -> (8, 8) float32 counts 0..16 of on-pixels per 4x4 block.

    NIST normalised the amount of ink rather than the pen: every class of the 8x8 set
    has about the same number of on-pixels (a "1" is drawn fatter than an "8"). A drawing
    whose count falls outside the set's range is redrawn along its centre line with the
    pen that brings it to the nearest edge of that range.
    """
    side = DIGITS_BOX * WORK
    work = _resize(crop, side)
    mask = _deskew(work > 0.5 * work.max())
    bitmap = _fit_bitmap(mask.astype(np.float32))
    lo_ink, hi_ink = DIGITS_INK
    on = int(bitmap.sum())
    if not lo_ink <= on <= hi_ink:
        target = min(max(on, lo_ink), hi_ink)
        points = _line_points(thin(mask))
        lo, hi = 1.0, side / 2.0
        for _ in range(12):
            pen = (lo + hi) / 2
            bitmap = _fit_bitmap(_redraw(points, pen, side))
            on = int(bitmap.sum())
            if abs(on - target) <= 4:
                break
            lo, hi = (pen, hi) if on < target else (lo, pen)
    return _blocks(bitmap.astype(np.float32), 4) * np.float32(16.0)


def _fit_bitmap(ink: np.ndarray) -> np.ndarray:
    """ink (h, w) 0..1 fitted (aspect kept) and centred in the 32x32 box -> (32, 32) bool."""
    side = DIGITS_BOX * WORK
    ink = _resize(ink, side)
    frame = np.zeros((side, side), np.float32)
    h, w = ink.shape
    top, left = (side - h) // 2, (side - w) // 2
    frame[top : top + h, left : left + w] = ink
    return _blocks(frame, WORK) > 0.5  # each pixel on when half its area is ink


# ------------------------------------------------------------------ steps


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


def _drop_specks(ink: np.ndarray) -> np.ndarray | None:
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
    h, w = rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1
    side = max(ink.shape)
    if max(h, w) < max(2.0, DOT_SIZE * side):
        return None
    fill = strong.sum() / (h * w)
    if max(h, w) < CLICK_SIZE * side and max(h, w) < 1.5 * min(h, w) and fill > 0.6:
        return None  # a round blob the size of one pen click
    return ink


def _crop(ink: np.ndarray) -> np.ndarray:
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


def _resize(a: np.ndarray, longer: int) -> np.ndarray:
    """Scale `a (h, w)` so its longer side is `longer` px, keeping the aspect ratio.

    Shrinking averages the covered area (the anti-aliasing a scanner gives); growing is
    bilinear. Works on float images, so grey levels survive.
    """
    from PIL import Image

    h, w = a.shape
    s = longer / max(h, w)
    size = (max(1, round(w * s)), max(1, round(h * s)))
    if size == (w, h):
        return a.astype(np.float32)
    resample = Image.Resampling.BOX if s < 1 else Image.Resampling.BILINEAR
    out = Image.fromarray(np.ascontiguousarray(a, np.float32), mode="F").resize(size, resample)
    return np.clip(np.asarray(out, np.float32), 0.0, 1.0)


def _redraw(points: np.ndarray, pen: float, longer: int) -> np.ndarray:
    """The centre line `points (P, 2)` drawn with a round pen of `pen` px, anti-aliased.

    The line is scaled so that, pen included, the drawing's longer side is `longer` px;
    returns it cropped to the ink, (h, w) float32 in 0..1.
    """
    lo = points.min(0)
    span = float(np.ptp(points, 0).max())
    scale = max(longer - pen, 1.0) / max(span, 1.0)
    margin = pen / 2 + 2
    at = (points - lo) * scale + margin
    size = np.ceil(at.max(0) + margin).astype(int) + 1
    line = np.zeros(size, bool)
    r = np.round(at).astype(int)
    line[r[:, 0], r[:, 1]] = True
    dist = ndimage.distance_transform_edt(~line)
    return _crop(np.clip(pen / 2 + 0.5 - dist, 0.0, 1.0).astype(np.float32))


def _line_points(skeleton: np.ndarray) -> np.ndarray:
    """A one-pixel line as points (P, 2) (row, col): its pixels and the midpoints between
    neighbours, so that the line stays unbroken when scaled up to twice its size."""
    s = np.pad(skeleton, 1)
    h, w = skeleton.shape
    pts = [np.argwhere(skeleton).astype(np.float32)]
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        pairs = np.argwhere(skeleton & s[1 + dy : 1 + dy + h, 1 + dx : 1 + dx + w])
        pts.append(pairs + np.float32(0.5) * np.array([dy, dx], np.float32))
    return np.concatenate(pts)


def _deskew(mask: np.ndarray) -> np.ndarray:
    """Shear `mask (h, w)` horizontally so its principal axis is vertical (NIST removed slant)."""
    ys, xs = np.nonzero(mask)
    if len(ys) < 3:
        return mask
    dy, dx = ys - ys.mean(), xs - xs.mean()
    var_y = float((dy * dy).mean())
    if var_y < 1e-6:
        return mask
    slant = float(np.clip((dx * dy).mean() / var_y, -1.0, 1.0))
    h, w = mask.shape
    grow = int(np.ceil(abs(slant) * h / 2)) + 1
    padded = np.pad(mask.astype(np.float32), ((0, 0), (grow, grow)))
    cy = ys.mean()
    # output (r, c) samples input (r, c + slant * (r - cy)): each row slides by its offset
    matrix = np.array([[1.0, 0.0], [slant, 1.0]])
    offset = np.array([0.0, -slant * cy])
    out = ndimage.affine_transform(padded, matrix, offset=offset, order=1) > 0.5
    if not out.any():
        return mask
    rows, cols = np.flatnonzero(out.any(1)), np.flatnonzero(out.any(0))
    return out[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _place_by_mass(box: np.ndarray) -> np.ndarray:
    """Paste `box (h, w)` (h, w <= 20) into 28x28 with its centre of mass on pixel (14, 14).

    MNIST moved each digit by whole pixels, so its centres of mass lie up to half a pixel
    off; so do these. (Placing to a quarter pixel measured no better on drawings, and its
    faint edge row would break the 20x20 box.)
    """
    h, w = box.shape
    total = float(box.sum())
    cy = float((box.sum(1) * np.arange(h)).sum()) / total
    cx = float((box.sum(0) * np.arange(w)).sum()) / total
    top, left = int(round(MNIST_CENTER - cy)), int(round(MNIST_CENTER - cx))
    frame = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    r0, c0 = max(top, 0), max(left, 0)
    r1, c1 = min(top + h, MNIST_SIZE), min(left + w, MNIST_SIZE)
    frame[r0:r1, c0:c1] = box[r0 - top : r1 - top, c0 - left : c1 - left]
    return frame


def _blocks(a: np.ndarray, k: int) -> np.ndarray:
    """Mean over non-overlapping k x k blocks of `a (H, W)`, H and W multiples of k."""
    h, w = a.shape
    return a.reshape(h // k, k, w // k, k).mean(axis=(1, 3))
