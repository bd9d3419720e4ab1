"""Where a new image lands among the test digits, as the model's last hidden layer sees them.

`landscape` maps the run's fixed test points (the FRAME_POINTS the live embedding draws,
`monitor.Monitor`: the same stratified sample for the same data seed) once per model:
PCA by its two principal axes, t-SNE by openTSNE, keeping the fitted embedding. `land`
then places a new image without moving the others: PCA by projecting its features on
the same axes, t-SNE by openTSNE's `transform` (plain t-SNE has no way to add a point).
Its nearest test points are found in the feature space itself, not on the map.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.analysis.embedding import FRAME_POINTS, TSNE_SCHEDULE, sample_points
from digits_core.nn.models import Classifier

NEAREST = 8
TRANSFORM_ITER = 50  # openTSNE's transform optimises the new point this many steps (its default 250)


@dataclass
class Landscape:
    indices: np.ndarray  # (P,) int64 positions in the test split
    labels: np.ndarray  # (P,) int64
    images: np.ndarray  # (P, H, W) raw test images
    features: np.ndarray  # (P, F) float32, last hidden layer
    mean: np.ndarray  # (F,) the features' mean
    axes: np.ndarray  # (2, F) the top two principal directions
    pca: np.ndarray  # (P, 2) float32
    tsne: object | None  # openTSNE's TSNEEmbedding of the points (None: not asked for)

    @property
    def tsne_xy(self) -> np.ndarray | None:
        return None if self.tsne is None else np.asarray(self.tsne, np.float32)


@dataclass
class Landing:
    pca: np.ndarray  # (2,) on the PCA map
    tsne: np.ndarray | None  # (2,) on the t-SNE map
    nearest: np.ndarray  # (NEAREST,) positions in the landscape, nearest first
    distances: np.ndarray  # (NEAREST,) Euclidean distances in feature space


def landscape(model: Classifier, normalizer, images_test: np.ndarray, labels_test: np.ndarray, *,
              seed: int = 0, tsne: bool = True, points: int = FRAME_POINTS) -> Landscape:
    """The test points of a run and their 2-D maps. Raises ValueError when the features are
    not finite (a diverged model)."""
    idx = sample_points(labels_test, points, seed)
    images = images_test[idx]
    features = model.features(normalizer(images)).astype(np.float32)  # (P, F)
    if not np.isfinite(features).all():
        raise ValueError("the model's features are not finite numbers: it has diverged")
    mean = features.mean(0)
    vt = np.linalg.svd(features - mean, full_matrices=False)[2][:2]  # (2, F)
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])  # scikit-learn's sign convention
    axes = vt * signs[:, None]
    pca = ((features - mean) @ axes.T).astype(np.float32)
    emb = _tsne(features, seed) if tsne else None
    return Landscape(idx, np.asarray(labels_test[idx], np.int64), images, features, mean, axes, pca, emb)


def _tsne(features: np.ndarray, seed: int):
    from openTSNE import TSNE
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1):  # as `embedding.embed`: one thread is faster on a shared machine
        return TSNE(perplexity=min(30.0, (len(features) - 1) / 3), negative_gradient_method="bh",
                    neighbors="exact", n_jobs=1, random_state=seed, **TSNE_SCHEDULE).fit(features.astype(np.float64))


def land(scape: Landscape, model: Classifier, normalizer, image: np.ndarray) -> Landing:
    """image (H, W) raw pixels -> where it lands on both maps, and its NEAREST test points.
    Raises ValueError when its features are not finite."""
    f = model.features(normalizer(np.asarray(image, np.float32)[None])).astype(np.float32)  # (1, F)
    if not np.isfinite(f).all():
        raise ValueError("the model's features are not finite numbers: it has diverged")
    pca = ((f - scape.mean) @ scape.axes.T)[0].astype(np.float32)
    where = None
    if scape.tsne is not None:
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1):
            where = np.asarray(scape.tsne.transform(f.astype(np.float64), n_iter=TRANSFORM_ITER), np.float32)[0]
    d = np.sqrt(((scape.features - f) ** 2).sum(1))  # (P,)
    nearest = np.argsort(d, kind="stable")[:NEAREST]
    return Landing(pca, where, nearest, d[nearest])


def neighbours_line(labels: np.ndarray, digit: int) -> str:
    """'your 4 sits among these 9s' (or 'among 4s', or 'among 9s and 4s')."""
    counts = np.bincount(labels, minlength=10)
    order = [int(k) for k in np.argsort(-counts, kind="stable") if counts[k]]
    most = order[0]
    if most == digit and counts[most] == len(labels):
        return f"your {digit} sits among {digit}s: the test images it is most like are all {digit}s"
    names = " and ".join(f"{k}s" for k in order[:2])
    return f"your {digit} sits among {names} ({counts[most]} of its {len(labels)} nearest are {most}s)"


__all__ = ["NEAREST", "Landing", "Landscape", "land", "landscape", "neighbours_line"]
