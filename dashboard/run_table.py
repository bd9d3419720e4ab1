"""The Runs page's tables: one row per run folder, as a person reads it; and, for a class's
teacher, the space each person keeps, with a way to free it."""

from __future__ import annotations

import time

import pandas as pd
import streamlit as st

from dashboard import state
from dashboard.plain import chart_text, plain
from digits_core.analysis.comparison import Compared, compared
from digits_core.errors import DigitLabError, RunError
from digits_core.store.history import ACTIVE
from digits_core.store.quota import Caps, Usage
from digits_core.store.readers import read_experiment
from digits_core.store.runs import RunInfo

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


def space_table(infos: list[RunInfo], usage: dict[str, Usage], caps: Caps) -> pd.DataFrame:
    """One row per person who keeps runs, the most space first: their runs and megabytes,
    and the share of the cap they use (for a teacher freeing space)."""
    names = {i.owner: i.person or i.owner for i in infos}
    rows = []
    for owner, u in sorted(usage.items(), key=lambda kv: -kv[1].bytes):
        share = max(u.items / caps.items if caps.items else 0.0, u.bytes / caps.bytes if caps.bytes else 0.0)
        rows.append({"person": names.get(owner) or "—", "runs": u.items, "MB": round(u.bytes / 2**20, 1),
                     "of the cap": share if caps.any else None})
    return pd.DataFrame(rows, columns=["person", "runs", "MB", "of the cap"])


SPACE_COLUMNS = {"of the cap": st.column_config.ProgressColumn(format="percent", min_value=0.0, max_value=1.0)}


def space_panel(infos: list[RunInfo]) -> None:
    """The teacher's view of the space each person keeps, with a way to free one person's."""
    ss = st.session_state
    runner = state.runner()
    with st.expander("Space per person (teacher)", icon=":material/storage:"):
        st.dataframe(space_table(infos, runner.usage(), runner.caps), hide_index=True, key="runs_space",
                     column_config=SPACE_COLUMNS)
        owners = {i.owner: i.person or i.owner for i in infos if i.owner}
        if not owners:
            return

        def free_space(owner: str) -> None:
            gone = 0
            for i in infos:
                if i.owner == owner and i.status not in ACTIVE and not runner.busy(i.name):
                    try:
                        runner.delete(i.name, by=None)
                        gone += 1
                    except (RunError, OSError) as e:
                        ss["runs_error"] = str(e)
            ss["runs_freed"] = f"{gone} run{'s' if gone != 1 else ''} of {owners[owner]}"

        whose = st.selectbox("Person", list(owners), format_func=owners.get, key="runs_space_who")
        sure = st.checkbox(f"Yes, delete every run of {plain(owners[whose])}'s that is not training",
                           key=f"runs_space_sure_{whose}")
        st.button("Free their space", key="runs_free", disabled=not sure, on_click=free_space, args=(whose,),
                  icon=":material/delete_sweep:")
        if "runs_freed" in ss:
            st.success(f"Deleted {plain(ss.pop('runs_freed'))}.")


@st.cache_data(max_entries=64, show_spinner=False)
def _experiment(path: str, updated: float):
    try:
        return read_experiment(f"{path}/experiment.json")
    except (DigitLabError, OSError):
        return None  # drawn against epochs, its loss kind unknown


def compared_run(info: RunInfo) -> Compared:
    """A run as the comparison draws it: its history and its experiment's loss and batch."""
    return compared(chart_text(info.label), state.runner().history(info.name),
                    _experiment(str(info.path), float(info.meta.get("updated") or 0)))


__all__ = ["COLUMNS", "SPACE_COLUMNS", "compared_run", "runs_table", "space_panel", "space_table", "when"]
