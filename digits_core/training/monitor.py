"""Watching a network learn, live: accuracy within an epoch and frames of its last layer.

While a job trains, `Monitor` measures, at a steady cadence, the test accuracy on a fixed
stratified subset of the test set (the S4 write-up used 2 000 images every 50 steps) and
records frames: the last hidden layer of a fixed set of ~500 test points mapped to 2-D
(PCA always; t-SNE started from the previous frame when the run asks for a live
embedding), their predictions, and the first-layer weights. `Cadence` keeps each kind of
measurement inside a share of the training time (`PROBE_BUDGET`, `FRAME_BUDGET`), so the
live view never slows training by more than a few per cent; a live t-SNE's frames come
front-loaded in the first epoch, where its clusters form (`frame_schedule.FrontLoaded`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.analysis.embedding import (
    FRAME_POINTS,
    one_blas_thread,
    principal_components,
    sample_points,
    tsne_follow,
)
from digits_core.data.datasets import Dataset
from digits_core.nn.classifier import Classifier
from digits_core.nn.models import first_layer_weights
from digits_core.training.frame_schedule import FrontLoaded

PROBE_IMAGES = 2000  # at most this many test images in the live accuracy subset...
PROBE_MIN_IMAGES = 100  # ...and at least this many, where a probe is costly (a CNN, a short epoch)
PROBE_START_IMAGES = 500  # the first probe's size, before its cost is known
PROBE_SIZE_BUDGET = 0.01  # probes are sized to take this share of the training time...
PROBE_BUDGET = 0.025  # ...and spaced so they never take more, where even the smallest costs more (a CNN)
FRAME_BUDGET = 0.01  # share of training time the frames may take (PCA and weights)
TSNE_FRAME_BUDGET = 0.07  # the same with a live t-SNE in every frame (goal: under 10 % with the last frame)
TSNE_FIRST_EPOCH_BUDGET = 0.085  # ...in a segment's first epoch, front-loaded (probes and all: under 10 %)
TSNE_FRAMES_PER_EPOCH = 12  # S4 drew one every 50 steps (24 an epoch); the budget decides
PROBES_PER_EPOCH = 8  # aim for this many accuracy points per epoch...
PROBE_EVERY_S = 2.0  # ...and at least one every this many seconds of training
FRAME_EVERY_S = 4.0  # a frame at least this often, budget allowing
MAX_FRAMES = 60  # frames kept; past this every other one is dropped
FRAME_UNITS = 16  # first-layer units kept per frame
RECENT_COSTS = 3  # a measurement's cost is the least of its latest few


def probe_indices(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """A fixed, stratified subset of `labels (N,)`: (min(n, N),) int64 indices, ascending."""
    return sample_points(labels, n, seed)


class Cadence:
    """Decides when a measurement is due: every `1/per_epoch` of an epoch or every
    `every_s` seconds of training, whichever comes first, but never so often that the
    measurement's own cost exceeds `budget` of the training time between two of them."""

    def __init__(self, steps_per_epoch: int, *, per_epoch: int, every_s: float, budget: float):
        self.step_gap = max(1, steps_per_epoch // per_epoch)
        self.every_s, self.budget = every_s, budget
        self.last_step, self.last_t, self.cost = 0, 0.0, 0.0
        self.costs: list[float] = []  # the latest few, for `cost`

    def due(self, step: int, train_s: float) -> bool:
        since = train_s - self.last_t
        if since < self.cost / self.budget:
            return False
        return step - self.last_step >= self.step_gap or since >= self.every_s

    def done(self, step: int, train_s: float, cost_s: float) -> None:
        self.last_step, self.last_t = step, train_s
        # The least of the latest few: a first call that paid for a warm-up, or one that lost
        # the core to another process (a browser drawing the page), must not space all the
        # rest, which left a short run's live curves ending half way through it.
        self.costs = [*self.costs[-(RECENT_COSTS - 1):], cost_s]
        self.cost = min(self.costs)


@dataclass
class Probe:
    step: int
    epoch: float  # epochs done, as a fraction (1.5 = half way through the second)
    test_acc: float  # on the fixed probe subset
    train_acc: float  # running accuracy of the current epoch's batches


class Frames:
    """Embedding frames of one run, kept small enough to write with every checkpoint."""

    def __init__(self, indices: np.ndarray, labels: np.ndarray):
        self.indices, self.labels = indices, labels  # (P,) int64 each
        self.steps: list[int] = []
        self.epochs: list[float] = []
        self.pca: list[np.ndarray] = []  # (P, 2) float32 each
        self.tsne: list[np.ndarray] = []  # (P, 2) float32 each (empty without t-SNE)
        self.preds: list[np.ndarray] = []  # (P,) int8 each
        self.weights: list[np.ndarray] = []  # (FRAME_UNITS, ...) float32 each

    def __len__(self) -> int:
        return len(self.steps)

    def add(self, step, epoch, pca, tsne, preds, weights) -> None:
        self.steps.append(step)
        self.epochs.append(epoch)
        self.pca.append(pca)
        if tsne is not None:
            self.tsne.append(tsne)
        self.preds.append(preds)
        self.weights.append(weights)
        if len(self.steps) > MAX_FRAMES:  # keep the first, thin the middle evenly
            keep = [0, *range(2, len(self.steps), 2)]
            if keep[-1] != len(self.steps) - 1:
                keep.append(len(self.steps) - 1)
            for name in ("steps", "epochs", "pca", "preds", "weights"):
                setattr(self, name, [getattr(self, name)[k] for k in keep])
            if self.tsne:
                self.tsne = [self.tsne[k] for k in keep]

    def to_arrays(self) -> dict[str, np.ndarray]:
        """The frames as arrays for `snapshots.npz`: steps (K,), epochs (K,), pca (K, P, 2),
        tsne (K, P, 2) or (0, P, 2), preds (K, P), weights (K, U, ...), indices (P,), labels (P,)."""
        p = len(self.indices)
        return {
            "steps": np.asarray(self.steps, np.int64),
            "epochs": np.asarray(self.epochs, np.float32),
            "pca": np.asarray(self.pca, np.float32).reshape(len(self.pca), p, 2),
            "tsne": np.asarray(self.tsne, np.float32).reshape(len(self.tsne), p, 2),
            "preds": np.asarray(self.preds, np.int8).reshape(len(self.preds), p),
            "weights": np.asarray(self.weights, np.float32),
            "indices": self.indices.astype(np.int64),
            "labels": self.labels.astype(np.int64),
        }


def _aligned(xy: np.ndarray, previous: np.ndarray | None) -> np.ndarray:
    """Flip the PCA axes to agree with the previous frame, so the picture does not mirror."""
    if previous is None:
        return xy
    signs = np.where((xy * previous).sum(0) < 0, -1.0, 1.0)
    return (xy * signs).astype(np.float32)


class Monitor:
    """The live measurements of one training run (see the module docstring)."""

    def __init__(self, data: Dataset, steps_per_epoch: int, *, seed: int = 0, tsne: bool = False):
        self.data, self.steps_per_epoch, self.seed, self.use_tsne = data, steps_per_epoch, seed, tsne
        # Stratified, then shuffled: any prefix is a fair sample, so the subset can shrink or
        # grow with what a probe costs and stay the same images from one probe to the next.
        idx = probe_indices(data.labels_test, PROBE_IMAGES, seed)
        self.probe_idx = idx[np.random.default_rng(seed).permutation(len(idx))]
        self.x_probe = data.x_test[self.probe_idx]
        self.y_probe = data.labels_test[self.probe_idx]
        self.probe_n = min(len(idx), PROBE_START_IMAGES)
        idx = sample_points(data.labels_test, FRAME_POINTS, seed)
        self.x_frame = data.x_test[idx]
        self.frames = Frames(idx, data.labels_test[idx])
        self.probes = Cadence(steps_per_epoch, per_epoch=PROBES_PER_EPOCH, every_s=PROBE_EVERY_S,
                              budget=PROBE_BUDGET)
        if tsne:
            # Imported here, not in the first frame: that frame's cost spaces the next ones,
            # and a one-off import (seconds on a busy machine) would hold them back for minutes.
            import openTSNE.affinity  # noqa: F401

            # front-loaded in the first epoch, where the clusters form (see frame_schedule)
            self.framing = FrontLoaded(steps_per_epoch, budget=TSNE_FIRST_EPOCH_BUDGET, later=Cadence(
                steps_per_epoch, per_epoch=TSNE_FRAMES_PER_EPOCH, every_s=FRAME_EVERY_S, budget=TSNE_FRAME_BUDGET))
        else:
            self.framing = Cadence(steps_per_epoch, per_epoch=2, every_s=FRAME_EVERY_S, budget=FRAME_BUDGET)

    def probe(self, model: Classifier, step: int, train_acc: float) -> Probe:
        n = self.probe_n
        acc = float((model.forward(self.x_probe[:n]).argmax(1) == self.y_probe[:n]).mean())
        return Probe(step, step / self.steps_per_epoch, acc, train_acc)

    def fit_probe(self, cost_s: float, step_s: float) -> float:
        """Resize the probe subset so that a probe every `1/PROBES_PER_EPOCH` of an epoch stays
        inside `PROBE_SIZE_BUDGET` (a 2,000-image probe of a CNN costs several training steps, which
        left a short epoch with one point); at most doubles at a time. `cost_s` is what the
        last probe took, `step_s` one training step; returns what the next probe should take."""
        allowed = PROBE_SIZE_BUDGET * self.probes.step_gap * step_s
        n = self.probe_n * min(2.0, allowed / max(cost_s, 1e-9))
        new = int(np.clip(n, min(PROBE_MIN_IMAGES, len(self.y_probe)), len(self.y_probe)))
        expected = cost_s * new / self.probe_n
        self.probe_n = new
        return expected

    def frame(self, model: Classifier, step: int) -> tuple | None:
        """A new frame's fields for `Frames.add` (the caller adds it, under its own lock), or
        None when the features are not finite (a diverged model)."""
        features, logits = model.features_and_logits(self.x_frame)  # (P, F), (P, 10)
        preds = logits.argmax(1)
        if not np.isfinite(features).all():
            return
        prev_pca = self.frames.pca[-1] if self.frames.pca else None
        with one_blas_thread():
            pca = _aligned(principal_components(features, 2, self.seed, exact_max=0), prev_pca)
        tsne = None
        if self.use_tsne and len(features) >= 5:
            prev = self.frames.tsne[-1] if self.frames.tsne else None
            tsne = tsne_follow(features, prev, self.seed)
        weights = first_layer_weights(model)
        units = weights[:FRAME_UNITS] if weights.ndim == 4 else weights[:, :FRAME_UNITS].T
        return step, step / self.steps_per_epoch, pca.astype(np.float32), tsne, preds, units


__all__ = ["Cadence", "Frames", "Monitor", "Probe", "probe_indices"]
