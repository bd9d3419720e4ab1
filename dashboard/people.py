"""Who is at this tab on a class server (`DIGITLAB_CLASS_MODE=1`).

A person is their login when the operator enabled one (`st.login`, configured in
`.streamlit/secrets.toml`), else a name they type once: it goes into the URL (`?name=`), so
a reload, a bookmark or a second tab stays them. Teachers are listed logins
(`$DIGITLAB_TEACHERS`) or whoever types `$DIGITLAB_TEACHER_CODE` when joining (or later,
in the sidebar). The right is kept in the browser tab that typed the code (`state.teacher`),
not in the URL, and guessing the code is slowed down (`backoff.CodeGuard`).
"""

from __future__ import annotations

import os

import streamlit as st
from streamlit.errors import StreamlitAPIException

from dashboard import state
from dashboard.plain import plain
from digits_core.errors import ConfigError
from digits_core.serve.backoff import CodeGuard
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


@st.cache_resource
def _guard(folder: str) -> CodeGuard:
    """The server's count of wrong teacher codes (one per runs folder: one per class)."""
    return CodeGuard()


WRONG_CODE = "that teacher code is not right"


def _code_refused(code: str) -> str | None:
    """Why the teacher code `code` is not accepted from this tab (one line), or None: it is
    right and this tab is now the teacher's."""
    ctx = st.runtime.scriptrunner.get_script_run_ctx()
    tab = ctx.session_id if ctx is not None else ""
    right = is_teacher(code=code)
    refusal = _guard(str(state.runs_dir().resolve())).attempt(tab, right=right)
    if refusal is None and not right:
        refusal = WRONG_CODE
    if refusal is None:
        state.set_teacher(True)
    return refusal


def _take(name: str) -> None:
    s = state.session()
    if s.owner and s.owner != owner_key(name):  # someone else's link: not their session
        state.new_sid()
        s = state.session()
    s.person, s.owner = name, owner_key(name)
    st.query_params["name"] = name


def _join() -> None:
    """The join form's callback: a valid name becomes this person; else say why."""
    try:
        name = person_name(st.session_state.get("join_name", ""))
    except ConfigError as e:
        st.session_state["join_error"] = str(e)
        return
    code = str(st.session_state.get("join_code") or "")
    refusal = _code_refused(code) if code else None
    if refusal:
        st.session_state["join_error"] = refusal + ("; leave it empty to join as a student"
                                                    if refusal == WRONG_CODE else "")
        return
    if state.in_use_elsewhere(owner_key(name)):  # two Bens in one class: not one person's runs
        st.session_state["join_error"] = (
            f"someone has joined as {name} and is here right now. If that is you in another tab, "
            f"go on in that one; otherwise add an initial, e.g. {name} K.")
        return
    _take(name)


def _leave() -> None:
    s = state.session()
    s.person, s.owner, s.chosen_run = "", "", None
    state.set_teacher(False)
    st.query_params.pop("name", None)


def _teacher_code() -> None:
    """The sidebar's teacher code (a teacher back after a reload): right, or say why not."""
    refusal = _code_refused(str(st.session_state.get("teacher_code") or ""))
    if refusal:
        st.session_state["teacher_code_error"] = refusal


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
        if is_teacher(login=login_id) or is_teacher(login=shown):
            state.set_teacher(True)
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
        st.markdown(STUDENT_PROMISE)
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


STUDENT_PROMISE = (
    "Your runs are kept under your name: everyone can look at them, and only someone using "
    "your name can rename, continue or delete them. A name is not a password: anyone who "
    "types yours is you here, so pick one your class will not mistake for another's.")
NAMES_ARE_NOT_LOGINS = (
    "**What a typed name protects.** Each run belongs to the name that started it: another "
    "name cannot rename, continue or delete it, and no one can take a name someone has open "
    "right now. A name is not a password: anyone who types a classmate's name (or opens a link "
    "with it) is that classmate here. Your teacher right is kept in this browser tab, not in "
    "the address: a link gives it to no one, and after a reload you type the code again. "
    "For real identities, configure Streamlit's login: an `[auth]` section in "
    "`.streamlit/secrets.toml` (an OpenID Connect provider such as Google or Microsoft), and "
    "list teachers' logins in `DIGITLAB_TEACHERS`; the join page then offers **Log in**.")


def sidebar() -> None:
    """Who this is, in the sidebar (class mode only), with a way to change it; a teacher is
    told what a typed name protects, and a tab that is not (yet) the teacher's may type the code."""
    if not class_mode():
        return
    s = state.session()
    role = " · teacher" if state.teacher() else ""
    st.caption(f"You are **{plain(s.person)}**{role}.")
    if _login() is None:
        st.button("Not you? Change name", key="people_leave", on_click=_leave, type="tertiary")
    if state.teacher() and _login() is None:
        with st.expander("Names are not logins", icon=":material/info:"):
            st.caption(NAMES_ARE_NOT_LOGINS)
    elif not state.teacher() and os.environ.get(TEACHER_CODE_ENV):
        with st.expander("Teacher code", icon=":material/key:"):
            st.text_input("Teacher code", key="teacher_code", type="password", label_visibility="collapsed",
                          placeholder="teacher code")
            st.button("I am the teacher", key="teacher_code_go", on_click=_teacher_code)
            if "teacher_code_error" in st.session_state:
                st.error(st.session_state.pop("teacher_code_error"))


__all__ = ["identify", "sidebar"]
