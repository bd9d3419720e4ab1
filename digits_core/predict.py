"""Reading one drawing with a trained run: preprocess, forward, probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .drawing import canvas_views
from .runs import Run


@dataclass
class Prediction:
    digit: int | None  # None = "no digit" (empty or near-empty canvas)
    probs: np.ndarray | None  # (10,) float32, sums to 1
    image: np.ndarray | None  # (H, W) float32 in the dataset's raw range: what the model sees
    message: str  # one line for a person
    views: np.ndarray | None = None  # (V, H, W): every view read (`drawing.canvas_views`), image first


def read_views(run: Run, views: np.ndarray) -> np.ndarray:
    """views (V, H, W) or (N, V, H, W) of the same drawing(s) (`drawing.canvas_views`) ->
    probabilities (10,) or (N, 10): the model's log probabilities averaged over the views
    (a geometric mean), normalised again."""
    one = views.ndim == 3
    v = views[None] if one else views
    n, k = v.shape[:2]
    logits = run.model.forward(run.normalizer(v.reshape(n * k, *v.shape[2:]))).astype(np.float64)
    logits -= logits.max(1, keepdims=True)
    logp = logits - np.log(np.exp(logits).sum(1, keepdims=True))
    mean = logp.reshape(n, k, -1).mean(1)
    probs = np.exp(mean - mean.max(1, keepdims=True))
    probs = (probs / probs.sum(1, keepdims=True)).astype(np.float32)
    return probs[0] if one else probs


def predict_canvas(run: Run, rgba: np.ndarray) -> Prediction:
    """A canvas image (H, W, 4) RGBA uint8, any size -> the run's reading of it (over the
    drawing's views; the image shown is the first, the one `canvas_to_image` gives)."""
    dataset = run.experiment.data.dataset
    views = canvas_views(rgba, dataset)
    if views is None:
        return Prediction(None, None, None, "draw a digit: the canvas is empty")
    probs = read_views(run, views)
    digit = int(probs.argmax())
    return Prediction(digit, probs, views[0], f"{digit} ({probs[digit]:.0%} sure)", views)
