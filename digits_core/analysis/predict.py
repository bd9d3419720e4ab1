"""Reading one drawing with a trained run: preprocess, forward, probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.images.drawing import NO_INK, canvas_reading
from digits_core.store.runs import Run


@dataclass
class Prediction:
    digit: int | None  # None = "no digit" (empty or near-empty canvas)
    probs: np.ndarray | None  # (10,) float32, sums to 1
    image: np.ndarray | None  # (H, W) float32 in the dataset's raw range: what the model sees
    message: str  # one line for a person
    views: np.ndarray | None = None  # (V, H, W): every view read (`drawing.canvas_views`), image first


EMPTY = "draw a digit: the canvas is empty"
TOO_SMALL = "that mark is too small to read: draw the digit larger, filling most of the pad"
SURE_ALONE = 0.99  # a first view read this surely is the reading; below, every view is read


def read_views(run: Run, views: np.ndarray) -> np.ndarray:
    """views (V, H, W) or (N, V, H, W) of the same drawing(s) (`drawing.canvas_views`) ->
    probabilities (10,) or (N, 10): the first view's, where the model is at least SURE_ALONE
    sure of it; else its log probabilities averaged over every view (a geometric mean),
    normalised again. `predict_canvas` reads one drawing the same way, making the other
    views only when it needs them."""
    one = views.ndim == 3
    v = views[None] if one else views
    n, k = v.shape[:2]
    logp = _log_probs(run, v.reshape(n * k, *v.shape[2:])).reshape(n, k, -1)
    probs = _combine(logp)
    return probs[0] if one else probs


def _log_probs(run: Run, images: np.ndarray) -> np.ndarray:
    logits = run.model.forward(run.normalizer(images)).astype(np.float64)
    logits -= logits.max(1, keepdims=True)
    return logits - np.log(np.exp(logits).sum(1, keepdims=True))


def _combine(logp: np.ndarray) -> np.ndarray:
    """logp (N, V, 10) -> probabilities (N, 10) float32 (see read_views)."""
    first = np.exp(logp[:, 0])
    mean = logp.mean(1)
    both = np.exp(mean - mean.max(1, keepdims=True))
    both /= both.sum(1, keepdims=True)
    sure = first.max(1, keepdims=True) >= SURE_ALONE
    return np.where(sure, first / first.sum(1, keepdims=True), both).astype(np.float32)


def predict_canvas(run: Run, rgba: np.ndarray) -> Prediction:
    """A canvas image (H, W, 4) RGBA uint8, any size -> the run's reading of it (as
    `read_views` reads its views; the image shown is the first, the one `canvas_to_image`
    gives, and `views` are those read)."""
    got = canvas_reading(rgba, run.experiment.data.dataset)
    if isinstance(got, str):  # nothing drawn, or only a dot or dust
        return Prediction(None, None, None, EMPTY if got == NO_INK else TOO_SMALL)
    first, more = got
    views = first[None]
    logp = _log_probs(run, views)  # (1, 10): the first view's reading, where most drawings stop
    if np.exp(logp.max()) < SURE_ALONE:
        extra = more()
        if len(extra):
            views = np.concatenate([views, extra])
            logp = np.concatenate([logp, _log_probs(run, extra)])
    probs = _combine(logp[None])[0]
    digit = int(probs.argmax())
    return Prediction(digit, probs, first, f"{digit} ({probs[digit]:.0%} sure)", views)
