"""MNIST-format files for tests: one IDX writer and one small fake MNIST folder."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np

from digits_core.data.idx import IMAGES_MAGIC, LABELS_MAGIC
from digits_core.data.mnist import MNIST_FILES


def idx_bytes(array: np.ndarray, magic: int | None = None) -> bytes:
    """The uncompressed IDX encoding of a uint8 array: magic, big-endian dims, payload."""
    if magic is None:
        magic = IMAGES_MAGIC if array.ndim == 3 else LABELS_MAGIC
    return struct.pack(f">I{array.ndim}I", magic, *array.shape) + np.asarray(array).astype(np.uint8).tobytes()


def write_mnist(folder: Path, arrays: dict[str, np.ndarray], *, gz: bool = True) -> Path:
    """The four MNIST files of `arrays` (keys: train-images, train-labels, test-images,
    test-labels) under their original names, gzipped (mtime 0, stable bytes) or not."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, array in arrays.items():
        name = MNIST_FILES[key][0]
        raw = idx_bytes(np.asarray(array))
        (folder / (name if gz else name.removesuffix(".gz"))).write_bytes(
            gzip.compress(raw, mtime=0) if gz else raw)
    return folder


def fake_mnist(folder: Path, n_train: int = 200, n_test: int = 100, seed: int = 0) -> Path:
    """A small MNIST look-alike: random 28x28 images, labels 0..9 in turn."""
    rng = np.random.default_rng(seed)
    arrays = {}
    for split, n in (("train", n_train), ("test", n_test)):
        arrays[f"{split}-images"] = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        arrays[f"{split}-labels"] = (np.arange(n) % 10).astype(np.uint8)
    return write_mnist(folder, arrays)
