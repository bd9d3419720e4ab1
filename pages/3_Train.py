"""Train: set up a model and its training (or take a preset), start it, watch it learn.

The run trains on the server (dashboard.state.runner) and is a folder from its first step,
so it keeps going across clicks, page switches and reloads; a fragment polls it.
"""

import copy

import streamlit as st

from dashboard import share, state
from dashboard.charts import prefetch_plotly
from dashboard.form import experiment_form
from dashboard.live import after_panel, embedding_panel, live_panel, pace, poll_seconds
from dashboard.plain import plain
from dashboard.polling import crowded, seen, watchers
from digits_core.data.mnist import mnist_available
from digits_core.errors import ConfigError, DigitLabError
from digits_core.presets import ALL, get_preset
from digits_core.serve.links import apply_open
from digits_core.serve.runner import preflight

ss = st.session_state
session = state.session()
runner = state.runner()
mine = state.my_run_names()
live = [n for n in mine if n in runner.active(state.owner())]
labels = {i.name: state.run_label(i, live=False) for i in state.all_runs() if i.name in mine}
state.keep_choice("train_view", {n: labels.get(n, n) for n in reversed(mine)})
if ss.get("train_view") not in mine:
    ss["train_view"] = (live or mine or [None])[-1]

st.title("Train")
share.open_link()  # a shared configuration fills the form; nothing starts by itself
lock = share.student_lock()  # a class: the teacher's locked configuration, if published
share.show_note()


def load_preset() -> None:
    name = ss.get("preset_pick")
    if name in ALL:
        state.set_experiment(get_preset(name).build())
    ss["preset_pick"] = None


def start(experiment) -> None:
    try:
        ss["train_view"] = runner.start(copy.deepcopy(experiment), owner=state.owner(), person=state.person())
        state.started(ss["train_view"])
    except DigitLabError as e:  # refused settings, a person's limit, a runs folder that cannot be written
        ss["start_error"] = str(e)


# Folded away once a run is shown (live or ended), so its status, Stop and both curves fit
# one screen, and an ending run keeps its result in view; Start says what it would train.
settings = st.expander("Settings for a new run" if mine else "Settings", expanded=not mine)
with settings:
    if lock is None:
        st.selectbox("Fill everything from a preset", list(ALL), index=None, key="preset_pick",
                     placeholder="Choose a preset…", on_change=load_preset,
                     format_func=lambda name: ALL[name].title)
    else:
        share.lock_line(lock)
    exp = state.experiment()
    d = exp.data
    st.caption(f"Data: **{d.dataset}**, {d.split} split, "
               f"{'all' if d.train_size is None else f'{d.train_size:,}'} training images, "
               f"{d.normalization} pixels, seed {d.seed}.")
    if lock is None:
        st.page_link("pages/2_Data.py", label="Change the data on the Data page", icon=":material/dataset:")
    new, error = experiment_form(exp, session.form_version, share.fixed(lock))
    if lock is not None:
        new = apply_open(lock, new)  # what starts is the teacher's, whatever the browser sent
    new.name = state.preset_name(new)
    state.update_experiment(new)
    n_params, problems = None, [error] if error else []
    try:  # the widths' problem (the form kept the last good ones) and the others, together
        n_params = preflight(new)
    except ConfigError as e:
        problems += getattr(e, "problems", None) or [str(e)]
    if problems:
        n_params, error = None, problems[0] if len(problems) == 1 else "\n".join(f"- {p}" for p in problems)
    if error is None and new.data.dataset == "mnist":
        ok, message = mnist_available(new.data.mnist_dir)
        if not ok:
            error = f"MNIST is not on this machine yet: get it on the Data page. ({message})"
    c1, c2 = st.columns([1, 3])
    c1.metric("Parameters", "—" if n_params is None else f"{n_params:,}")
    if error:
        c2.error(error)
    else:
        c2.caption(f"Experiment **{plain(new.name)}** is ready. It trains on the server and is saved as "
                   "it trains: switch pages or reload as you like.")
    share.share_panel(new)

left, right = st.columns([1, 3])
left.button("Start training", type="primary", key="start", on_click=start, args=(new,),
            disabled=bool(error), icon=":material/play_arrow:")
if "start_error" in ss:
    right.error(ss.pop("start_error"))
elif mine and not error and not session.presenter:  # a projector needs the room for the run
    t = new.train
    right.caption(f"Start trains **{plain(new.name)}**: {new.model.family}, {new.data.dataset}, "
                  f"{t.epochs} epoch{'s' if t.epochs != 1 else ''}, batch {t.batch_size}, "
                  f"{t.optimizer} lr {t.lr:g} (open the settings above to change it).")
if not mine:
    st.info("Nothing trained in this session yet: press **Start training**.")
    prefetch_plotly()  # the live charts come at once after Start
    st.stop()

if len(mine) > 1:
    right.selectbox("Run shown", list(reversed(mine)), key="train_view", label_visibility="collapsed",
                    format_func=lambda n: labels.get(n, n), on_change=state.follow, args=("train_view",))
view = ss["train_view"]
polling = runner.busy(view)  # also while a stopped run's test accuracy is being measured
watching = pace(runner.history(view)) if polling else ""  # queued: seldom; starting: often
crowd = watchers() if polling else 1  # a server many tabs watch: each looks less often


@st.fragment(run_every=poll_seconds(watching, crowd) if polling else None)
def watch(name: str, polling: bool, watching: str, beside: bool) -> None:
    if polling:
        seen(state.sid())
    live_panel(name, session.presenter, beside=beside)
    if polling and (not runner.busy(name) or pace(runner.history(name)) != watching):
        st.rerun()  # the whole page: a new pace of looking, or what comes after the run


live_default = runner.job(view) is not None and runner.job(view).experiment.train.live_embedding
show_embedding = ss.get("train_embedding", live_default)


def embedding_toggle() -> None:  # above the two halves when on; under the curves when off
    st.toggle("Show the last layer's embedding as it learns", key="train_embedding", value=live_default)


if show_embedding:
    embedding_toggle()
if not polling:
    after_panel(view)  # an ended run's next steps, above its charts: in view
if show_embedding:  # progress and accuracy beside the embedding: one projector screen
    curves_box, embedding_box = st.columns(2)
    with curves_box:
        watch(view, polling, watching, True)
    with embedding_box:
        st.fragment(run_every=crowded(1.5, crowd) if polling else None)(embedding_panel)(
            view, session.presenter, key=f"emb_{view}", live=polling, beside=True)
else:
    watch(view, polling, watching, False)
    embedding_toggle()
