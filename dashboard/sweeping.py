"""The Compare page's sweep: one or two of the Train form's settings over a grid or a random
set, a few seeds, at most 16 ordinary runs; live progress, successive halving in one line,
then a heat map (two settings) or a line with error bars (one), parallel coordinates, and
the best configuration opened in the Train form (`digits_core.sweep`)."""

from __future__ import annotations

import math

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from digits_core.errors import DigitLabError
from digits_core.serve.links import one_line
from digits_core.serve.sweep import (
    MAX_RUNS,
    MAX_SEEDS,
    PARAMS,
    Axis,
    Sweep,
    SweepSpec,
    grid,
    label,
    parse_values,
    points,
    summary,
)

from . import state
from .charts import style
from .compare import keep, live_view

DEFAULTS = {"lr": "0.001, 0.01, 0.1", "width": "16, 64", "batch_size": "16, 64",
            "dropout": "0, 0.25, 0.5", "l2": "0, 0.001, 0.01"}
RANGES = {"lr": "0.0001, 0.3", "width": "8, 256", "batch_size": "8, 256", "dropout": "0, 0.6",
          "l2": "0.00001, 0.01"}
NONE = "(none)"
POLL_S = 1.0


def spec_from_widgets() -> SweepSpec:
    """The sweep the widgets describe; ConfigError (one line) if it cannot run."""
    ss = st.session_state
    rnd = ss.get("sweep_mode") == "random"
    axes = []
    for i in (1, 2):
        p = ss.get(f"sweep_p{i}")
        if p in PARAMS:
            axes.append(Axis(p, parse_values(ss.get(f"sweep_v{i}_{p}_{rnd}", ""), p)))
    base = state.experiment()
    return SweepSpec(base, axes, seeds=int(ss.get("sweep_seeds", 1)),
                     random=int(ss.get("sweep_n", 8)) if rnd else 0,
                     halving=bool(ss.get("sweep_halving", True)))


def start_sweep() -> None:
    try:
        sweep = Sweep(state.runner(), spec_from_widgets())
        keep("sweep", sweep.start(owner=state.owner(), person=state.person()))
    except DigitLabError as e:
        st.session_state["sweep_error"] = one_line(e)


def sweep_form() -> None:
    base = state.experiment()
    st.caption(f"Every run is the Train form's **{base.name or 'custom'}** ({base.model.family}, "
               f"{base.train.epochs} epochs on {base.data.dataset}) with these settings changed; "
               f"at most {MAX_RUNS} runs, spread over the training workers.")
    mode = st.radio("Points", ["grid", "random"], key="sweep_mode", horizontal=True,
                    format_func={"grid": "a grid of values", "random": "random points in ranges"}.get)
    rnd = mode == "random"
    c1, c2 = st.columns(2)
    for i, col in ((1, c1), (2, c2)):
        choices = list(PARAMS) if i == 1 else [NONE, *PARAMS]
        p = col.selectbox("Setting" if i == 1 else "Second setting", choices, key=f"sweep_p{i}",
                          index=0, format_func=lambda c: c if c == NONE else label(c))
        if p in PARAMS:
            col.text_input("Range (low, high)" if rnd else "Values", (RANGES if rnd else DEFAULTS)[p],
                           key=f"sweep_v{i}_{p}_{rnd}")
    c1, c2, c3 = st.columns(3)
    if rnd:
        c1.number_input("Random points", 1, MAX_RUNS, 8, key="sweep_n")
    c2.number_input("Seeds per point", 1, MAX_SEEDS, 1, key="sweep_seeds",
                    help="More than one: the results show the spread between seeds.")
    c3.checkbox("Stop hopeless runs early", True, key="sweep_halving",
                help="Successive halving: at a quarter and half of the epochs, a run in the worse "
                "half of those that got there is stopped.")
    error = st.session_state.pop("sweep_error", None)
    try:
        n = len(points(spec_from_widgets()))
        st.caption(f"{n} run{'s' if n != 1 else ''}.")
    except DigitLabError as e:
        error = error or one_line(e)
    st.button("Start the sweep", type="primary", key="sweep_start", on_click=start_sweep,
              icon=":material/grid_view:", disabled=error is not None and "at most" in error)
    if error:
        st.error(error)


def sweep_view(presenter: bool) -> None:
    sweep = live_view("sweep", _sweep_live, presenter)
    if sweep is not None and sweep.done:
        best_button(sweep)


def _sweep_live(sweep: Sweep, presenter: bool, was_running: bool) -> None:
    results = sweep.results()
    ended = sum(r.status not in ("queued", "loading", "running", "stopping") for r in results)
    queued = sum(r.status == "queued" for r in results)
    st.markdown(f"**{ended} of {len(results)} runs ended** · {len(results) - ended - queued} "
                f"training · {queued} waiting for a slot")
    st.caption(sweep.halving_line())
    axes = sweep.axes()
    if any(r.acc is not None for r in results):
        left, right = st.columns(2)
        left.plotly_chart(result_figure(sweep, presenter), key="sweep_result")
        right.plotly_chart(parallel_figure(sweep, presenter), key="sweep_parallel")
    st.dataframe(
        [{**{label(a): r.point[a] for a in axes}, "seed": r.point["seed"], "run": r.name,
          "status": "stopped early" if r.halted else r.status, "test accuracy": r.acc} for r in results],
        column_config={"test accuracy": st.column_config.NumberColumn(format="percent")},
        hide_index=True, key="sweep_table")
    if not sweep.done:
        st.button("Stop the sweep", key="sweep_stop", on_click=sweep.stop, icon=":material/stop:")
    if was_running and sweep.done:
        st.rerun()


def result_figure(sweep: Sweep, presenter: bool) -> go.Figure:
    """Two settings on a grid: a heat map of the mean test accuracy; otherwise the accuracy
    against the first setting, mean and standard deviation over the seeds."""
    results, axes = sweep.results(), sweep.axes()
    log = lambda a: PARAMS[a][3] and all(r.point[a] > 0 for r in results)
    if len(axes) == 2 and not sweep.spec.random:
        xs, ys, z = grid(results, axes)
        text = [["" if math.isnan(v) else f"{v:.1%}" for v in row] for row in z]
        fig = go.Figure(go.Heatmap(x=[f"{v:g}" for v in xs], y=[f"{v:g}" for v in ys], z=z, text=text,
                                   texttemplate="%{text}", colorscale="Viridis", zmin=np.nanmin(z) if np.isfinite(z).any() else 0,
                                   colorbar={"tickformat": ".0%"}, hovertemplate="%{x}, %{y}: %{text}<extra></extra>"))
        fig.update_xaxes(title=label(axes[0]), type="category")
        fig.update_yaxes(title=label(axes[1]), type="category")
        return style(fig, "Mean test accuracy", presenter, 360)
    rows = sorted(summary(results, axes), key=lambda r: r[axes[0]])
    fig = go.Figure(go.Scatter(x=[r[axes[0]] for r in rows], y=[r["mean"] for r in rows],
                               error_y={"type": "data", "array": [r["std"] for r in rows], "visible": True},
                               mode="lines+markers" if len(axes) == 1 else "markers",
                               text=[f"n={r['n']}" for r in rows], line={"color": "#0072B2", "width": 3}))
    fig.update_xaxes(title=label(axes[0]), type="log" if log(axes[0]) else "linear")
    fig.update_yaxes(title="test accuracy (mean ± sd over seeds)", tickformat=".0%")
    return style(fig, "Test accuracy", presenter, 360)


def parallel_figure(sweep: Sweep, presenter: bool) -> go.Figure:
    """Every run as a line through its settings and its test accuracy."""
    results = [r for r in sweep.results() if r.acc is not None]
    dims = []
    for a in sweep.axes():
        v = np.array([r.point[a] for r in results], float)
        logged = PARAMS[a][3] and (v > 0).all()
        dims.append({"label": label(a) + (" (log10)" if logged else ""), "values": np.log10(v) if logged else v})
    if sweep.spec.seeds > 1:
        dims.append({"label": "seed", "values": [r.point["seed"] for r in results]})
    acc = [r.acc for r in results]
    dims.append({"label": "test accuracy", "values": acc})
    fig = go.Figure(go.Parcoords(line={"color": acc, "colorscale": "Viridis", "showscale": False},
                                 dimensions=dims))
    return style(fig, "Every run", presenter, 360).update_layout(margin={"l": 70, "r": 70, "t": 100, "b": 20})


def open_best(sweep: Sweep) -> None:
    best = sweep.best()
    if best is not None:
        state.set_experiment(best)
        st.session_state["sweep_opened"] = True


def best_button(sweep: Sweep) -> None:
    best = sweep.best()
    if best is None:
        st.info("No run of this sweep got a test accuracy.")
        return
    value = lambda a: getattr(getattr(best, PARAMS[a][0]), PARAMS[a][1])
    said = ", ".join(f"{label(a)} {best.model.hidden[0] if a == 'width' else value(a):g}" for a in sweep.axes())
    st.button(f"Open the best ({said}) in the Train form", key="sweep_best", on_click=open_best,
              args=(sweep,), icon=":material/open_in_new:")
    if st.session_state.pop("sweep_opened", False):
        st.switch_page("pages/3_Train.py")


__all__ = ["sweep_form", "sweep_view"]
