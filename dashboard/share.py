"""The Train page's links: a configuration opened from a link fills the form (never starts
anything), the form's experiment copied as a link, and on a class server a teacher's
locked configuration (`digits_core.links`)."""

from __future__ import annotations

import streamlit as st

from digits_core.errors import ConfigError
from digits_core.serve.links import (
    CONTROLS,
    PARAM,
    LockedConfig,
    apply_open,
    experiment_from_link,
    experiment_link,
    one_line,
    publish_locked,
    read_locked,
    withdraw_locked,
)

from . import state


def open_link() -> None:
    """A link's configuration fills the form once (the parameter is then taken off the URL,
    so a reload keeps the person's edits); a bad one is refused in one line."""
    value = st.query_params.get(PARAM)
    if value is None:
        return
    del st.query_params[PARAM]
    try:
        state.set_experiment(experiment_from_link(value))
        filled = "The form is filled from the link: check it, then press Start training."
        st.session_state["link_note"] = ("success", filled)
    except ConfigError as e:
        st.session_state["link_note"] = ("error", f"Link not used: {one_line(e)}")


def show_note() -> None:
    kind, text = st.session_state.pop("link_note", (None, None))
    if kind == "success":
        st.success(text, icon=":material/link:")
    elif kind == "error":
        st.error(text, icon=":material/link_off:")


def student_lock() -> LockedConfig | None:
    """On a class server, for a student: the teacher's locked configuration, which the
    experiment being edited is held to (the open controls keep the student's values)."""
    if not state.class_mode() or state.teacher():
        return None
    try:
        lock = read_locked(state.runs_dir())
    except ConfigError as e:
        st.error(one_line(e))
        return None
    if lock is not None:
        held = apply_open(lock, state.experiment())
        if held != state.experiment():
            state.set_experiment(held, keep_mnist_dir=False)
    return lock


def fixed(lock: LockedConfig | None) -> frozenset[str]:
    return frozenset() if lock is None else frozenset(CONTROLS) - set(lock.open)


def lock_line(lock: LockedConfig) -> None:
    names = ", ".join(CONTROLS[c][2] for c in lock.open) or "nothing"
    st.info(f"Your teacher's configuration: you may change **{names}**; the rest is fixed.",
            icon=":material/lock:")


def share_panel(exp) -> None:
    """The experiment as a link to copy; for a teacher, publishing it locked to the class."""
    with st.expander("Share these settings as a link", icon=":material/link:"):
        base = (st.context.url or "").split("?")[0] or "/train"
        st.code(f"{base}?{PARAM}={experiment_link(exp)}", language=None, wrap_lines=True)
        st.caption("Whoever opens it gets this form filled in; nothing starts until they press Start.")
    if not (state.class_mode() and state.teacher()):
        return
    with st.expander("Publish to the class, locked", icon=":material/lock:"):
        try:
            current = read_locked(state.runs_dir())
        except ConfigError:
            current = None
        open_now = st.multiselect("Controls students may change", list(CONTROLS),
                                  default=current.open if current else ["lr"], key="lock_open",
                                  format_func=lambda c: CONTROLS[c][2])
        c1, c2 = st.columns(2)
        if c1.button("Publish these settings", key="lock_publish", icon=":material/lock:"):
            try:
                publish_locked(state.runs_dir(), exp, open_now)
                st.success("Published: students now see these settings, with only the open controls free.")
            except ConfigError as e:
                st.error(one_line(e))
        if current is not None and c2.button("Withdraw", key="lock_withdraw"):
            withdraw_locked(state.runs_dir())
            st.success("Withdrawn: students have the whole form again.")
        elif current is not None:
            c2.caption("A locked configuration is published now.")


__all__ = ["fixed", "lock_line", "open_link", "share_panel", "show_note", "student_lock"]
