"""Who is at this tab on a class server (`DIGITLAB_CLASS_MODE=1`).

A person is their login when the operator enabled one (`st.login`, configured in
`.streamlit/secrets.toml`), else a name they type once: it goes into the URL (`?name=`), so
a reload, a bookmark or a second tab stays them. Teachers are listed logins
(`$DIGITLAB_TEACHERS`) or whoever types `$DIGITLAB_TEACHER_CODE` when joining.
"""

from __future__ import annotations

import os

import streamlit as st
from streamlit.errors import StreamlitAPIException

from dashboard import state
from digits_core.errors import ConfigError
from digits_core.serve.serving import (
    TEACHER_CODE_ENV,
    class_mode,
    is_teacher,
    owner_key,
    person_name,
)


def _login() -> tuple[str, str] | None:
    """(name shown, login id) of a logged-in user, or None (no login configured, or not in)."""
    try:
        if not st.user.is_logged_in:
            return None
        login = str(st.user.get("email") or st.user.get("sub") or st.user.get("name") or "")
        shown = str(st.user.get("name") or login)
    except (AttributeError, KeyError, RuntimeError):
        return None
    return (shown[:40], login) if login else None


def _login_configured() -> bool:
    try:
        return "auth" in st.secrets
    except (OSError, StreamlitAPIException):  # no secrets file, or one that does not parse
        return False


def _take(name: str, code: str = "") -> None:
    s = state.session()
    s.person, s.owner = name, owner_key(name)
    s.teacher = s.teacher or is_teacher(code=code)
    st.query_params["name"] = name


def _join() -> None:
    """The join form's callback: a valid name becomes this person; else say why."""
    try:
        name = person_name(st.session_state.get("join_name", ""))
    except ConfigError as e:
        st.session_state["join_error"] = str(e)
        return
    code = str(st.session_state.get("join_code") or "")
    if code and not is_teacher(code=code):
        st.session_state["join_error"] = "that teacher code is not right; leave it empty to join as a student"
        return
    if state.in_use_elsewhere(owner_key(name)):  # two Bens in one class: not one person's runs
        st.session_state["join_error"] = (
            f"someone has joined as {name} and is here right now. If that is you in another tab, "
            f"go on in that one; otherwise add an initial, e.g. {name} K.")
        return
    _take(name, code)


def _leave() -> None:
    s = state.session()
    s.person, s.owner, s.teacher, s.chosen_run = "", "", False, None
    st.query_params.pop("name", None)


def identify() -> bool:
    """Make sure a class server knows who this is; True when the page may be drawn.
    Without class mode, always True (the tab's session id owns its runs)."""
    if not class_mode():
        return True
    s = state.session()
    login = _login()
    if login is not None:
        shown, login_id = login
        s.person, s.owner = shown, "@" + login_id.casefold()
        s.teacher = s.teacher or is_teacher(login=login_id) or is_teacher(login=shown)
        return True
    typed = st.query_params.get("name", "")
    if typed and typed != s.person:  # a bookmark, a shared link, a second tab
        try:
            _take(person_name(typed))
        except ConfigError:
            st.query_params.pop("name", None)
    if s.owner:
        if st.query_params.get("name") != s.person:  # a page switch drops it: keep it there
            st.query_params["name"] = s.person
        return True
    _join_form()
    return False


def _join_form() -> None:
    _, middle, _ = st.columns([1, 2, 1])
    with middle:
        st.title("Join the class")
        st.markdown("Your runs are kept under your name: everyone can look at them, only you "
                    "can rename, continue or delete them.")
        if _login_configured():
            st.button("Log in", on_click=st.login, type="primary", icon=":material/login:")
            st.caption("…or type a name below.")
        with st.form("join", border=False):
            st.text_input("Your name", key="join_name", max_chars=40, placeholder="e.g. Ada L.")
            if os.environ.get(TEACHER_CODE_ENV):
                st.text_input("Teacher code (teachers only)", key="join_code", type="password")
            st.form_submit_button("Join", type="primary", on_click=_join, icon=":material/arrow_forward:")
        if "join_error" in st.session_state:
            st.error(st.session_state.pop("join_error"))


def sidebar() -> None:
    """Who this is, in the sidebar (class mode only), with a way to change it."""
    if not class_mode():
        return
    s = state.session()
    role = " · teacher" if s.teacher else ""
    st.caption(f"You are **{s.person}**{role}.")
    if _login() is None:
        st.button("Not you? Change name", key="people_leave", on_click=_leave, type="tertiary")


__all__ = ["identify", "sidebar"]
