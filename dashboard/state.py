"""The dashboard's state, in one place: who this browser tab is, what it is editing, which
run it is looking at, and the server-wide job runner.

- A tab is identified by a session id kept in the URL (`?sid=...`), so a reload (a new
  Streamlit session) finds the same person again: their experiment form, data choices,
  chosen run and running jobs.
- What a person edits lives server-side per session id (`Session`), not in widget keys:
  the Train form is a view of `Session.experiment`; replacing the experiment (a preset, a
  run's settings) bumps `form_version`, which gives every form widget a fresh key so it
  shows the new values.
- Runs are folders; the pages list and load them from disk, through the one `JobRunner`
  of the process (`runner()`).
- The accepted MNIST folder is remembered in `settings.json` beside the runs (`store.settings`).
- On a class server (`DIGITLAB_CLASS_MODE=1`) runs belong to people, not tabs: `owner()` is
  '@' and the person's name (from the login, or typed once and kept in the URL as
  `?name=`), so their runs follow them to any tab or computer; others' runs are read-only
  (`may_change`), and a teacher may publish one to the class.
- A teacher's right is the browser tab's, never the session id's (`teacher`): the URL, on
  the projector for all to see, carries the session id and the name, and must hand out no
  right. A reload is a new tab: the teacher types the code again.
"""

from __future__ import annotations

import copy
import logging
import os
import re
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from digits_core.config import DataConfig, Experiment, ModelConfig
from digits_core.errors import ConfigError
from digits_core.presets import ALL
from digits_core.serve.runner import DEFAULT_EVERY, DEFAULT_GRACE, JobRunner
from digits_core.serve.serving import class_mode
from digits_core.store import settings
from digits_core.store.history import ACTIVE
from digits_core.store.quota import Caps, caps_from_env
from digits_core.store.runs import RunInfo, default_runs_dir, list_runs, load_run, run_dataset

SID_PATTERN = re.compile(r"[A-Za-z0-9_-]{8,64}")  # a session id from the URL, whole (fullmatch)


@dataclass
class Session:
    """What one person (one session id) is working on; kept across reloads."""

    experiment: Experiment = field(default_factory=lambda: Experiment(name="custom"))
    form_version: int = 0  # bumped when the experiment is replaced: the form re-seeds
    chosen_run: str | None = None  # the run picked on an analysis page, if any
    presenter: bool = False  # large text and ticks for a projector
    person: str = ""  # class mode: the person's name as shown (from the login or typed)
    owner: str = ""  # class mode: what their runs carry (`serving.owner_key`)
    subsets: dict[str, int | None] = field(default_factory=dict)  # dataset -> training subset chosen on the Data page


# ------------------------------------------------------------------ process-wide


def runs_dir() -> Path:
    return default_runs_dir()


@st.cache_resource
def _tabs() -> dict[str, set[str]]:
    """session id -> the Streamlit session ids (browser tabs) that showed it."""
    return {}


@st.cache_resource
def _sessions() -> dict[str, Session]:
    return {}


_lock = threading.Lock()


def _open_tabs(owner: str) -> set[str] | None:
    """The Streamlit sessions (browser tabs) open as `owner`; None without a runtime (AppTest)."""
    from streamlit import runtime

    if not runtime.exists():
        return None
    rt = runtime.get_instance()
    with _lock:
        tabs = set(_tabs().get(owner, ()))
    return {t for t in tabs if rt.is_active_session(t)}


def _owner_alive(owner: str) -> bool:
    tabs = _open_tabs(owner)
    return True if tabs is None else bool(tabs)  # no runtime: nobody to ask, never stop a job


def in_use_elsewhere(owner: str) -> bool:
    """Whether a browser tab other than this one is open as `owner` (a class server's name
    already taken by someone at another computer, or this person in another tab)."""
    tabs = _open_tabs(owner) if owner else None
    if not tabs:
        return False
    ctx = st.runtime.scriptrunner.get_script_run_ctx()
    return bool(tabs - {ctx.session_id if ctx is not None else None})


def runner() -> JobRunner:
    """The server's one JobRunner: at most $DIGITLAB_MAX_JOBS (2) train at once, at most
    $DIGITLAB_JOBS_PER_SESSION (2) for one person; a person's runs stop (and are saved)
    $DIGITLAB_TAB_GRACE (30) seconds after their last tab closed."""
    return _runner(str(runs_dir().resolve()))


def _caps() -> Caps:
    """What one person may keep: $DIGITLAB_MAX_RUNS_PER_PERSON runs and
    $DIGITLAB_MAX_MB_PER_PERSON MB (class defaults on a class server, none elsewhere)."""
    try:
        return caps_from_env(class_server=class_mode())
    except ConfigError as e:  # a mistyped setting must not take every page down: the defaults hold
        logging.getLogger(__name__).warning("%s; the class defaults apply", e)
        return caps_from_env(class_server=True, items_env="", mb_env="")


@st.cache_resource
def _runner(folder: str) -> JobRunner:
    r = JobRunner(
        folder,
        max_jobs=max(1, int(os.environ.get("DIGITLAB_MAX_JOBS", "2"))),
        per_owner=max(1, int(os.environ.get("DIGITLAB_JOBS_PER_SESSION", "2"))),
        grace=float(os.environ.get("DIGITLAB_TAB_GRACE", DEFAULT_GRACE)),
        own_runs_only=class_mode(),
        caps=_caps(),
    )
    r.watch(_owner_alive, every=DEFAULT_EVERY)
    return r  # torch and friends are warmed after the first page (`warm.after_first_page`)


# ------------------------------------------------------------------ this person


def sid() -> str:
    """This tab's session id, from the URL (made and put there on the first visit)."""
    if "sid" not in st.session_state:
        given = st.query_params.get("sid", "")
        st.session_state["sid"] = given if SID_PATTERN.fullmatch(given) else uuid.uuid4().hex[:16]
    return _show_sid()


def new_sid() -> str:
    """Give this tab a session id of its own (a link carried someone else's)."""
    st.session_state["sid"] = uuid.uuid4().hex[:16]
    return _show_sid()


def _show_sid() -> str:
    value = st.session_state["sid"]
    if st.query_params.get("sid") != value:
        st.query_params["sid"] = value
    return value


def owner() -> str:
    """Whose runs this tab starts and sees as its own: the session id, or on a class server
    the person's owner key ("" until they have said who they are). The tab is counted as
    theirs, so their runs keep training while any of their tabs is open."""
    value = session().owner if class_mode() else sid()
    ctx = st.runtime.scriptrunner.get_script_run_ctx()
    if ctx is not None and value:
        with _lock:
            _tabs().setdefault(value, set()).add(ctx.session_id)
    return value


def person() -> str:
    """The name others see on this person's runs (class mode), else ""."""
    return session().person if class_mode() else ""


TEACHER_KEY = "_teacher"  # st.session_state: this browser tab entered the code (or is a listed login)


def teacher() -> bool:
    """May this browser tab act as the teacher (publish, free others' space)? Kept in the
    tab's own Streamlit session, which no link can reach, never under the session id."""
    return class_mode() and bool(st.session_state.get(TEACHER_KEY))


def set_teacher(on: bool) -> None:
    st.session_state[TEACHER_KEY] = on


def may_change(info: RunInfo) -> bool:
    """May this person rename, continue or delete the run? Anyone, unless on a class server,
    where only its owner."""
    return not class_mode() or (bool(info.owner) and info.owner == owner())


def changed_by() -> str | None:
    """The `by` the core's rename/delete checks get: the owner on a class server, else None."""
    return owner() if class_mode() else None


def may_delete(info: RunInfo) -> bool:
    """May this person delete the run? Its owner (`may_change`), and on a class server the
    teacher, who frees space for anyone (a broken run's, too)."""
    return may_change(info) or teacher()


def deleted_by() -> str | None:
    """The `by` the core's delete check gets: None (anyone) for the teacher, else `changed_by`."""
    return None if teacher() else changed_by()


def session() -> Session:
    """This person's `Session` (restored after a reload)."""
    key = sid()
    with _lock:
        store = _sessions()
        if key not in store:
            remembered = settings.remembered_mnist_dir(runs_dir())
            store[key] = Session(experiment=Experiment(data=DataConfig(mnist_dir=remembered),
                                                       model=ModelConfig(), name="custom"))
        return store[key]


def experiment() -> Experiment:
    """The experiment the Train page edits (a copy is handed out by `start`, never this one)."""
    return session().experiment


def set_experiment(exp: Experiment, *, keep_mnist_dir: bool = True) -> None:
    """Replace the experiment being edited (a preset, a run's settings): every form widget
    shows it on the next render. The person's data choices survive where the new
    experiment trains on the same dataset: the MNIST folder, and a training subset
    chosen on the Data page for that dataset (a class demo on 6,000 images stays one, also
    after a digits preset in between)."""
    s = session()
    new = copy.deepcopy(exp)
    mine = s.experiment.data
    if keep_mnist_dir and new.data.dataset == "mnist" and new.data.mnist_dir is None:
        new.data.mnist_dir = mine.mnist_dir or settings.remembered_mnist_dir(runs_dir())
    if keep_mnist_dir and new.data.train_size is None:  # the subset last chosen for this dataset,
        # also across a preset on the other one (a digits preset between two MNIST ones)
        new.data.train_size = mine.train_size if new.data.dataset == mine.dataset else \
            s.subsets.get(new.data.dataset)
    s.experiment = new
    s.form_version += 1


def update_experiment(exp: Experiment) -> None:
    """Record an edit made in the form (the widgets already show it)."""
    session().experiment = exp


def data_config() -> DataConfig:
    return experiment().data


def show_data_line(slot=None) -> None:
    """The sidebar's line about the data, in `slot` (an st.empty the app shell draws before
    the page); called again without one by the Data page once it changed the data, so the
    line is right in the same run."""
    if slot is not None:
        st.session_state["_data_line"] = slot
    slot = st.session_state.get("_data_line")
    if slot is None:  # a page run on its own (tests): no shell, no sidebar line
        return
    data = data_config()
    slot.caption(f"Data: **{data.dataset}**, split {data.split}, "
                 f"{'all' if data.train_size is None else f'{data.train_size:,}'} training images")


def set_data_config(cfg: DataConfig) -> None:
    """The Data page's choice; the experiment follows it. An accepted MNIST folder is
    remembered for the next session too."""
    s = session()
    if cfg != s.experiment.data:
        s.experiment = copy.deepcopy(s.experiment)
        s.experiment.data = copy.deepcopy(cfg)
    s.subsets[cfg.dataset] = cfg.train_size
    if cfg.mnist_dir and cfg.mnist_dir != settings.remembered_mnist_dir(runs_dir()):
        settings.remember(runs_dir(), mnist_dir=cfg.mnist_dir)


def mnist_dir() -> str | None:
    """The MNIST folder this person uses (None: the download cache)."""
    return data_config().mnist_dir or settings.remembered_mnist_dir(runs_dir())


def preset_name(exp: Experiment) -> str:
    """The preset `exp` came from, '<preset> (edited)' once changed, else its own name.
    The MNIST folder is where the data is, not a setting: it never counts as an edit."""
    base = exp.name.removesuffix(" (edited)")
    if base not in ALL:
        return exp.name or "custom"
    ref, mine = ALL[base].build(), copy.deepcopy(exp)
    mine.name, mine.data.mnist_dir = ref.name, ref.data.mnist_dir
    return base if mine == ref else f"{base} (edited)"


# ------------------------------------------------------------------ runs


def all_runs() -> list[RunInfo]:
    """Every run folder, newest first."""
    return list_runs(runs_dir())


def my_run_names() -> list[str]:
    """This person's runs (started from any of their tabs), oldest first, then the runs of
    others they continued (from the Runs page: the Train page must show what they started)."""
    me = owner()
    if not me:
        return []
    names = [i.name for i in reversed(all_runs()) if i.owner == me]
    return names + [n for n in runner().owned(me) if n not in names]


def run_label(info: RunInfo, *, live: bool = True) -> str:
    """One line for lists and pickers: 'S4-2 · mnist · finished · test 98.4 %', 'S4-3 · mnist
    · running 47 % · test 97.9 %' (the last full test); a run not the person's says whose it
    is ('Ada's S4-2 · ...', 'Another session's S4-2 · ...') and a published one is pinned (📌). A run this server
    trains is described from memory: its folder lags behind by up to a checkpoint.

    Another person's (or session's) run says whose it is (`whose`).

    `live=False` (a picker, drawn again only when the page is): a run that trains is just
    'running', as its progress and accuracy would go stale on screen at once."""
    acc = info.test_acc
    status = info.status
    job = runner().job(info.name)
    if job is not None:
        status, progress, live_acc = job.brief()
        if progress is not None and not live:
            acc = None
        else:
            status = status if progress is None else f"{status} {progress:.0%}"
            acc = acc if live_acc is None else live_acc
    elif not live and status in ACTIVE:
        acc = None
    label = f"{whose(info)}{info.label}"
    pin = "📌 " if info.published else ""
    return f"{pin}{label} · {info.meta.get('dataset', '?')} · {status}{test_tail(acc)}"


def whose(info: RunInfo) -> str:
    """'' for this person's own run, else who it belongs to, to go before its name: on a
    class server 'Ada's ' (the name they gave) or 'Someone else's ', on a one-person server
    'Another session's ' (a run this session did not start: a reload keeps the session,
    another browser, tab link or the command line does not). Plain text, for pickers."""
    me = owner()
    if me and info.owner == me:
        return ""
    if class_mode():
        return f"{info.person}'s " if info.person else "Someone else's "
    return "Another session's "


def test_tail(acc) -> str:
    """' · test 98.4 %' for a run's line, '' while it has no test accuracy."""
    return f" · test {acc:.1%}" if isinstance(acc, (int, float)) else ""


@st.cache_resource(max_entries=12, show_spinner=False)
def _load(path: str, updated: float):
    return load_run(path)


def load(info: RunInfo):
    """A run's model and data, cached until its folder changes. Raises RunError."""
    return _load(str(info.path), float(info.meta.get("updated") or 0))


NO_MODEL = "No trained model yet: start one on the Train page (it is saved as it trains)."


def run_data(run):
    """A run's own data split, read from the run's MNIST folder or, where that is gone,
    from this person's. Raises DataError."""
    from digits_core.data.mnist import mnist_available

    own = run.experiment.data.mnist_dir
    keep = run.experiment.data.dataset != "mnist" or (own and mnist_available(own)[0])
    return run_dataset(run, mnist_dir=None if keep else mnist_dir())


@st.cache_resource(show_spinner=False)
def ready_made():
    """The model that ships with Digit Lab (None if it is not installed or damaged)."""
    from digits_core.errors import RunError
    from digits_core.store.pretrained import load_ready_made

    try:
        return load_ready_made()
    except RunError:
        return None


LABELS_KEPT = 500  # labels remembered per picker (a run's label changes as it trains)


def keep_choice(key: str, labels: dict[str, str]) -> None:
    """Call right before drawing the picker with widget key `key` whose options are the keys
    of `labels` (option -> the label shown): a choice survives its label changing.

    The browser sends a picker's choice back as the label it shows, and Streamlit reads a
    label that is no longer among the options as no choice: a run picked while it trained
    ("S4-2 · mnist · running 47 %") fell back to the default at the next rerun once its
    label moved on, and the Train page then showed another run; and the browser went on
    showing the old label. Every label drawn for `key` is remembered with its option, a
    choice that comes back as an old label is turned back into its option (for a
    multiselect, each of them), and the choice is written back, so the browser shows its
    label as it is now."""
    ss = st.session_state
    seen: dict[str, str] = ss.setdefault(f"_labels_{key}", {})
    value = ss.get(key)

    def option(v):
        return seen.get(v, v) if isinstance(v, str) and v not in labels else v

    # Written back even when unchanged: the browser shows the label it was last sent, so
    # the choice it shows must be sent again for its new status to show.
    if isinstance(value, list):
        ss[key] = [v for v in dict.fromkeys(option(v) for v in value) if v in labels]
    elif value is not None and option(value) in labels:
        ss[key] = option(value)
    elif value is not None:  # a run deleted meanwhile: the picker opens on its default
        del ss[key]
    for name, label in labels.items():
        seen.pop(label, None)  # newest last: the oldest go first
        seen[label] = name
    while len(seen) > LABELS_KEPT:
        seen.pop(next(iter(seen)))


NOT_CONTINUED = "A diverged run is not continued: train a new one with a smaller learning rate"
READY_MADE = ":ready-made:"  # the ready-made model's entry in a picker (no run folder has a colon)


def pick_run(label: str = "Model", *, include_running: bool = False,
             ready_made: str | None = None) -> RunInfo | None:
    """A picker over the runs: this person's (newest first), then those published to the
    class, then everyone else's. It opens on their newest run (or, with none, the newest
    published one) unless they chose another in this session; the choice follows them
    across pages.

    With `ready_made` (its label) the shipped model is a choice too, after the person's own
    and the published runs, so that where they have none the picker opens on it rather than
    on whatever someone else trained last (a classmate's, or on a one-person server another
    session's: a visitor who trained nothing reads with the good model). Returns None for it
    (and when there is nothing to pick)."""
    infos = [i for i in all_runs() if i.ok or (include_running and i.status in ("running", "loading"))]
    s = session()
    me = owner()
    infos.sort(key=lambda i: 0 if (me and i.owner == me) else 1 if i.published else 2)  # stable: newest first
    names = [i.name for i in infos]
    labels = {i.name: run_label(i, live=False) for i in infos}
    if ready_made is not None:
        ahead = sum(1 for i in infos if (me and i.owner == me) or i.published)
        names.insert(ahead, READY_MADE)
        labels[READY_MADE] = ready_made
    if not infos:
        return None
    default = s.chosen_run if s.chosen_run in names else names[0]
    by_name = {i.name: i for i in infos}
    key = f"pick_run_{default}"  # a new default (a newer run) re-seeds the picker

    def chosen() -> None:
        s.chosen_run = st.session_state[key]

    keep_choice(key, {n: labels[n] for n in names})
    choice = st.selectbox(label, names, index=names.index(default), key=key, on_change=chosen,
                          format_func=labels.get)
    info = by_name.get(choice)
    if info is not None and info.status == "diverged":
        st.warning("This run diverged (its loss blew up), so its model reads digits about as well "
                   "as a guess. Train it again with a smaller learning rate.", icon=":material/warning:")
    return info


def follow(key: str) -> None:
    """A run picked in the picker with widget key `key` (the Train page's run shown, the
    Runs page's one run) is the one the analysis pages show next."""
    session().chosen_run = st.session_state.get(key)


def started(name: str) -> None:
    """A run just started: the analysis pages follow it (the newest is the default)."""
    session().chosen_run = None


__all__ = [
    "NOT_CONTINUED",
    "READY_MADE",
    "Session",
    "all_runs",
    "changed_by",
    "class_mode",
    "data_config",
    "deleted_by",
    "experiment",
    "follow",
    "in_use_elsewhere",
    "keep_choice",
    "load",
    "may_change",
    "may_delete",
    "mnist_dir",
    "my_run_names",
    "new_sid",
    "owner",
    "person",
    "pick_run",
    "preset_name",
    "ready_made",
    "run_data",
    "run_label",
    "runner",
    "runs_dir",
    "session",
    "set_data_config",
    "set_experiment",
    "set_teacher",
    "show_data_line",
    "sid",
    "started",
    "teacher",
    "test_tail",
    "update_experiment",
    "whose",
]
