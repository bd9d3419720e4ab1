"""The hardest examples ("top losses"): the test images a model finds hardest, ranked by
the loss it was trained on, one image at a time.

A confusion cell lists confident mistakes; a ranking by loss also finds the right answers
given with little certainty and ranks the mistakes by how wrong they are in the model's own
terms. The loss is the run's (`TrainConfig.loss`): cross-entropy, or squared error on the
softmax for the squared-error systems, whose ranking differs (a spread-out wrong answer
costs less there than a confident one). Pure NumPy on `probs (N, C)` and `labels (N,)`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.analysis.evaluate import Example
from digits_core.config import LOSSES
from digits_core.errors import ConfigError

MAX_HARDEST = 24  # images shown at once
EPS = 1e-12  # probabilities are float32: a 0 would be an infinite cross-entropy


def per_image_loss(probs: np.ndarray, labels: np.ndarray, loss: str = "cross-entropy") -> np.ndarray:
    """The training loss of each image alone: (N,) float64 from probs (N, C), labels (N,).

    cross-entropy: -log p[label]; mse-softmax: sum over classes of (p - one_hot)^2 (the
    "sum" reduction; "mean" divides every image's loss by C and ranks them the same)."""
    if loss not in LOSSES:
        raise ConfigError(f"loss must be one of {', '.join(LOSSES)}; got {loss!r}")
    p = np.asarray(probs, np.float64)
    y = np.asarray(labels, np.int64)
    if p.ndim != 2 or y.shape != (len(p),):
        raise ValueError(f"probs (N, C) and labels (N,) expected, got {p.shape} and {y.shape}")
    rows = np.arange(len(y))
    if loss == "cross-entropy":
        return -np.log(np.maximum(p[rows, y], EPS))
    d = p.copy()
    d[rows, y] -= 1.0
    return (d * d).sum(1)


def top_losses(probs: np.ndarray, labels: np.ndarray, loss: str = "cross-entropy", *,
               true: int | None = None, pred: int | None = None,
               limit: int | None = None) -> np.ndarray:
    """Indices (M,) int64 of the images, highest loss first (ties in index order); `true`
    keeps one true digit, `pred` one predicted digit (the argmax)."""
    losses = per_image_loss(probs, labels, loss)
    keep = np.ones(len(losses), bool)
    if true is not None:
        keep &= np.asarray(labels) == true
    if pred is not None:
        keep &= np.asarray(probs).argmax(1) == pred
    idx = np.flatnonzero(keep)
    idx = idx[np.argsort(-losses[idx], kind="stable")]
    return idx if limit is None else idx[: max(limit, 0)]


@dataclass
class HardExample(Example):
    """One of the hardest test images: a confusion cell's example with its loss."""

    loss: float = 0.0  # the model's loss on this image alone

    @property
    def caption(self) -> str:
        read = "right" if self.true == self.pred else f"read as {self.pred} ({self.probs[self.pred]:.0%})"
        return f"a {self.true}, {read} · p({self.true}) {self.probs[self.true]:.0%} · loss {self.loss:.2f}"


def hardest_examples(images: np.ndarray, probs: np.ndarray, labels: np.ndarray,
                     loss: str = "cross-entropy", *, true: int | None = None,
                     pred: int | None = None, limit: int = MAX_HARDEST) -> list[HardExample]:
    """The `limit` hardest of `images (N, H, W)` (see `top_losses`), each with its probabilities."""
    losses = per_image_loss(probs, labels, loss)
    preds = np.asarray(probs).argmax(1)
    return [HardExample(int(i), images[i], int(labels[i]), int(preds[i]), float(probs[i][preds[i]]), probs[i],
                        loss=float(losses[i]))
            for i in top_losses(probs, labels, loss, true=true, pred=pred, limit=limit)]


__all__ = ["MAX_HARDEST", "HardExample", "hardest_examples", "per_image_loss", "top_losses"]
