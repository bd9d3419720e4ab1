"""Reading one drawing with a trained run: preprocess, forward, probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .drawing import canvas_to_image
from .runs import Run


@dataclass
class Prediction:
    digit: int | None  # None = "no digit" (empty or near-empty canvas)
    probs: np.ndarray | None  # (10,) float32, sums to 1
    image: np.ndarray | None  # (H, W) float32 in the dataset's raw range: what the model sees
    message: str  # one line for a person


def predict_canvas(run: Run, rgba: np.ndarray) -> Prediction:
    """A canvas image (H, W, 4) RGBA uint8, any size -> the run's reading of it."""
    dataset = run.experiment.data.dataset
    image = canvas_to_image(rgba, dataset)
    if image is None:
        return Prediction(None, None, None, "draw a digit: the canvas is empty")
    x = run.normalizer(image[None])  # (1, H, W) float32
    probs = run.model.probs(x)[0]
    digit = int(probs.argmax())
    return Prediction(digit, probs, image, f"{digit} ({probs[digit]:.0%} sure)")
