"""Runs side by side (the Runs page): what their curves are drawn against, and whether their
losses can share one axis.

Runs differ in the kind of loss they minimise (cross-entropy or squared error, averaged or
summed over a batch) and so in its scale: S1a's summed squared error sits near 80, a
CNN's cross-entropy falls under 0.1, and on one axis the CNN was a flat line at 0. Losses of
different kinds or far-apart scales are drawn relative to each run's own start (1 = where
it began), and the chart says so. A history keeps steps, so the x-axis in images seen is
steps x the run's batch size, and in time it is steps at the run's average speed (a
history keeps no clock per step).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.config import Experiment

XAXES = {"epochs": "epoch", "images": "images seen", "time": "training time (s)"}
SCALE_RATIO = 5.0  # starting losses further apart than this do not share an axis
START_STEPS = 5  # a run's start: the median loss of its first few steps


@dataclass
class Compared:
    """One run as the comparison draws it: `history` a jobs.History."""

    label: str
    history: object
    loss_kind: str = ""  # "cross-entropy" or "mse-softmax, summed"; "" when unknown
    batch_size: int = 0  # images a step; 0 when unknown


def compared(label: str, history, experiment: Experiment | None) -> Compared:
    """`history` with what its experiment says of its loss and batch (None: not known)."""
    if experiment is None:
        return Compared(label, history)
    t = experiment.train
    kind = t.loss + (", summed" if t.loss_reduction == "sum" else "")
    return Compared(label, history, kind, int(t.batch_size))


def loss_start(history) -> float | None:
    """The loss a run began at: the median of its first finite losses; None without any."""
    first = np.asarray(history.loss[:START_STEPS * 4], np.float64)
    first = first[np.isfinite(first)][:START_STEPS]
    return float(np.median(first)) if len(first) else None


def relative_losses(runs: list[Compared]) -> bool:
    """True when the runs' losses cannot share an axis: kinds differ, or their starts lie
    more than `SCALE_RATIO` apart."""
    kinds = {r.loss_kind for r in runs if r.loss_kind}
    starts = [s for s in (loss_start(r.history) for r in runs) if s is not None and s > 0]
    return len(kinds) > 1 or (len(starts) > 1 and max(starts) / min(starts) > SCALE_RATIO)


def x_values(run: Compared, steps, axis: str) -> np.ndarray:
    """Where `steps` (K,) of `run` lie on `axis` (a key of `XAXES`): (K,) float64.
    Images and time fall back to epochs' steps when the run does not know them."""
    h = run.history
    steps = np.asarray(steps, np.float64)
    if axis == "images" and run.batch_size:
        return steps * run.batch_size
    if axis == "time" and h.step and h.elapsed:
        return steps * (h.elapsed / h.step)  # its whole time over its every step
    per_epoch = h.steps_per_epoch or max(1, len(h.steps) // max(len(h.epochs), 1))
    return steps / per_epoch


__all__ = ["XAXES", "Compared", "compared", "loss_start", "relative_losses", "x_values"]
