"""2-D maps of a model's last hidden layer: t-SNE, and PCA as the fast alternative.

`embed(features (N, F)) -> embedding (N, 2) float32`, deterministic for a seed.

t-SNE is openTSNE's Barnes-Hut optimiser: exact nearest neighbours (on the top 50
principal components when F > 256), a PCA start and a short schedule (`TSNE_SCHEDULE`).
It runs on one thread: on a shared 2-core machine the multi-threaded variants of
openTSNE, BLAS and scikit-learn spend most of their time waiting for each other.
The benchmark (`benchmarks/bench.py`) measures it against scikit-learn's `TSNE()`
defaults (time, and trustworthiness); scripts/measure_tsne.py compares other candidates.
`embedding_for_run` maps a stratified sample of a run's test set to 2-D.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from digits_core.analysis.evaluate import Example
from digits_core.data.datasets import MAX_VALUE, Dataset

if TYPE_CHECKING:
    from digits_core.store.runs import Run

METHODS = ("tsne", "pca")
DEFAULT_POINTS = 1000  # points the dashboard embeds unless told otherwise
MAX_POINTS = 5000  # the UI's cap: t-SNE of 5000 points takes a few seconds on one core
MIN_POINTS = 5  # fewer points have no neighbourhoods worth keeping

# Chosen with scripts/measure_tsne.py at N=2000 (MNIST hidden layer, pixels, 8x8 digits):
# ~0.2x sklearn's CPU time, trustworthiness within 0.002 of sklearn's; 250+500 iterations
# (openTSNE's default) change trustworthiness by less than 0.001 at N=2000 and N=5000.
TSNE_SCHEDULE = dict(
    early_exaggeration_iter=75,  # iterations with attraction x12 that gather the clusters
    n_iter=150,  # plain iterations that settle them (learning rate N, openTSNE's "auto")
    theta=0.8,  # Barnes-Hut approximation (0 = exact); 0.5 costs 1.7x for +0.001 trust
)
_PROGRESS_EVERY = 15  # iterations between progress reports; divides both phases
PCA_DIMS = 50  # wider features are projected to this many principal components for t-SNE
_EXACT_SVD_MAX = 256  # above this min(N, F) a randomized SVD finds the top components

FRAME_POINTS = 500  # test points in every embedding frame (the live embedding, a drawing's landing)


def embed(
    features: np.ndarray,
    *,
    method: str = "tsne",
    seed: int = 0,
    perplexity: float = 30.0,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Map `features (N, F)` to `embedding (N, 2) float32`, the same for the same seed and data.

    method: "tsne" (keeps neighbourhoods; ~1-2 s for 2000 points) or "pca" (the top two
    principal components; milliseconds). perplexity (t-SNE only) is the effective number
    of neighbours; it is lowered to (N - 1) / 3 for small N. `progress` receives fractions
    from 0.0 to 1.0 while it computes (t-SNE: every few iterations).
    Raises ValueError for fewer than 5 points, NaN/inf features or an unknown method.
    """
    from threadpoolctl import threadpool_limits

    x = _check_features(features)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    report = progress or (lambda fraction: None)
    report(0.0)
    with threadpool_limits(1):  # see the module docstring: one thread is faster when shared
        if method == "pca":
            y = principal_components(x, 2, seed)
        else:
            y = _tsne(x, seed, min(perplexity, (len(x) - 1) / 3), report)
    report(1.0)
    return y.astype(np.float32)


_controller = None  # threadpoolctl's, made once: a limit from it costs microseconds, not a scan


def one_blas_thread():
    """A context in which NumPy's BLAS runs on one thread: small products (a live frame's
    PCA of 500 points) cost ~40x less CPU that way on a busy 2-core machine, where BLAS
    threads spin waiting for each other."""
    global _controller
    from threadpoolctl import ThreadpoolController

    if _controller is None:
        _controller = ThreadpoolController()
    return _controller.limit(limits=1, user_api="blas")


def principal_components(x: np.ndarray, k: int, seed: int = 0, *, exact_max: int | None = None) -> np.ndarray:
    """Projection of `x (N, F)` on its top k principal components: (N, k), float64 for
    float64 `x` (float32 stays float32).

    Exact SVD when min(N, F) <= `exact_max` (256), else a seeded randomized SVD (accurate
    for the leading components, far cheaper: a live frame's two components of 500 points
    take about a millisecond that way against 24 ms exactly). Columns beyond min(N, F)
    are zero. Signs follow scikit-learn's convention (each component's largest |loading|
    is positive), so the picture does not flip between calls.
    """
    xc = x - x.mean(0)  # (N, F)
    r = min(k, *xc.shape)
    if min(xc.shape) <= (_EXACT_SVD_MAX if exact_max is None else exact_max):
        vt = np.linalg.svd(xc, full_matrices=False)[2][:r]  # (r, F)
    else:
        vt = _leading_directions(xc, r, seed)  # (r, F)
    signs = np.sign(vt[np.arange(r), np.abs(vt).argmax(1)])  # (r,)
    y = xc @ (vt * signs[:, None]).T  # (N, r)
    return np.pad(y, ((0, 0), (0, k - r)))


def _leading_directions(xc: np.ndarray, r: int, seed: int, oversample: int = 10, power: int = 4):
    """The top `r` right singular vectors of `xc (N, F)`, (r, F), by subspace iteration from a
    seeded random start (Halko, Martinsson & Tropp 2011), re-orthonormalised by QR at every
    pass; NumPy alone, so a live frame never waits for scikit-learn's import."""
    omega = np.random.default_rng(seed).normal(size=(xc.shape[1], min(r + oversample, min(xc.shape))))
    omega = omega.astype(xc.dtype)  # float32 features stay float32: half the work of a frame
    q = np.linalg.qr(xc @ omega)[0]  # (N, r + p)
    for _ in range(power):
        q = np.linalg.qr(xc.T @ q)[0]  # (F, r + p)
        q = np.linalg.qr(xc @ q)[0]  # (N, r + p)
    return np.linalg.svd(q.T @ xc, full_matrices=False)[2][:r]  # (r, F)


def _tsne(x: np.ndarray, seed: int, perplexity: float, report: Callable[[float], None]):
    from openTSNE import TSNE

    total = TSNE_SCHEDULE["early_exaggeration_iter"] + TSNE_SCHEDULE["n_iter"]
    done = 0

    def on_iterations(iteration: int, error: float, embedding: np.ndarray) -> bool:
        nonlocal done
        done += _PROGRESS_EVERY
        report(min(done / total, 1.0))
        return False  # never stop early

    # One PCA gives both the start and, for wide features, the neighbour-search space.
    # A PCA start keeps the global layout and leaves the seed little to vary: the tiny
    # jitter (it keeps duplicate points apart in the quad tree) and a randomized SVD.
    pcs = principal_components(x, min(PCA_DIMS, x.shape[1]), seed)  # (N, <=50)
    search = pcs if x.shape[1] > _EXACT_SVD_MAX else x
    init = pcs[:, :2] if pcs.shape[1] >= 2 else np.pad(pcs, ((0, 0), (0, 1)))  # (N, 2)
    scale = init[:, 0].std()
    init = init / scale * 1e-4 if scale > 0 else np.zeros_like(init)
    init += np.random.default_rng(seed).normal(0.0, 1e-6, init.shape)
    tsne = TSNE(
        perplexity=perplexity,
        negative_gradient_method="bh",
        neighbors="exact",
        n_jobs=1,
        random_state=seed,
        callbacks=on_iterations,
        callbacks_every_iters=_PROGRESS_EVERY,
        **TSNE_SCHEDULE,
    )
    return np.asarray(tsne.fit(search, initialization=init))


# A live frame (see `tsne_follow`), chosen by measuring schedules on S4's last layer
# (500 points, 1568 features, a frame every 60 steps): per frame ~0.07 s on one core
# against ~0.5 s for `embed`, points moving ~5 % of the layout's spread between frames,
# trustworthiness within 0.01 of a fresh `embed` of the same features after a few frames.
FOLLOW_SCHEDULE = dict(early_exaggeration_iter=8, early_exaggeration=4.0, n_iter=22)
FIRST_FRAME_SCHEDULE = dict(early_exaggeration_iter=25, early_exaggeration=12.0, n_iter=25)
FOLLOW_THETA = 0.8  # Barnes-Hut approximation, as TSNE_SCHEDULE's


def tsne_follow(features: np.ndarray, previous: np.ndarray | None, seed: int = 0) -> np.ndarray:
    """One frame of a live t-SNE: `features (N, F)` embedded starting from `previous (N, 2)`,
    the last frame of the same points, at its own scale, so that a sequence of frames moves
    smoothly instead of jumping. A short schedule (`FOLLOW_SCHEDULE`): a little
    exaggeration lets clusters that the new features pull apart move, then plain
    iterations settle them; over a few frames the layout catches up with the features.
    Without a previous frame it starts from the top two principal components with a
    short full schedule (`FIRST_FRAME_SCHEDULE`). Neighbours are exact, in the feature
    space itself (500 points need no PCA first). Returns (N, 2) float32.
    """
    from openTSNE import TSNEEmbedding
    from openTSNE.affinity import PerplexityBasedNN
    from threadpoolctl import threadpool_limits

    x = _check_features(features).astype(np.float32)
    with threadpool_limits(1):  # as in `embed`: one thread is faster on a shared machine
        affinities = PerplexityBasedNN(x, perplexity=min(30.0, (len(x) - 1) / 3), method="exact",
                                       n_jobs=1, random_state=seed)
        if previous is None:
            init = principal_components(x, 2, seed, exact_max=0)  # (N, 2)
            init = init / max(float(init[:, 0].std()), 1e-12) * 1e-4  # openTSNE's advice for a start
            schedule = FIRST_FRAME_SCHEDULE
        else:
            init = np.asarray(previous, np.float64) - np.mean(previous, 0)
            schedule = FOLLOW_SCHEDULE
        y = TSNEEmbedding(np.ascontiguousarray(init), affinities, negative_gradient_method="bh",
                          theta=FOLLOW_THETA, n_jobs=1, random_state=seed)
        y = y.optimize(schedule["early_exaggeration_iter"], exaggeration=schedule["early_exaggeration"],
                       momentum=0.5, inplace=True)
        y = y.optimize(schedule["n_iter"], momentum=0.8, inplace=True)
    return np.asarray(y, dtype=np.float32)


def sample_points(labels: np.ndarray, n: int, seed: int) -> np.ndarray:
    """`n` indices into `labels (N,)`, stratified by class, seeded, ascending; all if n >= N.

    Each class gets its share of n, rounded by largest remainder, so the classes of the
    sample are in the same proportions as in `labels` to within one point.
    """
    labels = np.asarray(labels)
    if n >= len(labels):
        return np.arange(len(labels), dtype=np.int64)
    if n < 0:
        raise ValueError(f"n must be at least 0, got {n}")
    classes, counts = np.unique(labels, return_counts=True)
    quota = counts * n / len(labels)  # (C,) exact shares, each < count
    take = np.floor(quota).astype(np.int64)
    by_remainder = np.argsort(-(quota - take), kind="stable")
    take[by_remainder[: n - take.sum()]] += 1
    rng = np.random.default_rng(seed)
    picks = [
        rng.choice(np.flatnonzero(labels == c), k, replace=False) for c, k in zip(classes, take)
    ]
    return np.sort(np.concatenate(picks)).astype(np.int64)


def _check_features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, F), got shape {x.shape}")
    if len(x) < MIN_POINTS:
        raise ValueError(f"an embedding needs at least {MIN_POINTS} points, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values; the model may have diverged")
    return np.ascontiguousarray(x)


@dataclass
class EmbeddingResult:
    """A 2-D map of a sample of the test set, as the model's last hidden layer sees it."""

    xy: np.ndarray  # (n, 2) float32
    indices: np.ndarray  # (n,) int64, positions in the test split
    labels: np.ndarray  # (n,) int64
    preds: np.ndarray  # (n,) int64
    probs: np.ndarray  # (n, 10) float32
    images: np.ndarray  # (n, H, W) uint8, raw pixels, for showing a chosen point
    max_value: float  # raw pixel range of images

    @property
    def confidence(self) -> np.ndarray:
        """(n,) float32 probability of each point's predicted class."""
        return self.probs[np.arange(len(self.preds)), self.preds]

    @property
    def wrong(self) -> np.ndarray:
        """(n,) bool, misclassified points."""
        return self.preds != self.labels

    def columns(self) -> dict[str, np.ndarray]:
        """One column per field a scatter plot colours, marks or hovers by; n rows each."""
        return {
            "x": self.xy[:, 0],
            "y": self.xy[:, 1],
            "true": self.labels.astype(str),  # a category, so each digit gets its own colour
            "predicted": self.preds,
            "confidence": self.confidence,
            "test image": self.indices,
            "point": np.arange(len(self.labels)),
            "status": np.where(self.wrong, "misclassified", "correct"),
        }

    def example(self, point: int) -> Example:
        """Point `point` (0..n-1) of the map, with its image, as a confusion cell shows it."""
        pred = int(self.preds[point])
        return Example(
            int(self.indices[point]),
            self.images[point],
            int(self.labels[point]),
            pred,
            float(self.probs[point, pred]),
            self.probs[point],
        )


def embedding_for_run(
    run: Run,
    data: Dataset,
    *,
    method: str = "tsne",
    n_points: int = 1000,
    seed: int = 0,
    perplexity: float = 30.0,
    progress: Callable[[float], None] | None = None,
) -> EmbeddingResult:
    """Embed `n_points` test images (stratified, seeded) by their last-hidden-layer features.

    `progress` gets fractions 0..1 while the embedding is computed. Raises ValueError for
    fewer than 5 points or features that are not finite (a diverged model).
    """
    idx = sample_points(data.labels_test, n_points, seed)
    x = run.normalizer(data.images_test[idx])  # (n, H, W) float32
    features = run.model.features(x)  # (n, F)
    xy = embed(features, method=method, seed=seed, perplexity=perplexity, progress=progress)
    probs = run.model.probs(x)  # (n, 10)
    return EmbeddingResult(
        xy=xy,
        indices=idx,
        labels=np.asarray(data.labels_test[idx], np.int64),
        preds=probs.argmax(1).astype(np.int64),
        probs=probs,
        images=data.images_test[idx],
        max_value=MAX_VALUE[data.name],
    )
