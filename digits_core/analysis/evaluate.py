"""Scoring a model: confusion matrix, per-class metrics, mistakes, and a run on its test split.

The metrics are pure NumPy on arrays: they take `probs (N, C) float` and `labels (N,) int`
and know nothing about models or pages, so every model family and the CLI share them.
`evaluate_run` scores a run (plus the strict "percent correct" rule of the squared-error
systems); `cell_examples` picks the images behind one cell of the confusion matrix.
A prediction of -1 means "no decision" (the strict rule of `strict_predictions`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from digits_core.data.datasets import MAX_VALUE, NUM_CLASSES, Dataset
from digits_core.images.pictures import safe_ratio

if TYPE_CHECKING:
    from digits_core.store.runs import Run

MAX_EXAMPLES = 24  # images shown for one confusion-matrix cell

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
    precision = safe_ratio(hits, predicted)
    recall = safe_ratio(hits, support)
    f1 = safe_ratio(2 * precision * recall, precision + recall)
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


@dataclass
class RunEvaluation:
    """A run scored on its test split."""

    report: Report  # accuracy, per-class precision/recall/F1, confusion (10, 10)
    probs: np.ndarray  # (N, 10) float32
    preds: np.ndarray  # (N,) int64, argmax of probs
    labels: np.ndarray  # (N,) int64
    images_test: np.ndarray  # (N, H, W) uint8, raw pixels
    max_value: float  # the raw pixel range of images_test (16 digits, 255 MNIST)
    strict_preds: np.ndarray  # (N,) int64, the strict rule's class or -1 ("no decision")
    strict_accuracy: float  # share of samples whose strict prediction is the label
    strict_confusion: np.ndarray  # (10, 11) int64, last column counts "no decision"


def evaluate_run(run: Run, data: Dataset) -> RunEvaluation:
    """Score `run`'s model on `data`'s test split (normalised with the run's own normaliser)."""
    probs = run.model.probs(run.normalizer(data.images_test))  # (N, 10)
    labels = np.asarray(data.labels_test, np.int64)
    strict = strict_predictions(probs)
    return RunEvaluation(
        report=evaluate_probs(probs, labels),
        probs=probs,
        preds=probs.argmax(1).astype(np.int64),
        labels=labels,
        images_test=data.images_test,
        max_value=MAX_VALUE[data.name],
        strict_preds=strict,
        strict_accuracy=float((strict == labels).mean()),
        strict_confusion=confusion_matrix(labels, strict, include_no_decision=True),
    )


def uses_strict_rule(run: Run) -> bool:
    """True for runs trained like the squared-error systems (S1a, S1b, S5), whose write-ups
    counted a sample as correct only when the rounded output vector was the one-hot label."""
    return run.experiment.train.loss == "mse-softmax"


@dataclass
class Example:
    """One test image behind a confusion-matrix cell."""

    index: int  # position in the test split
    image: np.ndarray  # (H, W) uint8, raw pixels
    true: int
    pred: int
    confidence: float  # probability of the predicted class
    probs: np.ndarray  # (10,) float32

    @property
    def caption(self) -> str:
        return f"true {self.true} -> predicted {self.pred} ({self.confidence:.0%})"


def most_confused(confusion: np.ndarray) -> tuple[int, int] | None:
    """The off-diagonal cell (true, pred) of `confusion (C, C')` with the most samples, or None
    when there is no mistake. Ties go to the first cell in reading order."""
    c = np.array(confusion, dtype=np.int64)
    n = min(c.shape)
    c[np.arange(n), np.arange(n)] = 0
    if c.max() <= 0:
        return None
    t, p = np.unravel_index(int(c.argmax()), c.shape)
    return int(t), int(p)


def cell_indices(
    probs: np.ndarray, labels: np.ndarray, true: int, pred: int, limit: int | None = None
) -> np.ndarray:
    """Indices (M,) int64 of the samples in the confusion cell (true, pred).

    Off the diagonal: the mistakes, most confident first. On it: the correct ones, least
    confident first, since the shakiest right answers are the instructive ones.
    """
    if true != pred:
        return misclassified(probs, labels, true=true, pred=pred, limit=limit)
    probs = np.asarray(probs)
    preds = probs.argmax(1)
    idx = np.flatnonzero((np.asarray(labels) == true) & (preds == true))
    idx = idx[np.argsort(probs[idx, true], kind="stable")]
    return idx if limit is None else idx[: max(limit, 0)]


def cell_examples(
    ev: RunEvaluation, true: int, pred: int, limit: int = MAX_EXAMPLES
) -> list[Example]:
    """The images of confusion cell (true, pred), ordered as `cell_indices` orders them."""
    return [
        Example(
            int(i),
            ev.images_test[i],
            int(ev.labels[i]),
            int(ev.preds[i]),
            float(ev.probs[i, ev.preds[i]]),
            ev.probs[i],
        )
        for i in cell_indices(ev.probs, ev.labels, true, pred, limit)
    ]
