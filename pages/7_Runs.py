"""Runs: the saved runs on disk; compare their curves, load one into the session, delete."""

import time

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from digits_core.errors import RunError
from digits_core.runs import delete_run, list_runs, load_run
from pages import _shared

MAX_CHART_POINTS = 2000
ss = st.session_state

st.title("Runs")
folder = _shared.runs_dir()
infos = list_runs(folder)
st.caption(f"Saved runs in `{folder.resolve()}`.")
if not infos:
    st.info("No saved runs yet: train a model on the Train page and press **Save run**.")
    st.stop()


def fmt_time(seconds) -> str:
    return f"{seconds:.0f} s" if isinstance(seconds, (int, float)) else ""


table = pd.DataFrame(
    [
        {
            "run": info.name,
            "label": info.meta.get("label") or "",
            "family": info.meta.get("family", ""),
            "dataset": info.meta.get("dataset", ""),
            "test accuracy": info.meta.get("test_acc"),
            "epochs": info.meta.get("epochs_done"),
            "time": fmt_time(info.meta.get("elapsed")),
            "created": time.strftime("%Y-%m-%d %H:%M", time.localtime(info.meta["created"]))
            if isinstance(info.meta.get("created"), (int, float))
            else "",
            "status": info.meta.get("status", "") if info.ok else f"broken: {info.reason}",
        }
        for info in infos
    ]
)
st.dataframe(
    table,
    hide_index=True,
    key="runs_table",
    column_config={"test accuracy": st.column_config.NumberColumn(format="percent")},
)

good = {info.name: info for info in infos if info.ok}
by_name = {info.name: info for info in infos}


@st.cache_data(max_entries=64, show_spinner=False)
def saved(path: str, created: float) -> tuple[dict, dict]:
    """A run's experiment and history as plain dicts (`created` keys the cache)."""
    run = load_run(path)
    return run.experiment.to_dict(), run.history.to_dict()


# ------------------------------------------------------------------ compare
st.subheader("Compare")
chosen = st.multiselect(
    "Runs to overlay", list(good), key="runs_compare", placeholder="Choose runs…"
)
if chosen:
    acc, loss = go.Figure(), go.Figure()
    for name in chosen:
        try:
            _, h = saved(str(good[name].path), good[name].meta.get("created", 0))
        except RunError as e:
            st.error(str(e))
            continue
        tests = [(e, a) for e, a in zip(h["epochs"], h["test_acc"]) if a is not None]
        acc.add_trace(
            go.Scatter(
                x=[e for e, _ in tests], y=[a for _, a in tests], mode="lines+markers", name=name
            )
        )
        stride = max(1, -(-len(h["steps"]) // MAX_CHART_POINTS))
        loss.add_trace(
            go.Scatter(x=h["steps"][::stride], y=h["loss"][::stride], mode="lines", name=name)
        )
    acc.update_layout(
        title="Test accuracy per epoch",
        xaxis={"title": "epoch", "tickformat": "d"},
        yaxis={"title": "accuracy", "tickformat": ".0%"},
        margin={"t": 40},
    )
    loss.update_layout(
        title="Training loss per step", xaxis_title="step", yaxis_title="loss", margin={"t": 40}
    )
    left, right = st.columns(2)
    left.plotly_chart(acc, key="runs_acc")
    right.plotly_chart(loss, key="runs_loss")

# ------------------------------------------------------------------ one run
st.subheader("One run")
name = st.selectbox("Run", list(by_name), key="runs_pick")
info = by_name[name]


def load_into_session(name: str) -> None:
    try:
        _shared.loaded_runs()[name] = load_run(by_name[name].path)
    except RunError as e:
        ss["runs_error"] = str(e)
        return
    ss["selected_run"] = name
    ss["runs_loaded"] = name


if not info.ok:
    st.error(f"This run is broken: {info.reason}.")
else:
    c1, c2 = st.columns(2)
    in_session = name in _shared.loaded_runs()
    c1.button(
        "Loaded" if in_session else "Load into session",
        key="runs_load",
        disabled=in_session,
        on_click=load_into_session,
        args=(name,),
        icon=":material/upload:",
    )
    if ss.get("runs_loaded") == name:
        c2.success("Loaded: pick it on the Evaluate, Embedding or Draw page.")
    if "runs_error" in ss:
        st.error(ss.pop("runs_error"))
    with st.expander("Configuration (experiment.json)"):
        try:
            config, _ = saved(str(info.path), info.meta.get("created", 0))
            st.json(config)
        except RunError as e:
            st.error(str(e))

sure = st.checkbox(f"Yes, delete {name} permanently", key=f"runs_sure_{name}")


def delete(name: str) -> None:
    try:
        delete_run(by_name[name].path, folder)
    except (RunError, OSError) as e:
        ss["runs_error"] = str(e)
        return
    ss["runs_deleted"] = name


st.button(
    "Delete run",
    key="runs_delete",
    disabled=not sure,
    on_click=delete,
    args=(name,),
    icon=":material/delete:",
)
if "runs_deleted" in ss:
    st.success(f"Deleted {ss.pop('runs_deleted')}.")
if "runs_error" in ss:
    st.error(ss.pop("runs_error"))
