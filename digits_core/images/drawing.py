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

Finding the ink in a picture is `ink`'s part; where a stroke width is imposed here, the
ink is the centre line of the strokes (a Zhang-Suen thinning) redrawn with a round pen.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from digits_core.errors import ConfigError
from digits_core.images.ink import crop as _crop
from digits_core.images.ink import drop_specks as _drop_specks
from digits_core.images.ink import halve_canvas as _halve_canvas
from digits_core.images.ink import ink_map
from digits_core.images.strokes import stroke_width, thin

MNIST_BOX = 20  # longer side of the digit inside the 28x28 frame
MNIST_SIZE = 28
MNIST_CENTER = 14.0  # where MNIST put the centre of mass (row and column, pixel index)
MNIST_STROKE = (1.55, 3.25)  # 10th..90th percentile of MNIST's stroke widths, 28x28 pixels
DIGITS_BOX = 32  # the normalised bitmap the 8x8 blocks were counted on
DIGITS_INK = (261, 368)  # 5th..95th percentile of on-pixels in the 8x8 set's 32x32 bitmaps
WORK = 4  # working resolution of the 8x8 pipeline: this many pixels per output pixel
MNIST_WORK = 2  # the MNIST pipeline's: the stroke is measured on a 40 px copy of the crop
MNIST_HALF_CROP = 64  # a canvas is read at half size (ink.halve_canvas) when its ink there is this many px long
NARROW = 0.6  # canvas_views' second view: the 20 px box squeezed to this share of its width
NO_INK = "no ink"  # canvas_reading: nothing drawn at all
SPECK = "a speck"  # canvas_reading: only a dot or dust, too small to read


def canvas_to_image(image: np.ndarray, dataset: str) -> np.ndarray | None:
    """A drawing as the dataset's model input, or None when nothing is drawn.

    image: (H, W, 4) RGBA, (H, W, 3) RGB or (H, W) grey; uint8 (0..255) or float (0..1).
    Light ink on a dark background, ink in the alpha channel, or dark ink on a light
    background are all recognised. Returns (28, 28) float32 in 0..255 for "mnist",
    (8, 8) float32 in 0..16 (integer counts) for "digits"; None for an empty canvas or a
    speck. Raises DrawingError when `image` is not an image, ConfigError for another dataset.
    """
    got = canvas_reading(image, dataset)
    return None if isinstance(got, str) else got[0]


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
    if isinstance(got, str):
        return None
    first, more = got
    return np.concatenate([first[None], more()])


def canvas_reading(image: np.ndarray, dataset: str):
    """(the first view (H, W), a function that makes the other views (V - 1, H, W)), or why
    there is nothing to read (NO_INK, or SPECK for a dot or dust): a reader sure of the
    first view never pays for the others."""
    crop = _ink_crop(image, dataset)
    if isinstance(crop, str):
        return crop
    if dataset != "mnist":
        image = _to_digits(crop)
        return image, lambda: np.zeros((0, *image.shape), np.float32)
    box = _mnist_box(crop)
    scale = np.float32(255.0)
    return _place_by_mass(box) * scale, lambda: (_place_by_mass(_narrow(box, NARROW)) * scale)[None]


def _ink_crop(image, dataset: str) -> np.ndarray | str:
    """The drawing's ink (h, w) 0..1 cropped to its extent, or NO_INK / SPECK."""
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
    kept = _drop_specks(ink)
    if kept is None:
        return SPECK if (ink > 0.5).any() else NO_INK
    return _crop(kept)


def _narrow(box: np.ndarray, share: float) -> np.ndarray:
    """`box (h, w)` 0..1 squeezed sideways to `share` of its width (area-averaged)."""
    h, w = box.shape
    return _resize_to(box, (max(1, round(w * share)), h))


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


def _resize(a: np.ndarray, longer: int) -> np.ndarray:
    """Scale `a (h, w)` so its longer side is `longer` px, keeping the aspect ratio.

    Shrinking averages the covered area (the anti-aliasing a scanner gives); growing is
    bilinear. Works on float images, so grey levels survive.
    """
    h, w = a.shape
    s = longer / max(h, w)
    return _resize_to(a, (max(1, round(w * s)), max(1, round(h * s))))


def _resize_to(a: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """`a (h, w)` 0..1 resampled to `size` (width, height): area-averaged where it shrinks
    (as a scanner anti-aliases), bilinear where it grows; float32 in 0..1."""
    from PIL import Image

    h, w = a.shape
    if size == (w, h):
        return a.astype(np.float32)
    resample = Image.Resampling.BOX if size[0] * size[1] < w * h else Image.Resampling.BILINEAR
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
