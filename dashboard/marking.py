"""The Draw page's "Right" / "No, it's a _": one click keeps the drawing (`drawings`), one
more undoes it. Nothing is kept without that click. Called once, under the reading."""

from __future__ import annotations

import hashlib

import numpy as np
import streamlit as st

from dashboard import state
from digits_core.store.drawings import DrawingStoreError, delete_drawing, save_drawing

ss = st.session_state


def _key(rgba: np.ndarray) -> str:
    """The drawing's own key: a new stroke is a new drawing, with its own buttons."""
    return hashlib.blake2b(np.ascontiguousarray(rgba).tobytes(), digest_size=8).hexdigest()


def model_key(run) -> str:
    """What a drawing records as the model that read it: the run's folder name, or the
    ready-made model's picker entry."""
    return state.READY_MADE if run.meta.get("ready_made") or run.path is None else run.path.name


def _keep(run, rgba, prediction, key: str, label: int) -> None:
    try:
        d = save_drawing(state.runs_dir(), rgba, prediction.image, label=label, reading=prediction.digit,
                         model=run.label, model_key=model_key(run), owner=state.owner(),
                         person=state.person(), dataset=run.experiment.data.dataset)
    except DrawingStoreError as e:
        ss["mark_error"] = str(e)
        return
    ss.setdefault("mark_kept", {})[key] = (d.id, label)
    ss["last_marked"] = d.id  # the drawing "Teach the model" reads again afterwards


def _undo(key: str) -> None:
    drawing_id, _ = ss.get("mark_kept", {}).pop(key, (None, None))
    ss.pop(f"mark_other_{key}", None)  # the digit clicked before is not clicked any more
    if drawing_id is None:
        return
    try:
        delete_drawing(state.runs_dir(), drawing_id, by=state.owner())
    except DrawingStoreError as e:
        ss["mark_error"] = str(e)
    if ss.get("last_marked") == drawing_id:
        ss.pop("last_marked")


def _other(run, rgba, prediction, key: str) -> None:
    label = ss.get(f"mark_other_{key}")
    if label is not None:
        _keep(run, rgba, prediction, key, int(label))


def mark_panel(run, rgba: np.ndarray, prediction) -> None:
    """Under a reading: keep the drawing as read right, or as the digit it really is."""
    if rgba is None or prediction is None or prediction.digit is None:
        return
    key = _key(rgba)
    if "mark_error" in ss:
        st.error(ss.pop("mark_error"))
    kept = ss.get("mark_kept", {}).get(key)
    if kept is not None:
        _, label = kept
        said = "read right" if label == prediction.digit else f"a {label}, misread as {prediction.digit}"
        st.success(f"Kept as {said}: see it on the Drawings page.", icon=":material/check:")
        st.button("Undo", key=f"mark_undo_{key}", on_click=_undo, args=(key,), icon=":material/undo:")
        return
    st.caption("Is it right? One click keeps the drawing (Drawings page).")
    st.button(f"Right, it's a {prediction.digit}", key=f"mark_right_{key}", on_click=_keep,
              args=(run, rgba, prediction, key, prediction.digit), icon=":material/check:")
    st.pills("No, it's a", [d for d in range(10) if d != prediction.digit], key=f"mark_other_{key}",
             on_change=_other, args=(run, rgba, prediction, key))


__all__ = ["mark_panel", "model_key"]
