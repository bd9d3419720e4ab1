"""Arrays -> pictures a browser can show without smoothing them.

`display_image` (a digit, upscaled by whole pixels), `class_mosaic` (one row of samples
per digit), `first_layer_images` / `first_layer_mosaic` (what each first-layer unit looks
for, blue negative, red positive). Pure functions of arrays, so a page can cache them.
"""

from __future__ import annotations

import numpy as np

NEGATIVE_RGB = (33, 102, 172)  # colour of a weight of -1 (blue)
POSITIVE_RGB = (178, 24, 43)  # colour of a weight of +1 (red); 0 is white


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


def mosaic_centres(k: int, shape: tuple[int, int], cols: int, gap: int = 1) -> np.ndarray:
    """Where each of `k` tiles of `shape (h, w)` sits in `mosaic(images, cols, gap)`: (K, 2)
    float32 (x, y) of its centre in pixel coordinates (pixel (0, 0)'s centre is (0, 0)), so
    that a click on the picture can be traced back to the tile it fell on."""
    h, w = shape
    cols = max(1, min(cols, k))
    r, c = np.divmod(np.arange(k), cols)
    return np.stack([c * (w + gap) + (w - 1) / 2, r * (h + gap) + (h - 1) / 2], 1).astype(np.float32)


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


def class_mosaic(images: np.ndarray, labels: np.ndarray, per_class: int = 10) -> np.ndarray:
    """images (N, H, W), labels (N,) -> a (10 H, per_class W) float32 mosaic: row k holds the
    first `per_class` images of class k (blank where a class has fewer)."""
    h, w = images.shape[1:]
    rows = np.zeros((10, per_class, h, w), np.float32)
    for k in range(10):
        idx = np.flatnonzero(labels == k)[:per_class]
        rows[k, : len(idx)] = images[idx]
    return rows.transpose(0, 2, 1, 3).reshape(10 * h, per_class * w)


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
    return safe_ratio(images, scale).astype(np.float32)


def safe_ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den as float64, 0 where den is 0, without a division warning."""
    num, den = np.broadcast_arrays(np.asarray(num, np.float64), np.asarray(den, np.float64))
    out = np.zeros(num.shape, dtype=np.float64)
    np.divide(num, den, out=out, where=den != 0)
    return out


__all__ = [
    "class_mosaic",
    "display_image",
    "diverging_rgb",
    "first_layer_images",
    "first_layer_mosaic",
    "mosaic",
    "mosaic_centres",
    "safe_ratio",
    "upscale",
]
