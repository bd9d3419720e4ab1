"""Pictures of a run's embedding frames (`monitor.Frames`): the last hidden layer of a fixed
set of test points as it trained, and its first-layer weights at the same moment."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from digits_core.images.pictures import first_layer_mosaic

from .charts import RUN_COLOURS, figure, layout_for

DIGIT_COLOURS = RUN_COLOURS  # ten digits, ten clearly different colours


def frame_figure(frames: dict, k: int, *, method: str = "t-SNE", presenter: bool = False,
                 height: int = 460) -> go.Figure:
    """Frame `k`'s points coloured by true digit; mistakes drawn as crosses (built as plain
    dicts, as the live curves are: `charts.figure`)."""
    xy = frames["tsne"][k] if method == "t-SNE" and len(frames["tsne"]) > k else frames["pca"][k]
    labels, preds = frames["labels"], frames["preds"][k]
    size = 9 if presenter else 6
    data = []
    for d in range(10):
        for wrong in (False, True):
            sel = (labels == d) & ((preds != labels) == wrong)
            if not sel.any():
                continue
            data.append({
                "type": "scatter", "x": xy[sel, 0], "y": xy[sel, 1], "mode": "markers", "name": str(d),
                "legendgroup": str(d), "showlegend": not wrong,
                "marker": {"color": DIGIT_COLOURS[d], "size": size + (4 if wrong else 0),
                           "symbol": "x" if wrong else "circle", "line": {"width": 0}},
                "hovertemplate": f"true {d}<extra></extra>" if not wrong
                else f"true {d}, read wrong<extra></extra>",
            })
    epoch = float(frames["epochs"][k])
    wrong = int((preds != labels).sum())
    title = f"{method} of the last layer · epoch {epoch:.2f} · {wrong} of {len(labels)} read wrong"
    layout = layout_for(title, presenter, height, {"visible": False}, {"visible": False, "scaleanchor": "x"})
    layout["legend"].update({"orientation": "v", "x": 1.0, "xanchor": "left", "y": 1.0, "yanchor": "top",
                             "title": {"text": "digit"}})  # beside the map, clear of the title
    return figure(data, layout)


def has_tsne(frames: dict | None) -> bool:
    return frames is not None and len(frames["tsne"]) == len(frames["steps"]) > 0


def weights_picture(frames: dict, k: int, image_shape: tuple[int, int]) -> np.ndarray:
    """The first-layer units of frame `k` as one RGB picture."""
    w = frames["weights"][k]  # (U, 1, kh, kw) conv kernels, or (U, H*W) dense units
    if w.ndim == 2:
        w = w.T  # (H*W, U), as first_layer_mosaic takes dense weights
    return first_layer_mosaic(w, image_shape, units=len(frames["weights"][k]), cols=8)


__all__ = ["frame_figure", "has_tsne", "weights_picture"]
