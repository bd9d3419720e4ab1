"""What the Evaluate, Embedding and Draw pages show, computed from a run and its data.

`evaluate_run` scores a run on its own test split (plus the strict "percent correct" rule
of the squared-error systems); `cell_examples` picks the images behind one cell of the
confusion matrix; `embedding_for_run` maps a stratified sample of the test set's
last-hidden-layer features to 2-D. The rest turns arrays into pictures a browser can show
without smoothing them: `display_image` (a digit, upscaled by whole pixels) and
`first_layer_mosaic` (what each first-layer unit looks for, blue negative, red positive).
Everything here is a pure function of arrays and settings, so a page can cache it.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from .data import MAX_VALUE, Dataset
from .drawing import load_image_file
from .embedding import embed, sample_points
from .errors import DrawingError
from .evaluate import (
    Report,
    confusion_matrix,
    evaluate_probs,
    first_layer_images,
    misclassified,
    strict_predictions,
)
from .runs import Run

MAX_EXAMPLES = 24  # images shown for one confusion-matrix cell
MAX_UPLOAD_BYTES = 5 * 1024 * 1024  # an image file larger than this is refused unread
MAX_UPLOAD_SIDE = 4096  # pixels; larger images would cost seconds and hundreds of MB to read
NEGATIVE_RGB = (33, 102, 172)  # colour of a weight of -1 (blue)
POSITIVE_RGB = (178, 24, 43)  # colour of a weight of +1 (red); 0 is white


# ------------------------------------------------------------------ evaluation


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


# ------------------------------------------------------------------ embedding


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


# ------------------------------------------------------------------ pictures


def display_image(image: np.ndarray, max_value: float, size: int = 84, frame: int = 0) -> np.ndarray:
    """A raw digit `image (H, W)` in 0..max_value -> (S, S) uint8 grey, S >= size.

    Scaled by whole pixels (nearest neighbour) so an 8x8 digit keeps its blocks instead
    of being blurred by the browser. `frame` adds a mid-grey border of that many pixels, so
    white ink at the edge does not melt into a white page.
    """
    x = np.clip(np.asarray(image, np.float32) / np.float32(max_value), 0.0, 1.0)
    grey = upscale(np.round(x * 255).astype(np.uint8), size)
    return np.pad(grey, frame, constant_values=128) if frame else grey


def upscale(image: np.ndarray, size: int) -> np.ndarray:
    """Repeat each pixel of `image (H, W[, C])` k times each way, k = ceil(size / max(H, W))."""
    k = max(1, -(-size // max(image.shape[:2])))
    return np.repeat(np.repeat(image, k, axis=0), k, axis=1)


def diverging_rgb(x: np.ndarray) -> np.ndarray:
    """Values in [-1, 1] `(...)` -> (..., 3) uint8: blue for -1, white for 0, red for +1.

    NaN (the gaps of a mosaic) comes out light grey.
    """
    x = np.asarray(x, np.float32)
    t = np.clip(np.nan_to_num(x), -1.0, 1.0)[..., None]  # (..., 1)
    white = np.float32(255.0)
    end = np.where(t < 0, np.array(NEGATIVE_RGB, np.float32), np.array(POSITIVE_RGB, np.float32))
    rgb = white + np.abs(t) * (end - white)
    rgb[np.isnan(x)] = 200.0
    return np.round(rgb).astype(np.uint8)


def mosaic(images: np.ndarray, cols: int, gap: int = 1) -> np.ndarray:
    """Tile `images (K, h, w)` in rows of `cols`, `gap` pixels apart: (R, C) float32, NaN gaps."""
    k, h, w = images.shape
    cols = max(1, min(cols, k))
    rows = -(-k // cols)
    out = np.full((rows * (h + gap) - gap, cols * (w + gap) - gap), np.nan, np.float32)
    for i, img in enumerate(images):
        r, c = divmod(i, cols)
        out[r * (h + gap) : r * (h + gap) + h, c * (w + gap) : c * (w + gap) + w] = img
    return out


def first_layer_mosaic(
    weights: np.ndarray,
    image_shape: tuple[int, int],
    *,
    units: int = 32,
    cols: int = 8,
    cell: int = 48,
) -> np.ndarray:
    """The first `units` first-layer units as one picture: (R, C, 3) uint8.

    weights: dense (H*W, K) or conv kernels (K, 1, kh, kw), as `Classifier.first_layer_weights`
    returns them. Each unit is scaled to its own largest |w| (see `first_layer_images`),
    drawn blue (negative) to red (positive), about `cell` pixels across.
    """
    images = first_layer_images(weights, image_shape)[:units]  # (k, h, w) in [-1, 1]
    h, w = images.shape[1:]
    k = max(1, -(-cell // max(h, w)))
    tiles = np.repeat(np.repeat(images, k, axis=1), k, axis=2)  # (k, h*k, w*k)
    return diverging_rgb(mosaic(tiles, cols, gap=max(2, k // 4)))


def load_upload(
    file: BinaryIO | bytes, *, max_bytes: int = MAX_UPLOAD_BYTES, max_side: int = MAX_UPLOAD_SIDE
) -> np.ndarray:
    """An uploaded PNG/JPEG -> (H, W, 4) RGBA uint8, refusing files too large to read safely.

    The byte size and the pixel size (from the header, before decoding) are checked first.
    Raises DrawingError with a one-line message for anything that is not a usable image.
    """
    from PIL import Image

    raw = file if isinstance(file, (bytes, bytearray)) else file.read()
    if len(raw) == 0:
        raise DrawingError("the file is empty")
    if len(raw) > max_bytes:
        raise DrawingError(
            f"the file is {len(raw) / 2**20:.1f} MB; "
            f"images up to {max_bytes / 2**20:.0f} MB are read"
        )
    try:
        with Image.open(io.BytesIO(raw)) as img:
            width, height = img.size
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        width = height = 0  # load_image_file gives the reason
    if max(width, height) > max_side:
        raise DrawingError(
            f"the image is {width}x{height} pixels; at most {max_side} pixels a side are read"
        )
    return load_image_file(io.BytesIO(raw))


__all__ = [
    "MAX_EXAMPLES",
    "Example",
    "EmbeddingResult",
    "RunEvaluation",
    "cell_examples",
    "cell_indices",
    "display_image",
    "diverging_rgb",
    "embedding_for_run",
    "evaluate_run",
    "first_layer_mosaic",
    "load_upload",
    "mosaic",
    "most_confused",
    "upscale",
    "uses_strict_rule",
]


def class_mosaic(images: np.ndarray, labels: np.ndarray, per_class: int = 10) -> np.ndarray:
    """images (N, H, W), labels (N,) -> a (10 H, per_class W) float32 mosaic: row k holds the
    first `per_class` images of class k (blank where a class has fewer)."""
    h, w = images.shape[1:]
    rows = np.zeros((10, per_class, h, w), np.float32)
    for k in range(10):
        idx = np.flatnonzero(labels == k)[:per_class]
        rows[k, : len(idx)] = images[idx]
    return rows.transpose(0, 2, 1, 3).reshape(10 * h, per_class * w)


def dataset_summary(ds) -> dict:
    """What the Data page shows of a Dataset: sizes, a per-class sample mosaic, class
    counts (10,) for train and test, and the mean training image per class (10, H, W)."""
    y = ds.labels_train
    return {
        "n_train": len(y),
        "n_test": len(ds.labels_test),
        "shape": ds.image_shape,
        "mosaic": class_mosaic(ds.images_train, y),
        "train_counts": np.bincount(y, minlength=10),
        "test_counts": np.bincount(ds.labels_test, minlength=10),
        "means": np.stack([ds.images_train[y == k].mean(0) for k in range(10)]).astype(np.float32),
    }
