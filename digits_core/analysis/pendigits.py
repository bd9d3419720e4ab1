"""Real pen-drawn digits (UCI pendigits, Alpaydin & Alimoglu 1998, CC BY 4.0) drawn as the
Draw page's pad would draw them, to measure how drawings by real people are read.

The data set keeps each digit as the pen's trajectory on a tablet (UNIPEN text: a
`.SEGMENT DIGIT` line, a `.COMMENT <label> <writer> <n>` line, then strokes of `x y` points
between `.PEN_DOWN` and `.PEN_UP`, y growing upwards, a point every 100 ms). `read_unipen`
reads it strictly and bounded; `render` draws one digit on a 280 px black pad with a round
white pen of varied width, at a varied size and place, as a person would on the canvas
(the points joined by straight segments: fast strokes have few). Nothing in the running
product reads this data: it is for measuring (`scripts/eval_pendigits.py`) and tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits_core.errors import DataError, RunError
from digits_core.store.bounded import read_bounded

MAX_FILE_BYTES = 32 * 2**20  # the training writers' file is 3.6 MB
MAX_POINTS = 2_000  # points of one digit (the longest has a few hundred)
CANVAS = 280
HEIGHT = (0.40, 0.90)  # the digit's height as a share of the pad, drawn uniformly
PEN = (8.0, 32.0)  # pen width in pad pixels (the Draw page's slider: 5..40, 18 by default)
PEN_SHARE = 0.16  # at most this share of the digit's height (a fatter pen fills the loops)
SUPER = 3  # drawn this many times larger, then averaged down: anti-aliased like a browser


@dataclass
class PenDigit:
    label: int  # 0..9
    writer: int  # the data set's writer number
    strokes: list[np.ndarray]  # each (P, 2) float32 (x, y), y growing upwards


def read_unipen(path: str | Path) -> list[PenDigit]:
    """Every digit of a pendigits UNIPEN file. Raises DataError naming the line on any
    problem (a label that is not a digit, a point that is not two numbers, a digit with no
    strokes or too many points)."""
    path = Path(path)
    try:
        raw = read_bounded(path, MAX_FILE_BYTES)
    except RunError as e:
        raise DataError(str(e)) from None
    try:
        lines = raw.decode("ascii").splitlines()
    except UnicodeDecodeError:
        raise DataError(f"{path.name} is not an ASCII UNIPEN file") from None
    out: list[PenDigit] = []
    label = writer = None
    strokes: list[np.ndarray] = []
    points: list[tuple[float, float]] | None = None

    def finish(at: int) -> None:
        if label is None:
            return
        if not strokes:
            raise DataError(f"{path.name} line {at}: a digit with no strokes")
        if writer is None:
            raise DataError(f"{path.name} line {at}: a digit without a .COMMENT naming its writer")
        if sum(len(s) for s in strokes) > MAX_POINTS:
            raise DataError(f"{path.name} line {at}: a digit of more than {MAX_POINTS} points")
        out.append(PenDigit(label, writer, list(strokes)))

    for k, line in enumerate(lines, start=1):
        word = line.split()
        if not word:
            continue
        if word[0] == ".SEGMENT":
            finish(k)
            strokes, label, writer = [], None, None
            try:
                label = int(word[-1].strip('"'))
            except ValueError:
                raise DataError(f"{path.name} line {k}: the digit's label is not a number") from None
            if not 0 <= label <= 9:
                raise DataError(f"{path.name} line {k}: label {label} is not a digit 0..9")
        elif word[0] == ".COMMENT" and label is not None:
            if len(word) < 3 or not word[2].isdigit():
                raise DataError(f"{path.name} line {k}: a .COMMENT without a writer number")
            writer = int(word[2])
        elif word[0] == ".PEN_DOWN":
            points = []
        elif word[0] == ".PEN_UP":
            if points:
                strokes.append(np.asarray(points, np.float32))
            points = None
        elif points is not None:
            if len(word) != 2 or len(points) > MAX_POINTS:
                raise DataError(f"{path.name} line {k}: a point must be two numbers")
            try:
                points.append((float(word[0]), float(word[1])))
            except ValueError:
                raise DataError(f"{path.name} line {k}: a point must be two numbers") from None
    finish(len(lines))
    return out


def render(digit: PenDigit, rng: np.random.Generator) -> np.ndarray:
    """The digit drawn on the pad: (280, 280, 4) uint8 RGBA, white strokes on opaque black,
    its height HEIGHT of the pad, anywhere it fits, a round pen PEN wide (at most PEN_SHARE
    of the height)."""
    from PIL import Image, ImageDraw

    pts = np.concatenate(digit.strokes)
    lo, hi = pts.min(0), pts.max(0)
    span = np.maximum(hi - lo, 1.0)
    height = rng.uniform(*HEIGHT) * CANVAS
    pen = min(float(np.exp(rng.uniform(*np.log(PEN)))), PEN_SHARE * height)
    scale = height / span[1]
    room = CANVAS - pen - 4
    scale = min(scale, room / span[0], room / span[1])  # a wide digit still fits the pad
    size = span * scale
    edge = pen / 2 + 2
    left, top = (rng.uniform(edge, max(edge, CANVAS - edge - s)) for s in size)
    img = Image.new("L", (CANVAS * SUPER, CANVAS * SUPER), 0)
    draw = ImageDraw.Draw(img)
    w, r = pen * SUPER, pen * SUPER / 2
    for s in digit.strokes:
        x = (left + (s[:, 0] - lo[0]) * scale) * SUPER
        y = (top + (hi[1] - s[:, 1]) * scale) * SUPER  # y grows upwards on the tablet
        xy = list(zip(x.tolist(), y.tolist()))
        if len(xy) > 1:
            draw.line(xy, fill=255, width=max(1, round(w)))
        for px, py in xy:  # round caps and joins
            draw.ellipse((px - r, py - r, px + r, py + r), fill=255)
    grey = np.asarray(img.resize((CANVAS, CANVAS), Image.Resampling.BOX), np.uint8)
    return np.dstack([grey, grey, grey, np.full_like(grey, 255)])


def writer_split(digits: list[PenDigit], held_out: int, seed: int = 0) -> tuple[set[int], set[int]]:
    """(writers to tune on, writers held out): `held_out` writers drawn at random (seeded)."""
    writers = sorted({d.writer for d in digits})
    rng = np.random.default_rng(seed)
    out = set(rng.choice(writers, size=held_out, replace=False).tolist())
    return set(writers) - out, out


__all__ = ["CANVAS", "PenDigit", "read_unipen", "render", "writer_split"]
