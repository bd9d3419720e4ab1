"""Plotly figures of training curves, shared by the Train and Runs pages.

Long curves are decimated to `MAX_CHART_POINTS` keeping each bucket's lowest and highest
point (the shape and the spikes survive); the loss is drawn raw and faint with an
exponentially smoothed line on top. In presenter mode every text is at least 16 px.
"""

from __future__ import annotations

import numpy as np
import pandas  # noqa: F401  (see below)
import plotly.express as px
import plotly.graph_objects as go

from digits_core.analysis.comparison import XAXES, Compared, loss_start, x_values

# Plotly looks pandas up in sys.modules without importing it: while the warm-up thread
# (`warm`) is half-way through importing pandas, a figure found a half-made module and the
# page failed ("partially initialized module 'pandas'"). Importing it here waits for that
# import to end.

MAX_CHART_POINTS = 2000
# Ten clearly different colours (Okabe-Ito first, then Tableau), for runs side by side.
RUN_COLOURS = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442",
               "#000000", "#8C564B", "#7F7F7F"]
TEST_COLOUR, TRAIN_COLOUR, EPOCH_COLOUR = "#D55E00", "#0072B2", "#000000"


def decimate(x, y, limit: int = MAX_CHART_POINTS) -> tuple[np.ndarray, np.ndarray]:
    """At most `limit` points of the curve (x, y): each bucket's min and max, in x order
    (buckets of equal length; NaN is never chosen over a number)."""
    x, y = np.asarray(x, np.float64), np.asarray(y, np.float64)
    n = len(x)
    if n <= limit:
        return x, y
    per = -(-n // (limit // 2))  # points per bucket
    buckets = -(-n // per)
    grid = np.full(buckets * per, np.nan)
    grid[:n] = y
    grid = grid.reshape(buckets, per)
    nan = np.isnan(grid)
    start = np.arange(buckets) * per
    low = start + np.where(nan, np.inf, grid).argmin(1)
    high = start + np.where(nan, -np.inf, grid).argmax(1)
    keep = np.unique(np.concatenate([low, high]))
    keep = keep[keep < n]
    return x[keep], y[keep]


def smooth(y, span: int | None = None) -> np.ndarray:
    """Exponential moving average of `y` (debiased at the start); span ~ len/40 by default."""
    from scipy.signal import lfilter

    y = np.asarray(y, np.float64)
    if len(y) == 0:
        return y
    span = span or max(5, len(y) // 40)
    alpha = 2.0 / (span + 1)
    avg = lfilter([alpha], [1.0, alpha - 1.0], y)  # avg[i] = (1 - a) avg[i-1] + a y[i]
    weight = 1.0 - (1.0 - alpha) ** np.arange(1, len(y) + 1)  # the share of avg that is data
    return avg / weight


def style(fig: go.Figure, title: str, presenter: bool, height: int = 300) -> go.Figure:
    """Title, height, margins, legend and every text size (`layout_for`) on a built figure."""
    return fig.update_layout(layout_for(title, presenter, height, {}, {}))


def _epoch_x(steps, steps_per_epoch: int) -> np.ndarray:
    return np.asarray(steps, np.float64) / max(steps_per_epoch, 1)


def loss_figure(h, presenter: bool = False, height: int = 300) -> go.Figure:
    """Training loss per step against epochs, from step 0 (before any update) when the run
    kept it: raw (faint) and smoothed."""
    steps, losses = h.loss_curve()
    x = _epoch_x(steps, h.steps_per_epoch)
    data = []
    if len(x):
        rx, ry = decimate(x, losses)
        sx, sy = decimate(x, smooth(losses))
        data = [{"type": "scatter", "x": rx, "y": ry, "mode": "lines", "name": "per step",
                 "line": {"color": "#9ecae1", "width": 1}, "hoverinfo": "skip"},
                {"type": "scatter", "x": sx, "y": sy, "mode": "lines", "name": "smoothed",
                 "line": {"color": TRAIN_COLOUR, "width": 3}}]
    return figure(data, inside_legend(layout_for("Training loss", presenter, height,
                                               {"title": {"text": "epoch"}, "rangemode": "tozero"},
                                               {"title": {"text": "loss"}, "rangemode": "tozero"}),
                                    presenter, top=True))


def accuracy_figure(h, presenter: bool = False, height: int = 300) -> go.Figure:
    """Accuracy against epochs: live test accuracy on a fixed subset and the running training
    accuracy while it trains, the full test set at each epoch end as large markers."""
    data = []
    px = _epoch_x(h.probe_steps, h.steps_per_epoch)
    if len(px):
        data += [{"type": "scatter", "x": px, "y": list(h.probe_test_acc), "mode": "lines+markers",
                  "name": "test (live subset)", "line": {"color": TEST_COLOUR, "width": 3},
                  "marker": {"size": 5}},
                 {"type": "scatter", "x": px, "y": list(h.probe_train_acc), "mode": "lines",
                  "name": "train (running)", "line": {"color": TRAIN_COLOUR, "width": 2, "dash": "dot"}}]
    full = [(e, a) for e, a in zip(h.epochs, h.test_acc) if a is not None]
    if full:
        big = 14 if presenter else 11  # shrinks past 20 epochs: 150 big diamonds are a black bar
        data.append({"type": "scatter", "x": [e for e, _ in full], "y": [a for _, a in full],
                     "mode": "markers", "name": "test (full, epoch end)",
                     "marker": {"color": EPOCH_COLOUR, "size": max(4, min(big, big * 20 // len(full))),
                                "symbol": "diamond"}})
    values = [v for v in (*h.probe_test_acc, *h.probe_train_acc, *(a for _, a in full)) if np.isfinite(v)]
    low = min(values) if values else 0.0
    xaxis = {"title": {"text": "epoch"}, "rangemode": "tozero"}
    if not values:  # nothing measured (a run that diverged at once): Plotly's empty axis ran 0..6
        xaxis["range"] = [0, max(h.step / max(h.steps_per_epoch, 1), 1e-3)]
    layout = layout_for("Accuracy", presenter, height, xaxis,
                        {"title": {"text": "accuracy"}, "tickformat": ".0%", "range": [max(0.0, low - 0.03), 1.005]})
    if not values and not h.active:
        layout["annotations"] = [{"text": "no accuracy was measured before it ended", "showarrow": False,
                                  "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper"}]
    return figure(data, inside_legend(layout, presenter, top=False))


def inside_legend(layout: dict, presenter: bool, *, top: bool) -> dict:
    """In presenter mode a falling loss's legend goes inside the plot, top right, where the
    curve leaves it empty, and a rising accuracy's below the plot (its empty corner held the
    dotted training curve): at a projector's text size a legend above the plot wrapped
    onto the curves and pushed the charts off a 720 px screen."""
    if presenter and top:
        layout["legend"] = {**layout["legend"], "orientation": "v", "x": 0.99, "xanchor": "right",
                            "y": 0.98, "yanchor": "top", "bgcolor": "rgba(255,255,255,0.85)"}
    elif presenter:  # a rising accuracy's empty corner held the dotted training curve: below the plot
        layout["legend"] = {**layout["legend"], "orientation": "h", "x": 0.0, "xanchor": "left",
                            "y": -0.12, "yanchor": "top", "font": {"size": 15}}
        layout["margin"] = {**layout["margin"], "b": 70}
        layout["xaxis"] = {**layout["xaxis"], "title": {"text": ""}}  # the legend's place; ticks say epochs
    return layout


def layout_for(title: str, presenter: bool, height: int, xaxis: dict, yaxis: dict) -> dict:
    """A figure's layout as a plain dict: its title, height, margins, legend and axes
    (`xaxis`, `yaxis` merged in), every text at least 16 px in presenter mode."""
    size = 18 if presenter else 13
    axis_fonts = {"tickfont": {"size": size}}
    return {
        "title": {"text": title, "font": {"size": size + 4}},
        "height": height + (60 if presenter else 0),
        "margin": {"t": 50, "l": 10, "r": 10, "b": 10}, "font": {"size": size},
        "legend": {"orientation": "h", "yanchor": "bottom", "y": 1.0, "xanchor": "right", "x": 1,
                   "font": {"size": size}},
        "xaxis": {**axis_fonts, **xaxis, "title": {**xaxis.get("title", {}), "font": {"size": size}}},
        "yaxis": {**axis_fonts, **yaxis, "title": {**yaxis.get("title", {}), "font": {"size": size}}},
    }


def figure(data: list[dict], layout: dict) -> go.Figure:
    """A figure from plain dicts without Plotly's validation: the live panels build two per
    poll for every tab watching a run, and validating them took most of that time (these
    dicts are fixed in code and checked against the validated form by a test)."""
    return go.Figure({"data": data, "layout": layout}, _validate=False)


def overlay(curves: list, presenter: bool = False, *, x: str = "epochs",
            relative: bool = False) -> tuple[go.Figure, go.Figure]:
    """Loss and accuracy of several runs: `compare.Compared` each (or (label, History)), one
    colour per run, against `x` (a key of `compare.XAXES`); `relative`: each run's loss over
    its own start (losses of different kinds or scales, `compare.relative_losses`).

    The accuracy is each epoch's full test, and a run stopped between two epochs ends with
    the test it got at its Stop (where it was stopped). A diverged run's loss leaves the
    chart rather than flattening every other run's curve to the floor."""
    loss, acc = go.Figure(), go.Figure()
    accs, highs = [], []
    runs = [c if isinstance(c, Compared) else Compared(*c) for c in curves]
    for i, run in enumerate(runs):
        h = run.history
        colour = RUN_COLOURS[i % len(RUN_COLOURS)]
        per_epoch = h.steps_per_epoch or max(1, len(h.steps) // max(len(h.epochs), 1))
        diverged = h.status == "diverged"
        name = f"{run.label} (diverged)" if diverged else run.label
        start = loss_start(h) if relative else None
        steps, losses = h.loss_curve()
        if len(steps):
            y = smooth(losses) / (start if start else 1.0)
            sx, sy = decimate(x_values(run, steps, x), y)
            loss.add_scatter(x=sx, y=sy, mode="lines", name=name, line={"color": colour, "width": 2.5})
            if not diverged and len(sy):
                highs.append(float(np.max(sy)))
        full = [(float(e), a) for e, a in zip(h.epochs, h.test_acc) if a is not None]
        end = h.step / per_epoch if h.step else None
        if h.final_test_acc is not None and end is not None and (not full or end > full[-1][0] + 1e-6):
            full.append((end, h.final_test_acc))  # measured at its Stop, between two epochs
        if full:
            accs += [a for _, a in full]
            ax = x_values(run, [e * per_epoch for e, _ in full], x)
            acc.add_scatter(x=ax, y=[a for _, a in full], mode="lines+markers",
                            name=name, line={"color": colour, "width": 2.5})
    loss.update_xaxes(title=XAXES[x])
    loss.update_yaxes(title="loss ÷ its start (1 = where each run began)" if relative else "loss (smoothed)",
                      rangemode="tozero")
    if highs and len(highs) < len([r for r in runs if len(r.history.steps)]):
        loss.update_yaxes(range=[0, 1.1 * max(highs)])  # the diverged runs go off the top
    acc.update_xaxes(title=XAXES[x])
    acc.update_yaxes(title="test accuracy", tickformat=".1%")
    if accs:  # within 0..100 %: Plotly would spread one run's one point over -50..150 %
        acc.update_yaxes(range=[max(0.0, min(accs) - 0.02), min(1.005, max(accs) + 0.01)])
    else:
        acc.update_yaxes(range=[0, 1])
        acc.add_annotation(text="no test accuracy yet: none of these runs<br>ended an epoch or was tested",
                           x=0.5, y=0.5, xref="paper", yref="paper", showarrow=False)
    title = "Training loss, relative to each run's start" if relative else "Training loss"
    return style(loss, title, presenter, 380), style(acc, "Test accuracy", presenter, 380)


def prefetch_plotly() -> None:
    """An empty, hidden chart: the browser loads its chart library (megabytes, about a second
    of a small machine's time) while the person reads the page, not after they press Start."""
    import streamlit as st

    st.html("<style>.st-key-plotly_prefetch { display: none; }</style>")
    with st.container(key="plotly_prefetch"):
        st.plotly_chart(go.Figure(), key="plotly_prefetch_chart")


def digit_grid(mosaic: np.ndarray, image_shape: tuple[int, int], title: str = ""):
    """A Plotly figure of a class mosaic (images.class_mosaic): one labelled row per digit."""
    h = image_shape[0]
    fig = px.imshow(mosaic, color_continuous_scale="gray_r", aspect="equal", title=title or None)
    fig.update_layout(
        coloraxis_showscale=False, margin={"l": 30, "r": 0, "t": 30 if title else 0, "b": 0}
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(
        tickmode="array",
        tickvals=[h * k + (h - 1) / 2 for k in range(10)],
        ticktext=[str(k) for k in range(10)],
        title="label",
    )
    fig.update_traces(hovertemplate="%{z}<extra></extra>")
    return fig


__all__ = ["MAX_CHART_POINTS", "RUN_COLOURS", "accuracy_figure", "decimate", "digit_grid", "figure", "layout_for", "loss_figure", "overlay", "prefetch_plotly", "smooth"]
