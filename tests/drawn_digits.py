"""Synthetic canvas drawings of real handwritten digits, for measuring the drawing pipeline.

Each digit's centre line (a thinning of the 28x28 image) is redrawn as pen strokes on a
280x280 canvas the way a person draws with a mouse: the digit 30..95 % of the canvas high,
anywhere on it, slanted up to 15 degrees, a little wobble, with a round pen of 6..35 px but
never wider than 16 % of the digit's height (a fat pen on a small digit fills its loops
and nobody could read it; MNIST's strokes are 7..16 % of the height).
Most come out as the Streamlit canvas sends them (white strokes on black, or on a
transparent background), some as dark ink whose alpha carries the strokes.

Independent of digits_core on purpose: the set must not share code with what it measures.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

CANVAS = 280
PEN = (6.0, 35.0)  # round pen width in canvas pixels, drawn log-uniformly
HEIGHT = (0.30, 0.95)  # ink height as a share of the canvas side
PEN_SHARE = 0.16  # at most this share of the digit's height: fatter fills the loops (illegible)
SLANT_DEG = 15.0  # shear angle, either way
ROTATE_DEG = 5.0  # small rotation on top of the slant
WOBBLE = 0.015  # smooth hand wobble, as a share of the digit height
STYLES = ("white-on-black", "white-on-transparent", "dark-on-transparent")
STYLE_SHARE = (0.6, 0.2, 0.2)
UPSAMPLE = 4  # the centre line is found on a 4x upsampled digit


def make_drawn_set(
    images: np.ndarray, labels: np.ndarray, seed: int, n: int
) -> list[tuple[np.ndarray, int]]:
    """n drawings of digits picked at random (seeded) from `images (N, 28, 28) uint8`.

    Returns a list of (rgba (280, 280, 4) uint8, label int).
    """
    rng = np.random.default_rng(seed)
    picks = rng.choice(len(images), size=n, replace=n > len(images))
    return [(draw_digit(images[i], rng), int(labels[i])) for i in picks]


def draw_digit(image: np.ndarray, rng: np.random.Generator, style: str | None = None) -> np.ndarray:
    """One 28x28 uint8 digit -> a (280, 280, 4) uint8 canvas drawing of it."""
    points = _centre_line_points(image)
    height = rng.uniform(*HEIGHT) * CANVAS
    top = max(min(PEN[1], PEN_SHARE * height), PEN[0])
    pen = float(np.exp(rng.uniform(np.log(PEN[0]), np.log(top))))
    points = _pose(points, pen, height, rng)
    ink = pen_ink(points, pen)
    if style is None:
        style = STYLES[rng.choice(len(STYLES), p=STYLE_SHARE)]
    return to_rgba(ink, style)


def to_rgba(ink: np.ndarray, style: str) -> np.ndarray:
    """ink (H, W) float 0..1 -> (H, W, 4) uint8 in one of STYLES (or "dark-on-white")."""
    a = np.round(np.clip(ink, 0, 1) * 255).astype(np.uint8)
    out = np.zeros(ink.shape + (4,), np.uint8)
    if style == "white-on-black":
        out[..., :3] = a[..., None]
        out[..., 3] = 255
    elif style == "white-on-transparent":
        out[..., :3] = 255 * (a[..., None] > 0)
        out[..., 3] = a
    elif style == "dark-on-transparent":
        out[..., :3] = 20
        out[..., 3] = a
    elif style == "dark-on-white":
        out[..., :3] = 255 - a[..., None]
        out[..., 3] = 255
    else:
        raise ValueError(f"unknown style {style!r}")
    return out


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning of `mask (H, W) bool` to a one-pixel-wide line."""
    img = np.pad(np.asarray(mask, bool), 1).astype(np.uint8)
    c = img[1:-1, 1:-1]
    changed = True
    while changed:
        changed = False
        for first in (True, False):
            n, ne, e = img[:-2, 1:-1], img[:-2, 2:], img[1:-1, 2:]
            se, s, sw = img[2:, 2:], img[2:, 1:-1], img[2:, :-2]
            w, nw = img[1:-1, :-2], img[:-2, :-2]
            ring = (n, ne, e, se, s, sw, w, nw, n)
            count = sum(ring[:8])
            trans = sum((ring[k] < ring[k + 1]).astype(np.uint8) for k in range(8))
            if first:
                ok = ((n & e & s) == 0) & ((e & s & w) == 0)
            else:
                ok = ((n & e & w) == 0) & ((n & s & w) == 0)
            gone = (c == 1) & (count >= 2) & (count <= 6) & (trans == 1) & ok
            if gone.any():
                c[gone] = 0
                changed = True
    return c.astype(bool)


def _centre_line_points(image: np.ndarray) -> np.ndarray:
    """The digit's centre line as densely sampled points (P, 2) (row, col) in 28x28 units."""
    up = ndimage.zoom(image.astype(np.float32) / 255.0, UPSAMPLE, order=1)
    mask = up > 0.5
    if not mask.any():
        mask = up >= up.max() * 0.5
    skel = thin(mask)
    if not skel.any():
        skel = mask
    ys, xs = np.nonzero(skel)
    pts = [np.stack([ys, xs], 1).astype(np.float64)]
    # segments between 8-neighbours, sampled finely so the pen leaves no gaps once enlarged
    t = np.linspace(0.0, 1.0, 9)[1:-1, None, None]
    s = np.pad(skel, 1)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        nb = s[1 + dy : 1 + dy + skel.shape[0], 1 + dx : 1 + dx + skel.shape[1]] & skel
        y0, x0 = np.nonzero(nb)
        a = np.stack([y0, x0], 1).astype(np.float64)
        b = a + np.array([dy, dx], np.float64)
        pts.append((a[None] * (1 - t) + b[None] * t).reshape(-1, 2))
    return np.concatenate(pts) / UPSAMPLE


def _pose(points: np.ndarray, pen: float, height: float, rng: np.random.Generator) -> np.ndarray:
    """Scale, slant, rotate, wobble and place the centre line on the canvas (canvas px)."""
    p = points - points.mean(0)
    slant = np.tan(np.radians(rng.uniform(-SLANT_DEG, SLANT_DEG)))
    rot = np.radians(rng.uniform(-ROTATE_DEG, ROTATE_DEG))
    widen = rng.uniform(0.85, 1.15)
    y, x = p[:, 0], p[:, 1] * widen
    x = x - slant * y  # positive slant leans the top to the right
    c, s = np.cos(rot), np.sin(rot)
    p = np.stack([c * y - s * x, s * y + c * x], 1)
    span = max(np.ptp(p[:, 0]), 1e-6)
    p *= max(height - pen, 2.0) / span
    p += _wobble(p, WOBBLE * height, rng)
    # fit inside the canvas with the pen's radius to spare, then place anywhere
    lo, hi = p.min(0), p.max(0)
    room = CANVAS - 2 - pen
    if (hi - lo).max() > room:
        p *= room / (hi - lo).max()
        lo, hi = p.min(0), p.max(0)
    free = CANVAS - 1 - pen - (hi - lo)
    offset = pen / 2 + rng.uniform(0, 1, 2) * np.maximum(free, 0) - lo
    return p + offset


def _wobble(p: np.ndarray, amount: float, rng: np.random.Generator) -> np.ndarray:
    """A smooth random displacement (P, 2): a coarse noise field, bilinearly interpolated."""
    grid = rng.normal(0.0, amount, (2, 5, 5))
    lo, span = p.min(0), np.maximum(np.ptp(p, 0), 1e-6)
    coords = ((p - lo) / span * 4).T
    return np.stack(
        [ndimage.map_coordinates(grid[k], coords, order=1) for k in range(2)], 1
    )


def pen_ink(points: np.ndarray, pen: float) -> np.ndarray:
    """A round pen of width `pen` along `points (P, 2)` (row, column), anti-aliased:
    (280, 280) float 0..1. The one pen of the test drawings (hard_drawn_digits uses it too)."""
    line = np.zeros((CANVAS, CANVAS), bool)
    r = np.clip(np.round(points).astype(int), 0, CANVAS - 1)
    line[r[:, 0], r[:, 1]] = True
    dist = ndimage.distance_transform_edt(~line)
    return np.clip(pen / 2 + 0.5 - dist, 0.0, 1.0)
