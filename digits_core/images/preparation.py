"""How a drawing was prepared for the model, step by step, with the steps that can be
switched off to show why they exist.

The pictures come from `drawing`'s own steps (the same functions `canvas_reading` runs,
called one at a time), so the last picture is the very image the model read (a test
holds it to that). Switching off centring or size normalisation is the one thing here
that `drawing` never does: the digit then keeps the place or the size it had on the pad.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.images.drawing import (
    MNIST_BOX,
    MNIST_SIZE,
    NARROW,
    _ink_crop,
    _mnist_box,
    _narrow,
    _place_by_mass,
    _resize_to,
    _to_digits,
)
from digits_core.images.ink import drop_specks, halve_canvas, ink_map


@dataclass
class Step:
    name: str  # "canvas", "ink found", "cropped", ...
    image: np.ndarray  # (h, w) float32 in 0..1 (ink high), or the model's raw range for the last steps
    line: str  # what the step did, and why


@dataclass
class Prepared:
    steps: list[Step]
    image: np.ndarray | None  # (H, W) float32 raw pixels: what the model reads (None: nothing drawn)
    changed: bool  # a step was switched off, so `image` is not what the Draw page reads


def prepare(image: np.ndarray, dataset: str, *, centre: bool = True, size: bool = True,
            narrowed: bool = False) -> Prepared:
    """image: a drawing as `drawing.canvas_to_image` takes it -> its preparation steps.

    centre=False: the 20 px box sits where the ink was on the pad, not by its centre of mass.
    size=False: the ink keeps the size it had on the pad (the whole pad scaled to 28x28).
    narrowed: also show the second, narrowed view (`drawing.canvas_views`), when it was read.
    The 8x8 pipeline ("digits") shows its steps but has no switches.
    """
    steps = [Step("canvas", ink_map(image), "What you drew, as ink (1) on a blank pad (0).")]
    half = halve_canvas(image) if dataset == "mnist" else image
    found = drop_specks(ink_map(half))
    if found is None:
        return Prepared(steps, None, False)
    steps.append(Step("ink found", found, "Dust and single pen clicks dropped; "
                      + ("read at half size, as a scan would." if half is not image else "the strokes kept.")))
    crop = _ink_crop(image, dataset)
    if isinstance(crop, str):  # NO_INK or SPECK: nothing to prepare
        return Prepared(steps, None, False)
    steps.append(Step("cropped", crop, f"Cut to the ink's bounding box ({crop.shape[1]}x{crop.shape[0]} px)."))
    if dataset != "mnist":
        out = _to_digits(crop)
        steps.append(Step("8x8 counts", out / 16.0, "Slant removed, fitted to 32x32, then on-pixels counted in "
                          "4x4 blocks (0..16), as the 8x8 set was made."))
        return Prepared(steps, out, False)
    box = _mnist_box(crop)
    if size:
        steps.append(Step("scaled into 20x20", box, "Longer side scaled to 20 px, aspect kept, stroke width "
                          "brought into MNIST's range: every MNIST digit was."))
    else:
        box = _resize_to(found, (MNIST_SIZE, MNIST_SIZE))  # the whole pad: the ink keeps its size
        steps.append(Step("kept its size (switch off)", box, "Not scaled: the pad shrunk to 28x28, the ink as "
                          "large or small as drawn."))
    if centre:
        placed = _place_by_mass(box)
        line = "Placed in 28x28 with its centre of mass on the middle pixel, as MNIST's digits are."
    else:
        placed = _where_drawn(box, found) if size else box
        line = "Not centred (switch off): left where it was on the pad."
    steps.append(Step("centred" if centre else "where drawn", placed, line))
    out = placed * np.float32(255.0)
    if narrowed and size and centre:
        steps.append(Step("narrowed view", _place_by_mass(_narrow(box, NARROW)),
                          f"Unsure of the first, so also read squeezed to {NARROW:.0%} of its width: "
                          "people draw wider than MNIST's writers wrote."))
    return Prepared(steps, out, not (centre and size))


def _where_drawn(box: np.ndarray, ink: np.ndarray) -> np.ndarray:
    """`box (h, w)` pasted in 28x28 where the ink's bounding box was centred on the pad."""
    rows, cols = np.flatnonzero((ink > 0.5).any(1)), np.flatnonzero((ink > 0.5).any(0))
    cy = (rows[0] + rows[-1] + 1) / 2 / ink.shape[0] * MNIST_SIZE
    cx = (cols[0] + cols[-1] + 1) / 2 / ink.shape[1] * MNIST_SIZE
    h, w = box.shape
    top, left = round(cy - h / 2), round(cx - w / 2)
    top, left = min(max(top, 0), MNIST_SIZE - h), min(max(left, 0), MNIST_SIZE - w)
    frame = np.zeros((MNIST_SIZE, MNIST_SIZE), np.float32)
    frame[top : top + h, left : left + w] = box
    return frame


__all__ = ["MNIST_BOX", "Prepared", "Step", "prepare"]
