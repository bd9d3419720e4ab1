"""2-D maps of a model's last hidden layer: t-SNE, and PCA as the fast alternative.

`embed(features (N, F)) -> embedding (N, 2) float32`, deterministic for a seed.
t-SNE is openTSNE's Barnes-Hut optimiser on exact nearest neighbours with a PCA
start and a shortened schedule (see `TSNE_SCHEDULE`); `tsne_vs_sklearn` measures it
against scikit-learn's `TSNE()` defaults, in time and in trustworthiness.
"""

from __future__ import annotations

import time
from typing import Callable

import numpy as np

METHODS = ("tsne", "pca")
DEFAULT_POINTS = 1000  # points the dashboard embeds unless told otherwise
MAX_POINTS = 5000  # the UI's cap: Barnes-Hut t-SNE grows as N log N, a few seconds here
MIN_POINTS = 5  # fewer points have no neighbourhoods worth keeping

# Chosen by scripts/measure_tsne.py at N=2000 (see its table in the README).
TSNE_SCHEDULE = dict(
    early_exaggeration_iter=250,  # iterations with attraction x12 that form the clusters
    n_iter=250,  # plain iterations after that; 500 more change trustworthiness < 0.002
    theta=0.5,  # Barnes-Hut accuracy (0 exact); sklearn's default angle too
)
_CALLBACK_EVERY = 10  # iterations between progress reports; divides both phases


def embed(
    features: np.ndarray,
    *,
    method: str = "tsne",
    seed: int = 0,
    perplexity: float = 30.0,
    progress: Callable[[float], None] | None = None,
) -> np.ndarray:
    """Map `features (N, F)` to `embedding (N, 2) float32`, the same for the same seed and data.

    method: "tsne" (neighbourhoods kept, seconds) or "pca" (the top two principal
    components, milliseconds). perplexity (t-SNE only) is the effective number of
    neighbours; it is lowered to (N - 1) / 3 for small N. `progress` receives
    fractions from 0.0 to 1.0 while it computes (t-SNE: every few iterations).
    Raises ValueError for fewer than 5 points, NaN/inf features or an unknown method.
    """
    x = _check_features(features)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(METHODS)}, got {method!r}")
    if not perplexity > 0:
        raise ValueError(f"perplexity must be positive, got {perplexity}")
    report = progress or (lambda fraction: None)
    report(0.0)
    if method == "pca":
        y = pca_2d(x)
    else:
        y = _tsne(x, seed, min(perplexity, (len(x) - 1) / 3), report)
    report(1.0)
    return y.astype(np.float32)


def pca_2d(x: np.ndarray) -> np.ndarray:
    """The top two principal components of `x (N, F)`: (N, 2) float64, zero-padded if F < 2.

    Signs follow scikit-learn's convention (the largest |loading| of each component is
    positive), so the picture does not flip between calls.
    """
    xc = x - x.mean(0)  # (N, F)
    _, s, vt = np.linalg.svd(xc, full_matrices=False)  # vt (k, F)
    vt = vt[:2]
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(1)])  # (k,)
    y = xc @ (vt * signs[:, None]).T  # (N, k)
    return np.pad(y, ((0, 0), (0, 2 - y.shape[1])))


def _tsne(x: np.ndarray, seed: int, perplexity: float, report: Callable[[float], None]):
    from openTSNE import TSNE

    schedule = dict(TSNE_SCHEDULE)
    total = schedule["early_exaggeration_iter"] + schedule["n_iter"]
    done = 0

    def on_iterations(iteration: int, error: float, embedding: np.ndarray) -> bool:
        nonlocal done
        done += _CALLBACK_EVERY
        report(min(done / total, 1.0))
        return False  # never stop early

    # Start from PCA, scaled small as t-SNE expects, so the result is seeded and global
    # structure survives; the tiny jitter keeps duplicate points apart in the quad tree.
    rng = np.random.default_rng(seed)
    init = pca_2d(x)
    scale = init[:, 0].std()
    init = init / scale * 1e-4 if scale > 0 else np.zeros_like(init)
    init += rng.normal(0.0, 1e-6, init.shape)
    tsne = TSNE(
        perplexity=perplexity,
        negative_gradient_method="bh",
        neighbors="exact",
        n_jobs=1,
        random_state=seed,
        callbacks=on_iterations,
        callbacks_every_iters=_CALLBACK_EVERY,
        **schedule,
    )
    return np.asarray(tsne.fit(x, initialization=init))


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


def tsne_vs_sklearn(features: np.ndarray, *, seed: int = 0, repeats: int = 3) -> dict[str, float]:
    """Time and quality of `embed(method="tsne")` against sklearn's `TSNE(random_state=seed)`.

    Runs alternate (ours, sklearn, ours, ...) so a busy machine slows both alike.
    Returns medians over `repeats`: time_ours, time_sklearn (seconds), ratio
    (time_ours / time_sklearn), trust_ours, trust_sklearn (trustworthiness, 10 neighbours).
    """
    from sklearn.manifold import TSNE, trustworthiness

    x = _check_features(features)
    runs = {
        "ours": lambda: embed(x, method="tsne", seed=seed),
        "sklearn": lambda: TSNE(random_state=seed).fit_transform(x),
    }
    times: dict[str, list[float]] = {k: [] for k in runs}
    trusts: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            t0 = time.perf_counter()
            y = run()
            times[name].append(time.perf_counter() - t0)
            trusts[name].append(trustworthiness(x, y, n_neighbors=10))
    out = {f"time_{k}": float(np.median(v)) for k, v in times.items()}
    out |= {f"trust_{k}": float(np.median(v)) for k, v in trusts.items()}
    out["ratio"] = out["time_ours"] / out["time_sklearn"]
    return out


def _check_features(features: np.ndarray) -> np.ndarray:
    x = np.asarray(features, dtype=np.float64)
    if x.ndim != 2:
        raise ValueError(f"features must be (N, F), got shape {x.shape}")
    if len(x) < MIN_POINTS:
        raise ValueError(f"an embedding needs at least {MIN_POINTS} points, got {len(x)}")
    if not np.isfinite(x).all():
        raise ValueError("features contain NaN or infinite values; the model may have diverged")
    return np.ascontiguousarray(x)
