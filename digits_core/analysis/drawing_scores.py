"""A model scored on the collected drawings: accuracy, per class, and the confusion matrix
with the drawings in each cell. The drawings are read from what the model saw when each
was marked (`drawings.model_input`): the same 28x28 the Draw page read first."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.store.runs import Run


def read_inputs(run: Run, images: np.ndarray) -> np.ndarray:
    """The digit `run` reads in each model input `images (N, H, W)`: (N,) int64."""
    if len(images) == 0:
        return np.zeros(0, np.int64)
    return run.model.forward(run.normalizer(images.astype(np.float32))).argmax(1).astype(np.int64)


@dataclass
class DrawingScore:
    preds: np.ndarray  # (N,) int64: the digit the model reads in each drawing
    labels: np.ndarray  # (N,) int64: the digit each drawing is
    confusion: np.ndarray  # (10, 10) int64: [true, predicted] counts

    @property
    def accuracy(self) -> float:
        return float((self.preds == self.labels).mean()) if len(self.labels) else float("nan")

    @property
    def counts(self) -> np.ndarray:
        """(10,) drawings of each digit."""
        return self.confusion.sum(1)

    @property
    def per_class(self) -> np.ndarray:
        """(10,) share of each digit's drawings read right; NaN for a digit with none."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.diag(self.confusion) / self.counts

    def cell(self, true: int, pred: int) -> np.ndarray:
        """Indices of the drawings of `true` read as `pred`."""
        return np.flatnonzero((self.labels == true) & (self.preds == pred))


def score_drawings(run, images: np.ndarray, labels: np.ndarray) -> DrawingScore:
    """`run` on drawings `images (N, 28, 28)` 0..255 with `labels (N,)`."""
    preds = read_inputs(run, images)
    labels = np.asarray(labels, np.int64)
    confusion = np.zeros((10, 10), np.int64)
    np.add.at(confusion, (labels, preds), 1)
    return DrawingScore(preds, labels, confusion)


__all__ = ["DrawingScore", "score_drawings"]
