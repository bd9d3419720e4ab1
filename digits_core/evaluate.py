"""Scoring a model's outputs: confusion matrix, per-class metrics, errors, first-layer images.

Pure NumPy on arrays: the functions take `probs (N, C) float` and `labels (N,) int`
and know nothing about models or pages, so every model family and the CLI share them.
A prediction of -1 means "no decision" (the strict rule of `strict_predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .data import NUM_CLASSES

NO_DECISION = -1  # the prediction of a sample the strict rule refuses to classify


def confusion_matrix(
    labels: np.ndarray,
    preds: np.ndarray,
    n_classes: int = NUM_CLASSES,
    *,
    include_no_decision: bool = False,
) -> np.ndarray:
    """Count of (true, predicted) pairs: rows are true classes, columns predicted ones.

    labels (N,) int in 0..C-1; preds (N,) int in 0..C-1, or -1 ("no decision") when
    `include_no_decision` is set. Returns (C, C) int64, or (C, C+1) int64 whose last
    column counts each class's no-decisions.
    """
    labels, preds = _as_int_pair(labels, preds)
    _check_range("labels", labels, 0, n_classes)
    low = NO_DECISION if include_no_decision else 0
    _check_range("preds", preds, low, n_classes)
    n_cols = n_classes + 1 if include_no_decision else n_classes
    cols = np.where(preds == NO_DECISION, n_classes, preds)  # -1 lands in the extra column
    flat = np.bincount(labels * n_cols + cols, minlength=n_classes * n_cols)
    return flat.reshape(n_classes, n_cols).astype(np.int64)


@dataclass
class Report:
    """Scores of one model on one labelled set of C classes."""

    accuracy: float  # share of samples whose argmax is the label
    precision: np.ndarray  # (C,) float64, 0 for a class never predicted
    recall: np.ndarray  # (C,) float64, 0 for a class absent from the labels
    f1: np.ndarray  # (C,) float64, 0 where precision + recall is 0
    support: np.ndarray  # (C,) int64, samples of each true class
    confusion: np.ndarray  # (C, C) int64, rows true, columns predicted
    n: int  # number of samples scored


def evaluate_probs(probs: np.ndarray, labels: np.ndarray) -> Report:
    """Score `probs (N, C) float` (any scores; the argmax is the prediction) against `labels (N,)`.

    Metrics follow scikit-learn's `precision_recall_fscore_support(zero_division=0)`:
    an undefined ratio (no predictions, no samples) is 0, and no warning is raised.
    """
    probs = _check_probs(probs)
    n, n_classes = probs.shape
    if n == 0:
        raise ValueError("cannot evaluate an empty set of predictions")
    preds = probs.argmax(1)
    confusion = confusion_matrix(labels, preds, n_classes)
    hits = np.diag(confusion).astype(np.float64)
    support = confusion.sum(1)
    predicted = confusion.sum(0)
    precision = _safe_ratio(hits, predicted)
    recall = _safe_ratio(hits, support)
    f1 = _safe_ratio(2 * precision * recall, precision + recall)
    return Report(
        accuracy=float(hits.sum() / n),
        precision=precision,
        recall=recall,
        f1=f1,
        support=support,
        confusion=confusion,
        n=n,
    )


def misclassified(
    probs: np.ndarray,
    labels: np.ndarray,
    *,
    true: int | None = None,
    pred: int | None = None,
    limit: int | None = None,
) -> np.ndarray:
    """Indices (M,) int64 of the samples whose argmax is wrong, most confident mistake first.

    `true`/`pred` keep only one row/column of the confusion matrix (both: one cell).
    Ties in confidence keep index order. `limit` keeps the first `limit` indices.
    """
    probs = _check_probs(probs)
    labels, preds = _as_int_pair(labels, probs.argmax(1))
    wrong = preds != labels
    if true is not None:
        wrong &= labels == true
    if pred is not None:
        wrong &= preds == pred
    idx = np.flatnonzero(wrong)
    confidence = probs[idx, preds[idx]]
    idx = idx[np.argsort(-confidence, kind="stable")]
    return idx if limit is None else idx[: max(limit, 0)]


def strict_predictions(probs: np.ndarray) -> np.ndarray:
    """The classic "percent correct" rule: (N,) int64 class, or -1 for "no decision".

    A sample gets a class only if its rounded output vector is exactly one-hot. For
    probabilities that sum to 1 this means the largest one is above 0.5 (0.5 itself
    rounds to 0); raw outputs outside 0..1 round to other integers and get -1.
    """
    probs = _check_probs(probs)
    rounded = np.round(probs)
    one_hot = ((rounded == 1).sum(1) == 1) & ((rounded == 0) | (rounded == 1)).all(1)
    return np.where(one_hot, probs.argmax(1), NO_DECISION).astype(np.int64)


def first_layer_images(weights: np.ndarray, image_shape: tuple[int, int]) -> np.ndarray:
    """What each first-layer unit looks for, as one image per unit: (K, h, w) float32.

    weights is either a dense matrix (H*W, K) (in_features, units; a torch `Linear`
    stores (K, H*W), pass its `.T`) giving (K, H, W) for `image_shape` (H, W), or conv
    kernels (K, 1, kh, kw) giving (K, kh, kw) (image_shape is then not used).
    Each image is divided by its own largest |w|, so it lies in [-1, 1] and 0 stays 0:
    a diverging colour map shows the sign, and units of different scale compare by shape.
    An all-zero unit stays all zero.
    """
    w = np.asarray(weights, dtype=np.float64)
    h, wd = image_shape
    if w.ndim == 4:
        if w.shape[1] != 1:
            raise ValueError(
                f"conv kernels must have 1 input channel to be drawn, got shape {w.shape}"
            )
        images = w[:, 0]  # (K, kh, kw)
    elif w.ndim == 2:
        if w.shape[0] != h * wd:
            hint = " (a torch Linear weight is (out, in): pass its .T)" if w.shape[1] == h * wd else ""
            raise ValueError(
                f"dense weights must be (in_features={h * wd}, units), got {w.shape}{hint}"
            )
        images = w.T.reshape(-1, h, wd)  # (K, H, W)
    else:
        raise ValueError(f"weights must be (in, K) or (K, 1, kh, kw), got shape {w.shape}")
    scale = np.abs(images).max(axis=(1, 2), keepdims=True)  # (K, 1, 1)
    return _safe_ratio(images, scale).astype(np.float32)


def _safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, 0 where den is 0, without a division warning."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


def _check_probs(probs: np.ndarray) -> np.ndarray:
    probs = np.asarray(probs)
    if probs.ndim != 2:
        raise ValueError(f"probs must be (N, C), got shape {probs.shape}")
    return probs


def _as_int_pair(labels: np.ndarray, preds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    labels, preds = np.asarray(labels), np.asarray(preds)
    if labels.ndim != 1 or labels.shape != preds.shape:
        raise ValueError(
            f"labels and preds must be (N,) of the same length, got {labels.shape} and {preds.shape}"
        )
    for name, a in (("labels", labels), ("preds", preds)):
        if a.size and not np.issubdtype(a.dtype, np.integer):
            raise ValueError(f"{name} must be integers, got dtype {a.dtype}")
    return labels.astype(np.int64), preds.astype(np.int64)


def _check_range(name: str, a: np.ndarray, low: int, high: int) -> None:
    if a.size and (a.min() < low or a.max() >= high):
        raise ValueError(f"{name} must lie in {low}..{high - 1}, got {a.min()}..{a.max()}")
