"""Datasets: the bundled 8x8 digits and MNIST, split, subset and normalised.

Naming follows scikit-learn: `load_*` is offline, `fetch_*` (in `mnist`) downloads.
Images are kept as `(N, H, W) uint8` until `Normalizer` turns them into the
`(N, H, W) float32` a model consumes; the same normalizer is saved with every run
and applied to canvas drawings, so training and drawing see the same numbers.
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits_core.config import DataConfig
from digits_core.errors import ConfigError

NUM_CLASSES = 10
MAX_VALUE = {"digits": 16.0, "mnist": 255.0}  # the range each dataset's pixels come in
IMAGE_SHAPE = {"digits": (8, 8), "mnist": (28, 28)}


def load_digits() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn's bundled digits, offline.

    Returns images (1797, 8, 8) uint8 in 0..16 and labels (1797,) int64.

    The CSV that scikit-learn ships is read directly: importing sklearn (and scipy with it)
    costs a second or more, which the Home page and a first digits run need not pay.
    """
    path = _bundled_digits_file()
    if path is None:  # a scikit-learn that keeps its data elsewhere
        from sklearn.datasets import load_digits as _sk_load_digits

        bunch = _sk_load_digits()
        return bunch.images.astype(np.uint8), bunch.target.astype(np.int64)
    with gzip.open(path, "rt") as f:
        rows = np.loadtxt(f, delimiter=",", dtype=np.int64)  # (1797, 65): 64 pixels, label
    return rows[:, :-1].astype(np.uint8).reshape(-1, 8, 8), np.ascontiguousarray(rows[:, -1])


def _bundled_digits_file() -> Path | None:
    """sklearn/datasets/data/digits.csv.gz, found without importing sklearn."""
    spec = importlib.util.find_spec("sklearn")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root, "datasets", "data", "digits.csv.gz")
        if path.is_file():
            return path
    return None


@dataclass
class Normalizer:
    """Maps raw pixel values to model inputs; fitted on the training images only."""

    mode: str  # unit | standardize | raw
    max_value: float  # 16 (digits) or 255 (MNIST)
    mean: np.ndarray | None = None  # (H, W) float32, standardize only
    std: np.ndarray | None = None  # (H, W) float32, standardize only

    @classmethod
    def fit(cls, mode: str, max_value: float, images: np.ndarray) -> Normalizer:
        if mode != "standardize":
            return cls(mode, max_value)
        x = images.astype(np.float32) / max_value
        # Pixels that never vary (corners of the digits set) would divide by zero.
        return cls(mode, max_value, x.mean(0), np.maximum(x.std(0), 1e-2).astype(np.float32))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        """images (N, H, W) in 0..max_value (any dtype) -> (N, H, W) float32."""
        if self.mode == "raw":
            return np.ascontiguousarray(images, dtype=np.float32)
        # one new array, changed in place: the training set is 188 MB of float32 for MNIST,
        # and each temporary was another 188 MB to allocate and fill (the same numbers)
        x = np.array(images, dtype=np.float32, order="C")  # a copy, also of a float32 input
        x /= np.float32(self.max_value)
        if self.mode == "standardize":
            x -= self.mean
            x /= self.std
        return x

    def to_arrays(self) -> dict[str, np.ndarray]:
        d = {"mode": np.array(self.mode), "max_value": np.array(self.max_value)}
        if self.mean is not None:
            d["mean"], d["std"] = self.mean, self.std
        return d

    @classmethod
    def from_arrays(cls, d: dict[str, np.ndarray]) -> Normalizer:
        mean = d.get("mean")
        return cls(
            str(d["mode"]),
            float(d["max_value"]),
            None if mean is None else np.asarray(mean, np.float32),
            None if mean is None else np.asarray(d["std"], np.float32),
        )


@dataclass
class Dataset:
    """A split dataset. Images stay raw; `x_train`/`x_test` are the normalised views."""

    name: str  # digits | mnist
    images_train: np.ndarray  # (N, H, W) uint8
    labels_train: np.ndarray  # (N,) int64
    images_test: np.ndarray  # (M, H, W) uint8
    labels_test: np.ndarray  # (M,) int64
    normalizer: Normalizer

    @property
    def image_shape(self) -> tuple[int, int]:
        return tuple(self.images_train.shape[1:])

    @property
    def x_train(self) -> np.ndarray:
        """(N, H, W) float32, normalised."""
        if not hasattr(self, "_x_train"):
            self._x_train = self.normalizer(self.images_train)
        return self._x_train

    @property
    def x_test(self) -> np.ndarray:
        """(M, H, W) float32, normalised."""
        if not hasattr(self, "_x_test"):
            self._x_test = self.normalizer(self.images_test)
        return self._x_test


def load_dataset(cfg: DataConfig) -> Dataset:
    """Load, split, subset and fit the normaliser as `cfg` says. Raises DataError/ConfigError."""
    cfg.validate()
    if cfg.dataset == "digits":
        images, labels = load_digits()
        tr, te = split_indices(labels, cfg.split, cfg.test_fraction, cfg.seed)
        x_tr, y_tr, x_te, y_te = images[tr], labels[tr], images[te], labels[te]
    else:
        from digits_core.data.mnist import load_mnist

        x_tr, y_tr, x_te, y_te = load_mnist(cfg.mnist_dir)
        if cfg.split != "official":
            images, labels = np.concatenate([x_tr, x_te]), np.concatenate([y_tr, y_te])
            tr, te = split_indices(labels, cfg.split, cfg.test_fraction, cfg.seed)
            x_tr, y_tr, x_te, y_te = images[tr], labels[tr], images[te], labels[te]
    if cfg.train_size is not None and cfg.train_size < len(y_tr):
        keep = subset_indices(y_tr, cfg.train_size, cfg.seed)
        x_tr, y_tr = x_tr[keep], y_tr[keep]
    norm = Normalizer.fit(cfg.normalization, MAX_VALUE[cfg.dataset], x_tr)
    return Dataset(cfg.dataset, x_tr, y_tr, x_te, y_te, norm)


def split_indices(
    labels: np.ndarray, split: str, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Train and test index arrays for `labels (N,)`.

    stratified: every class keeps its share (seeded); random: a seeded permutation, the
    way sklearn's train_test_split cuts it; ordered: the last `test_fraction` is the test set.
    """
    n = len(labels)
    n_test = int(np.ceil(n * test_fraction))
    if split == "ordered":
        return np.arange(n - n_test), np.arange(n - n_test, n)
    if split == "random":
        from sklearn.model_selection import train_test_split

        tr, te = train_test_split(np.arange(n), test_size=test_fraction, random_state=seed)
        return np.asarray(tr), np.asarray(te)
    if split == "stratified":
        from sklearn.model_selection import train_test_split

        tr, te = train_test_split(
            np.arange(n), test_size=test_fraction, random_state=seed, stratify=labels
        )
        return np.sort(tr), np.sort(te)
    raise ConfigError(f"split {split!r} is not available here")


def subset_indices(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """`size` indices into `labels`, stratified by class and seeded, in ascending order."""
    from sklearn.model_selection import train_test_split

    keep, _ = train_test_split(
        np.arange(len(labels)), train_size=size, random_state=seed, stratify=labels
    )
    return np.sort(keep)


@dataclass
class DatasetSummary:
    """What the Data page shows of a Dataset."""

    n_train: int
    n_test: int
    image_shape: tuple[int, int]
    train_counts: np.ndarray  # (10,) int64, images per class in the training split
    test_counts: np.ndarray  # (10,) int64
    means: np.ndarray  # (10, H, W) float32, the mean training image of each class
    mosaic: np.ndarray  # (10 H, 10 W) float32, ten training samples per class, one row each


def dataset_summary(ds: Dataset) -> DatasetSummary:
    """Sizes, class counts, samples and the mean training image per class of `ds`."""
    from digits_core.images.pictures import class_mosaic

    y = ds.labels_train
    return DatasetSummary(
        n_train=len(y),
        n_test=len(ds.labels_test),
        image_shape=ds.image_shape,
        train_counts=np.bincount(y, minlength=NUM_CLASSES),
        test_counts=np.bincount(ds.labels_test, minlength=NUM_CLASSES),
        mosaic=class_mosaic(ds.images_train, y),
        means=np.stack([ds.images_train[y == k].mean(0) for k in range(NUM_CLASSES)]).astype(np.float32),
    )
