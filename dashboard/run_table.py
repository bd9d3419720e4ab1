"""The Runs page's table: one row per run folder, as a person reads it."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard import state
from digits_core.compare import Compared, compared
from digits_core.errors import DigitLabError
from digits_core.readers import read_experiment
from digits_core.runs import RunInfo

COLUMNS = {
    "accuracy": st.column_config.NumberColumn(format="percent", width="small"),
    "epochs": st.column_config.NumberColumn(width="small"),
    "yours": st.column_config.TextColumn(width="small"),
    "status": st.column_config.TextColumn(width="medium"),
}


def when(t) -> str:
    """'30 Nov 06:22' for a time stamp, '' for none."""
    return time.strftime("%d %b %H:%M", time.localtime(t)) if isinstance(t, (int, float)) else ""


def runs_table(infos: list[RunInfo]) -> pd.DataFrame:
    """Run, (its person, on a class server,) model, data, accuracy, epochs, time, started,
    status (a broken one says why) and whether it is the viewer's."""
    return pd.DataFrame([{
        "run": ("📌 " if i.published else "") + i.label,
        **({"by": i.person or "—"} if state.class_mode() else {}),
        "model": i.meta.get("family", ""),
        "data": i.meta.get("dataset", ""),
        "accuracy": i.test_acc,
        "epochs": i.meta.get("epochs_done"),
        "time": f"{i.meta['elapsed']:.0f} s" if isinstance(i.meta.get("elapsed"), (int, float)) else "",
        "started": when(i.meta.get("created")),
        "status": i.status if i.status != "broken" else f"broken: {i.reason}",
        "yours": "✓" if i.owner and i.owner == state.owner() else "",
    } for i in infos])


@st.cache_data(max_entries=64, show_spinner=False)
def _experiment(path: str, updated: float):
    try:
        return read_experiment(f"{path}/experiment.json")
    except (DigitLabError, OSError):
        return None  # drawn against epochs, its loss kind unknown


def compared_run(info: RunInfo) -> Compared:
    """A run as the comparison draws it: its history and its experiment's loss and batch."""
    return compared(info.label, state.runner().history(info.name),
                    _experiment(str(info.path), float(info.meta.get("updated") or 0)))


__all__ = ["COLUMNS", "compared_run", "runs_table", "when"]
