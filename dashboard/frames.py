"""Pictures of a run's embedding frames (`monitor.Frames`): the last hidden layer of a fixed
set of test points as it trained, and its first-layer weights at the same moment."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from digits_core.images.pictures import first_layer_mosaic

from .charts import RUN_COLOURS, figure, layout_for

DIGIT_COLOURS = RUN_COLOURS  # ten digits, ten clearly different colours


SPEEDS = {"▶ Slow": 1400, "▶ Play": 700, "▶▶ Fast": 300}  # a movie's buttons: ms a frame


def _xy(frames: dict, k: int, method: str) -> np.ndarray:
    """Frame `k`'s (P, 2) points, centred and at unit spread: t-SNE frames grow from a tiny
    start, and a movie needs one fixed set of axes."""
    xy = frames["tsne"][k] if method == "t-SNE" and len(frames["tsne"]) > k else frames["pca"][k]
    xy = np.asarray(xy, np.float64) - np.mean(xy, 0)
    return xy / max(float(np.sqrt((xy ** 2).sum(1).mean())), 1e-12)


def _title(frames: dict, k: int, method: str) -> str:
    wrong = int((frames["preds"][k] != frames["labels"]).sum())
    # an empty first line: the chart's toolbar shows over the top on hover, and covered it
    return (f"<br>{method} of the last layer · epoch {float(frames['epochs'][k]):.2f}<br>"
            f"{wrong} of {len(frames['labels'])} read wrong")  # two lines: whole in half a projector


def _digit_traces(frames: dict, k: int, method: str, size: int) -> list[dict]:
    """One trace per digit, every frame the same points in the same order (a legend of all
    ten at every frame, and a movie moves each point to its next place); mistakes are crosses."""
    xy, labels, preds = _xy(frames, k, method), frames["labels"], frames["preds"][k]
    data = []
    for d in range(10):
        sel = labels == d
        wrong = preds[sel] != d
        data.append({
            "type": "scatter", "x": xy[sel, 0], "y": xy[sel, 1], "mode": "markers", "name": str(d),
            "text": np.where(wrong, ", read wrong", ""),
            "marker": {"color": DIGIT_COLOURS[d], "size": np.where(wrong, size + 4, size),
                       "symbol": np.where(wrong, "x", "circle"), "line": {"width": 0}},
            "hovertemplate": f"true {d}%{{text}}<extra></extra>",
        })
    return data


def frame_figure(frames: dict, k: int, *, method: str = "t-SNE", presenter: bool = False,
                 height: int = 460, movie: bool = False) -> go.Figure:
    """Frame `k`'s points coloured by true digit; mistakes drawn as crosses (built as plain
    dicts, as the live curves are: `charts.figure`). `movie`: every frame too, with Play
    buttons at `SPEEDS` that move the points smoothly from one frame to the next."""
    size = 9 if presenter else 6
    data = _digit_traces(frames, k, method, size)
    layout = layout_for(_title(frames, k, method), presenter, height, {"visible": False},
                        {"visible": False, "scaleanchor": "x"})
    layout["title"].update({"x": 0.0, "xanchor": "left"})
    layout["margin"]["t"] = 110 if presenter else 90
    layout["legend"].update({"orientation": "v", "x": 1.0, "xanchor": "left", "y": 1.0, "yanchor": "top",
                             "title": {"text": "digit"}, "tracegroupgap": 0,  # beside the map, clear of the title
                             "font": {"size": 15 if presenter else 12}})  # ten lines in a short map
    if not movie or len(frames["steps"]) < 2:
        return figure(data, layout)
    n = len(frames["steps"])
    reach = max(float(np.abs(_xy(frames, j, method)).max()) for j in range(n)) * 1.05
    layout["xaxis"]["range"] = layout["yaxis"]["range"] = [-reach, reach]
    layout["margin"]["b"] = 90
    layout["updatemenus"] = [{
        "type": "buttons", "direction": "left", "showactive": False, "x": 0.0, "xanchor": "left",
        "y": -0.02, "yanchor": "top", "pad": {"t": 0, "r": 6},
        "buttons": [*({"label": label, "method": "animate", "args": [None, {
            "frame": {"duration": ms, "redraw": False}, "fromcurrent": False, "mode": "immediate",
            "transition": {"duration": int(ms * 0.85), "easing": "cubic-in-out"}}]}
            for label, ms in SPEEDS.items()),
            {"label": "❚❚ Pause", "method": "animate", "args": [[None], {
                "frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 0}}]}],
    }]
    layout["sliders"] = [{
        "active": k, "x": 0.45, "len": 0.55, "y": -0.02, "yanchor": "top", "pad": {"t": 0},
        "currentvalue": {"prefix": "epoch ", "font": {"size": layout["font"]["size"]}},
        "steps": [{"label": f"{float(frames['epochs'][j]):.2f}", "method": "animate", "args": [[str(j)], {
            "frame": {"duration": 0, "redraw": False}, "mode": "immediate", "transition": {"duration": 300}}]}
            for j in range(n)],
    }]
    movie_frames = [{"name": str(j), "data": _digit_traces(frames, j, method, size),
                     "traces": list(range(10)), "layout": {"title": {"text": _title(frames, j, method)}}}
                    for j in range(n)]
    return go.Figure({"data": data, "layout": layout, "frames": movie_frames}, _validate=False)


def has_tsne(frames: dict | None) -> bool:
    return frames is not None and len(frames["tsne"]) == len(frames["steps"]) > 0


def weights_picture(frames: dict, k: int, image_shape: tuple[int, int]) -> np.ndarray:
    """The first-layer units of frame `k` as one RGB picture."""
    w = frames["weights"][k]  # (U, 1, kh, kw) conv kernels, or (U, H*W) dense units
    if w.ndim == 2:
        w = w.T  # (H*W, U), as first_layer_mosaic takes dense weights
    return first_layer_mosaic(w, image_shape, units=len(frames["weights"][k]), cols=8)


__all__ = ["SPEEDS", "frame_figure", "has_tsne", "weights_picture"]
