"""A harder set of canvas drawings, made from procedural pen strokes rather than MNIST.

The MNIST-test-writer set (tests/drawn_digits.py) redraws American census/school writers
of 1990; people drawing on a canvas today use other styles too: crossed 7s, slashed 0s,
1s with a flag and a base, open-top 4s drawn in one stroke, 9s with a small loop and a long
curved tail, 2s with a loop, 6s with a small closed loop, flat-top 3s... Every digit here is
one of several hand-written styles (`STYLES`), each a few strokes of lines and elliptic
arcs in a unit box, then perturbed the way a hand does it: the control points jittered,
slant either way, a small turn, wider or narrower, a smooth wobble, 90..240 px tall
anywhere on a 280x280 canvas, drawn with a uniform round pen 10..26 px wide, white on black
as the Streamlit canvas sends it.

Seeded and independent of digits_core (the set must not share code with what it measures)
and of MNIST. An evaluation set: never train on it.

    from hard_drawn_digits import make_hard_set
    drawings = make_hard_set(seed=0, n=1000)   # [(rgba (280, 280, 4) uint8, label, style)]
"""

from __future__ import annotations

import numpy as np
from drawn_digits import pen_ink
from scipy import ndimage

CANVAS = 280
PEN = (10.0, 26.0)  # uniform round pen, canvas px
HEIGHT = (90.0, 240.0)  # ink height, canvas px
PEN_SHARE = 0.2  # pen at most this share of the height: a 26 px pen fills a 90 px digit's loops
SLANT_DEG = 18.0  # shear either way
ROTATE_DEG = 7.0
JITTER = 0.045  # control-point jitter, share of the digit height
WOBBLE = 0.012  # smooth hand wobble, share of the digit height

# A stroke is a list of segments; a segment is ("L", (x0, y0), (x1, y1)) or
# ("A", cx, cy, rx, ry, a0_deg, a1_deg): x right, y down, both in a box about 1 high;
# an arc runs from angle a0 to a1 (x = cx + rx cos a, y = cy + ry sin a; 90 deg is down);
# ("E", top_w, bottom_w, waist) is a figure eight in one stroke (a lemniscate of Gerono,
# upright): loops top_w and bottom_w wide (a negative width draws it the other way round),
# crossing `waist` of the way down.


def _styles() -> dict[int, dict[str, list]]:
    L = lambda a, b: ("L", a, b)  # noqa: E731
    A = lambda cx, cy, rx, ry, a0, a1: ("A", cx, cy, rx, ry, a0, a1)  # noqa: E731
    E = lambda top_w, bottom_w, waist: ("E", top_w, bottom_w, waist)  # noqa: E731
    return {
        0: {
            "oval": [[A(0.3, 0.5, 0.3, 0.5, -90, 275)]],
            "oval-ccw": [[A(0.3, 0.5, 0.28, 0.5, -80, -440)]],
            "slashed": [[A(0.3, 0.5, 0.3, 0.5, -90, 272)], [L((0.55, 0.1), (0.05, 0.9))]],
            "round": [[A(0.4, 0.5, 0.4, 0.5, -100, 262)]],
            "open-top": [[A(0.3, 0.52, 0.3, 0.48, -70, 245)]],
        },
        1: {
            "stick": [[L((0.05, 0.0), (0.0, 1.0))]],
            "flag": [[L((-0.22, 0.22), (0.05, 0.0)), L((0.05, 0.0), (0.0, 1.0))]],
            "flag-base": [[L((-0.2, 0.2), (0.05, 0.0)), L((0.05, 0.0), (0.0, 1.0))],
                          [L((-0.22, 1.0), (0.22, 1.0))]],
            "long-flag": [[L((-0.3, 0.32), (0.05, 0.0)), L((0.05, 0.0), (0.0, 1.0))]],
        },
        2: {
            "plain": [[A(0.35, 0.28, 0.33, 0.28, 190, 360), A(0.35, 0.28, 0.33, 0.28, 0, 40),
                       L((0.6, 0.46), (0.0, 1.0)), L((0.0, 1.0), (0.72, 1.0))]],
            "loop": [[A(0.35, 0.27, 0.33, 0.27, 190, 400), L((0.6, 0.45), (0.12, 0.9)),
                      A(0.15, 0.88, 0.12, 0.1, 220, -90), L((0.15, 0.98), (0.75, 0.97))]],
            "curvy": [[A(0.36, 0.3, 0.34, 0.3, 200, 380), A(0.02, 0.3, 0.68, 0.7, 0, 90),
                       L((0.02, 1.0), (0.75, 0.96))]],
            "z-like": [[L((0.0, 0.05), (0.6, 0.0)), L((0.6, 0.0), (0.05, 1.0)),
                        L((0.05, 1.0), (0.7, 1.0))]],
        },
        3: {
            "round": [[A(0.3, 0.25, 0.3, 0.25, 200, 450), A(0.3, 0.74, 0.33, 0.26, -90, 160)]],
            "flat-top": [[L((0.0, 0.0), (0.6, 0.0)), L((0.6, 0.0), (0.25, 0.4)),
                          A(0.3, 0.7, 0.32, 0.3, -90, 160)]],
            "pointed": [[A(0.3, 0.25, 0.3, 0.25, 200, 440), L((0.3, 0.5), (0.15, 0.49)),
                         L((0.15, 0.49), (0.3, 0.5)), A(0.3, 0.74, 0.33, 0.26, -90, 160)]],
        },
        4: {
            "closed": [[L((0.55, 0.0), (0.0, 0.66)), L((0.0, 0.66), (0.8, 0.66))],
                       [L((0.58, 0.02), (0.58, 1.0))]],
            "open": [[L((0.1, 0.0), (0.05, 0.62)), L((0.05, 0.62), (0.8, 0.62))],
                     [L((0.62, 0.0), (0.62, 1.0))]],
            "open-1stroke": [[L((0.12, 0.0), (0.05, 0.6)), L((0.05, 0.6), (0.62, 0.6)),
                              L((0.62, 0.6), (0.64, 0.0)), L((0.64, 0.0), (0.62, 1.0))]],
            "closed-1stroke": [[L((0.55, 1.0), (0.55, 0.0)), L((0.55, 0.0), (0.0, 0.68)),
                                L((0.0, 0.68), (0.8, 0.66))]],
        },
        5: {
            "one-stroke": [[L((0.65, 0.0), (0.08, 0.0)), L((0.08, 0.0), (0.04, 0.45)),
                            A(0.3, 0.7, 0.32, 0.28, 215, 470)]],
            "flag-apart": [[L((0.08, 0.02), (0.04, 0.45)), A(0.3, 0.7, 0.32, 0.28, 215, 470)],
                           [L((0.1, 0.0), (0.68, 0.02))]],
            "round-belly": [[L((0.7, 0.0), (0.12, 0.02)), L((0.12, 0.02), (0.05, 0.42)),
                             A(0.35, 0.68, 0.36, 0.32, 225, 480)]],
        },
        6: {
            "big-loop": [[A(0.6, 0.62, 0.6, 0.62, -75, -190), A(0.32, 0.7, 0.32, 0.27, 170, 530)]],
            "small-loop": [[L((0.55, 0.0), (0.12, 0.65)), A(0.3, 0.8, 0.22, 0.2, 200, 560)]],
            "straight": [[L((0.45, 0.0), (0.05, 0.7)), A(0.28, 0.75, 0.25, 0.25, 180, 540)]],
        },
        7: {
            "plain": [[L((0.0, 0.0), (0.75, 0.0)), L((0.75, 0.0), (0.25, 1.0))]],
            "crossed": [[L((0.0, 0.0), (0.75, 0.0)), L((0.75, 0.0), (0.25, 1.0))],
                        [L((0.25, 0.52), (0.72, 0.5))]],
            "curved-stem": [[L((0.0, 0.02), (0.75, 0.0)), A(0.0, 0.0, 0.72, 1.0, 0, 78)]],
            "serif": [[L((0.0, 0.15), (0.0, 0.0)), L((0.0, 0.0), (0.75, 0.0)),
                       L((0.75, 0.0), (0.3, 1.0))]],
            "crossed-curved": [[L((0.0, 0.02), (0.75, 0.0)), A(0.0, 0.0, 0.72, 1.0, 0, 78)],
                               [L((0.3, 0.5), (0.75, 0.48))]],
        },
        8: {
            "figure": [[E(0.25, 0.3, 0.45)]],
            "two-circles": [[A(0.3, 0.25, 0.24, 0.25, 90, 450)], [A(0.3, 0.75, 0.3, 0.25, -90, 270)]],
            "small-top": [[E(0.18, 0.32, 0.38)]],
            "figure-rev": [[E(-0.26, -0.3, 0.47)]],
        },
        9: {
            "straight": [[A(0.3, 0.27, 0.3, 0.27, 0, -355), L((0.6, 0.27), (0.58, 1.0))]],
            "small-loop": [[A(0.3, 0.18, 0.25, 0.18, 0, -355), L((0.55, 0.18), (0.45, 1.0))]],
            "curly-tail": [[A(0.3, 0.2, 0.28, 0.2, 0, -355), A(0.0, 0.2, 0.58, 0.8, 0, 110)]],
            "small-curly": [[A(0.35, 0.16, 0.22, 0.16, 0, -355), A(0.05, 0.16, 0.52, 0.84, 0, 100)]],
            "hooked": [[A(0.3, 0.24, 0.3, 0.24, 0, -355), L((0.6, 0.24), (0.55, 0.88)),
                        A(0.38, 0.88, 0.17, 0.12, 0, 150)]],
        },
    }


STYLES = _styles()


def make_hard_set(seed: int, n: int) -> list[tuple[np.ndarray, int, str]]:
    """n drawings, classes in turn (n // 10 of each, the rest from 0 up), styles drawn uniformly.

    Returns [(rgba (280, 280, 4) uint8, label, style name), ...].
    """
    rng = np.random.default_rng(seed)
    out = []
    for k in range(n):
        label = k % 10
        names = sorted(STYLES[label])
        style = names[rng.integers(len(names))]
        out.append((draw(label, style, rng), label, style))
    return out


def draw(label: int, style: str, rng: np.random.Generator) -> np.ndarray:
    """One drawing of `label` in `style` -> (280, 280, 4) uint8, white ink on black, opaque."""
    strokes = [_stroke_points(s, rng) for s in STYLES[label][style]]
    height = rng.uniform(*HEIGHT)
    pen = rng.uniform(PEN[0], min(PEN[1], PEN_SHARE * height))
    strokes = _pose(strokes, pen, height, rng)
    ink = pen_ink(np.concatenate(strokes)[:, ::-1], pen)  # (x, y) -> (row, column)
    a = np.round(ink * 255).astype(np.uint8)
    rgba = np.zeros((CANVAS, CANVAS, 4), np.uint8)
    rgba[..., :3] = a[..., None]
    rgba[..., 3] = 255
    return rgba


def _stroke_points(stroke: list, rng: np.random.Generator) -> np.ndarray:
    """One stroke -> densely sampled points (P, 2) (x, y), its control values jittered."""
    j = lambda: rng.normal(0, JITTER)  # noqa: E731
    pts = []
    for seg in stroke:
        if seg[0] == "L":
            (x0, y0), (x1, y1) = seg[1], seg[2]
            t = np.linspace(0, 1, 60)[:, None]
            a = np.array([x0 + j(), y0 + j()])
            b = np.array([x1 + j(), y1 + j()])
            if pts:  # strokes stay connected: start where the last segment ended
                a = pts[-1][-1]
            pts.append(a * (1 - t) + b * t)
        elif seg[0] == "E":
            _, tw, bw, waist = seg
            t = np.linspace(0.15, 2 * np.pi + 0.35, 400) + rng.normal(0, 0.1)
            y = -np.cos(t)  # -1 (top) .. 1 (bottom)
            x = np.sin(t) * np.cos(t)
            top = y < 0
            x = np.where(top, x * 2 * (tw + j() / 2), x * 2 * (bw + j() / 2))
            w = waist + j()
            y = np.where(top, w * (1 + y), w + (1 - w) * y)
            pts.append(np.stack([0.3 + x, y], 1))
        else:
            _, cx, cy, rx, ry, a0, a1 = seg
            rx, ry = abs(rx * (1 + rng.normal(0, 0.08))), abs(ry * (1 + rng.normal(0, 0.08)))
            a0, a1 = np.radians(a0 + rng.normal(0, 8)), np.radians(a1 + rng.normal(0, 8))
            t = np.linspace(a0, a1, max(40, int(abs(a1 - a0) * 40)))
            p = np.stack([cx + j() + rx * np.cos(t), cy + j() + ry * np.sin(t)], 1)
            if pts:  # move the arc so it starts where the stroke is
                p += pts[-1][-1] - p[0]
            pts.append(p)
    return np.concatenate(pts)


def _pose(strokes, pen, height, rng):
    """Slant, turn, widen/narrow, scale to `height` (pen included), wobble and place anywhere."""
    allp = np.concatenate(strokes)
    centre = allp.mean(0)
    slant = np.tan(np.radians(rng.uniform(-SLANT_DEG, SLANT_DEG)))
    rot = np.radians(rng.uniform(-ROTATE_DEG, ROTATE_DEG))
    widen = np.exp(rng.uniform(np.log(0.75), np.log(1.3)))
    c, s = np.cos(rot), np.sin(rot)

    def tf(p):
        x, y = (p[:, 0] - centre[0]) * widen, p[:, 1] - centre[1]
        x = x - slant * y  # positive slant leans the top to the right (y grows downwards)
        return np.stack([c * x - s * y, s * x + c * y], 1)

    strokes = [tf(p) for p in strokes]
    allp = np.concatenate(strokes)
    span = max(np.ptp(allp[:, 1]), 1e-6)
    scale = max(height - pen, 10.0) / span
    grid = rng.normal(0.0, WOBBLE * height, (2, 5, 5))
    lo, hi = allp.min(0) * scale, allp.max(0) * scale
    out = []
    for p in strokes:
        p = p * scale
        coords = ((p - lo) / np.maximum(hi - lo, 1e-6) * 4)[:, ::-1].T
        p = p + np.stack([ndimage.map_coordinates(grid[k], coords, order=1) for k in range(2)], 1)
        out.append(p)
    allp = np.concatenate(out)
    lo, hi = allp.min(0), allp.max(0)
    room = CANVAS - 2 - pen
    if (hi - lo).max() > room:  # a wide digit at full height: shrink to fit
        out = [(p - lo) * room / (hi - lo).max() + lo for p in out]
        allp = np.concatenate(out)
        lo, hi = allp.min(0), allp.max(0)
    free = np.maximum(CANVAS - 1 - pen - (hi - lo), 0)
    offset = pen / 2 + rng.uniform(0, 1, 2) * free - lo
    return [_densify(p + offset) for p in out]


def _densify(p: np.ndarray) -> np.ndarray:
    """Resample a polyline so neighbouring points are at most half a pixel apart."""
    d = np.hypot(*np.diff(p, axis=0).T)
    k = np.maximum(1, np.ceil(d / 0.5)).astype(int)
    segs = [p[i] + (p[i + 1] - p[i]) * np.arange(k[i])[:, None] / k[i] for i in range(len(d))]
    return np.concatenate(segs + [p[-1:]])
