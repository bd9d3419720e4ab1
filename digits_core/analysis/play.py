"""The Play view's arithmetic: strokes painted over a test digit -> the image the model
reads, and which digit to start from.

The digit is shown under the strokes and is not part of what the canvas sends back, so
the two are put together here: each stroke pixel covers the digit by its opacity (a white
pen adds ink, a black pen rubs it out), then the pad is shrunk to the dataset's size by
averaging (as a scanner would). No other preprocessing: the digit is already a test
image, placed and scaled as the model's training images were.
"""

from __future__ import annotations

import numpy as np


def compose(digit: np.ndarray, strokes: np.ndarray | None, max_value: float) -> np.ndarray:
    """digit (H, W) raw pixels, strokes (S, S, 4) RGBA uint8 of a pad a whole multiple of
    H (or None) -> (H, W) float32 raw pixels: the digit with the strokes painted over it."""
    base = np.asarray(digit, np.float32)
    if strokes is None:
        return base.copy()
    s = np.asarray(strokes)
    if s.ndim != 3 or s.shape[2] != 4:
        raise ValueError(f"the strokes must be an RGBA image (S, S, 4), got shape {s.shape}")
    h, w = base.shape
    k = s.shape[0] // h
    if k < 1 or s.shape[0] != k * h or s.shape[1] != k * w:
        raise ValueError(f"the pad ({s.shape[1]}x{s.shape[0]}) must be a whole multiple of the digit ({w}x{h})")
    alpha = s[..., 3].astype(np.float32) / 255.0  # (S, S)
    level = s[..., :3].astype(np.float32).mean(2) / 255.0 * max_value  # the pen's grey, 0 (black) .. max
    big = np.repeat(np.repeat(base, k, 0), k, 1)
    painted = big * (1.0 - alpha) + level * alpha
    return painted.reshape(h, k, w, k).mean(axis=(1, 3)).astype(np.float32)


def start_digit(labels: np.ndarray, preds: np.ndarray, digit: int) -> int | None:
    """The first test image of `digit` that the model reads right (its index), or None."""
    hits = np.flatnonzero((labels == digit) & (preds == digit))
    return int(hits[0]) if len(hits) else None


def flip_line(start: int, readings: list[int]) -> str | None:
    """readings: the model's reading after 1, 2, ... strokes -> 'N strokes turned this 4 into
    a 9' for the fewest strokes after which it read something else (None if it never did)."""
    for n, d in enumerate(readings, 1):
        if d != start:
            return f"{n} stroke{'s' if n != 1 else ''} turned this {start} into a {d}"
    return None


__all__ = ["compose", "flip_line", "start_digit"]
