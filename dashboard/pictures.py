"""Small pictures as inline HTML: a grey image as a PNG data URL, and a class mosaic with its
row labels. A browser shows these at once, without a chart library (plotly.js is megabytes
a first visitor would wait for) or the extra request a media file costs."""

from __future__ import annotations

import base64
import io

import numpy as np

from digits_core.images.pictures import mosaic as tile


def png_data_url(grey: np.ndarray) -> str:
    """(H, W) uint8 -> 'data:image/png;base64,...'."""
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(grey, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def digit_grid_html(mosaic: np.ndarray, image_shape: tuple[int, int], width: int = 360) -> str:
    """A class mosaic (`images.class_mosaic`: one row of images per label, ink high) as dark
    ink on white with a white gap between digits, `width` px wide with crisp pixels, its rows
    labelled 0..9 on the left."""
    m = np.asarray(mosaic, dtype=np.float64)
    h, w = image_shape
    rows, cols = m.shape[0] // h, m.shape[1] // w
    # apart, each digit reads as one: side by side, a row of them read as one squiggle
    digits = m[: rows * h, : cols * w].reshape(rows, h, cols, w).transpose(0, 2, 1, 3).reshape(-1, h, w)
    m = tile(digits, cols, gap=max(1, h // 8))  # NaN between the digits
    top = np.nanmax(m) if m.size and np.nanmax(m) > 0 else 1.0
    grey = (255 - np.clip(np.nan_to_num(m / top), 0, 1) * 255).round().astype(np.uint8)
    labels = "".join(f'<div style="flex:1;display:flex;align-items:center">{k}</div>' for k in range(rows))
    # the picture fits its column (at most `width` px); the labels stretch to its height
    return (f'<div class="digit-grid" style="display:flex;gap:.4rem;align-items:stretch;max-width:{width}px">'
            f'<div style="display:flex;flex-direction:column;font-size:.8rem;color:#808495" '
            f'aria-hidden="true">{labels}</div>'
            f'<div style="flex:1;min-width:0"><img src="{png_data_url(grey)}" '
            f'style="display:block;width:100%;height:auto;image-rendering:pixelated;'
            f'border:1px solid #e6e9ef" alt="{rows} rows of sample digits, one row per label '
            f'0 to {rows - 1}"/></div></div>')


__all__ = ["digit_grid_html", "png_data_url"]
