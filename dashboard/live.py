"""The live view of one run on the Train page: status, progress and Stop on one line, the
two curves side by side (it all fits a 1280x720 projector), the embedding as it forms, and,
once the run has ended, its name, Continue and a way to the analysis pages."""

from __future__ import annotations

import threading
import time

import streamlit as st

from digits_core.errors import DigitLabError
from digits_core.training.train import GUESS_LEVEL

from . import state
from .charts import accuracy_figure, loss_figure
from .frames import frame_figure, has_tsne, weights_picture
from .plain import plain
from .polling import crowded

POLL_S = 0.75  # seconds between two looks at a running job
QUEUED_POLL_S = 3.0  # ...at a queued one: only its place in line changes (a class queues many)
STARTING_POLL_S = 0.25  # ...at one loading or before its first step: the first point shows at once
REDRAW_S = 1.5  # a running run's charts are built again at most this often (its progress line every poll)


def pace(h) -> str:
    """How closely the Train page watches a run: 'queued', 'starting' or 'running'."""
    if h is None or h.status == "queued":
        return "queued"
    return "starting" if h.status == "loading" or (h.status == "running" and h.step == 0) else "running"


def poll_seconds(pace_name: str, crowd: int = 1) -> float:
    """Seconds between two looks at a run at `pace_name` (see `pace`) while `crowd` tabs
    watch runs on this server: every look is a script run the server pays for, so past
    `polling.CROWD` tabs each looks proportionally less often (`polling.crowded`), and the
    server keeps time for pages and training. A starting run is always looked at often:
    its first point is what the person waits for."""
    base = {"queued": QUEUED_POLL_S, "starting": STARTING_POLL_S}.get(pace_name, POLL_S)
    return base if pace_name == "starting" else crowded(base, crowd)


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def status_line(h, epochs: int, queue: tuple[int, float | None] | None = None) -> str:
    if h.status == "queued":
        if queue is not None:
            pos, wait = queue
            eta = f" · about {clock(wait)} to wait" if wait is not None else ""
            return f"**Queued** · number {pos} in line for a free training slot{eta}"
        return f"**Queued** · {h.message or 'waiting for a free training slot'}"
    if h.status == "loading":
        return "**Loading** the data and building the model…"
    if h.status == "stopping":
        return "**Stopping…**"
    if h.status == "running":
        return f"**Running** · epoch {max(h.epoch, 1)} of {epochs}"
    return h.message[:1].upper() + h.message[1:] if h.message else h.status


def live_panel(name: str, presenter: bool, *, beside: bool = False) -> None:
    """Everything the room watches for run `name` (drawn inside a polling fragment).
    `beside`: the embedding takes the other half of the screen, so the accuracy comes first
    and the loss under it."""
    runner = state.runner()
    h = runner.history(name)
    if h is None:
        st.info("This run is gone.")
        return
    job = runner.job(name)
    epochs = job.experiment.train.epochs if job is not None else max(len(h.epochs), 1)
    line = status_line(h, epochs, runner.queue_position(name) if h.status == "queued" else None)
    if h.active:
        left, right = st.columns([3, 1] if beside else [5, 1])
        text = f"{line} · step {h.step:,} of {h.total_steps:,} · {h.progress:.0%} · ETA {clock(h.eta)}"
        left.progress(min(h.progress, 1.0), text=text if h.total_steps else line)
        right.button("Stop", key=f"stop_{name}", on_click=runner.stop, args=(name,),
                     icon=":material/stop:", disabled=h.status == "stopping", width="stretch")
    elif h.status == "finished":
        guess = h.final_test_acc is not None and h.final_test_acc < GUESS_LEVEL  # its message says so
        st.warning(line) if guess else st.success(line)
    elif h.status in ("stopped", "interrupted"):
        st.info(line)
    else:
        st.warning(plain(line)) if h.status == "diverged" else st.error(f"Training failed: {plain(line)}")
    if h.warning:
        st.warning(plain(h.warning))
    full = h.newest_test_acc
    live = next((a for a in reversed(h.probe_test_acc) if a is not None), None)
    if live is not None and (h.active or full is None):  # the live subset's newest, said as such
        said = f"live test accuracy **{live:.2%}** (a subset of the test set)"
    elif full is not None:
        said = f"test accuracy **{full:.2%}**"
    else:
        said = "test accuracy —"
    facts = [said,
             f"{h.images_per_s:,.0f} images/s", f"elapsed {clock(h.elapsed)}"]
    if beside:  # half a screen: one line (the progress bar has the time)
        said = said.replace("live test accuracy", "test").replace("(a subset of the test set)", "(live subset)")
        facts = [said, f"{h.images_per_s:,.0f} images/s"]
    st.markdown(" · ".join(facts))
    height = (180 if presenter else 260) if beside else (250 if presenter else 290)  # presenter: +60
    loss, accuracy = curves(name, h, presenter, height)
    if beside:
        st.plotly_chart(accuracy, key=f"acc_{name}")
        st.plotly_chart(loss, key=f"loss_{name}")
        return
    left, right = st.columns(2)
    left.plotly_chart(loss, key=f"loss_{name}")
    right.plotly_chart(accuracy, key=f"acc_{name}")


_curves_lock = threading.Lock()
_curves: dict[tuple, tuple] = {}  # (run, presenter, height) -> (history version, loss, accuracy)
KEEP_CURVES = 64  # runs whose last figures are kept


def curves(name: str, h, presenter: bool, height: int, now: float | None = None):
    """The run's loss and accuracy figures, built again only when its history has changed:
    building a Plotly figure takes tens of milliseconds, and every tab watching a run polls
    (a queued run, or one between two steps, is drawn from the last figures).

    While it runs, at most every REDRAW_S seconds (`now`: time.monotonic()): the same figure
    is the same chart to the browser, which then skips Plotly's redraw, the largest part of
    what a poll costs it, and the CPU it takes from training on the same machine. Every point
    is kept in the history and drawn at the next redraw; the first step's and any change
    of status (the run's end: its curves to the last step) are drawn at once."""
    now = time.monotonic() if now is None else now
    version = (h.step, h.start_loss, len(h.probe_steps), len(h.epochs), tuple(h.test_acc[-1:]), h.status,
               h.final_test_acc)
    key = (name, presenter, height)
    hit = _curves.get(key)
    young = hit is not None and h.status == "running" == hit[0][5] and hit[0][0] > 0 and now - hit[3] < REDRAW_S
    if hit is None or (hit[0] != version and not young):
        hit = (version, loss_figure(h, presenter, height), accuracy_figure(h, presenter, height), now)
        with _curves_lock:
            _curves[key] = hit
            while len(_curves) > KEEP_CURVES:
                _curves.pop(next(iter(_curves)))
    return hit[1], hit[2]


def embedding_panel(name: str, presenter: bool, *, key: str, live: bool, beside: bool = False) -> None:
    """The run's embedding frames: the newest while it trains; after, a step slider and a
    movie of them all (its Play buttons replay how the clusters formed)."""
    frames = state.runner().frames(name)
    if frames is None or len(frames["steps"]) == 0:
        st.caption("No embedding frames yet.")
        return
    n = len(frames["steps"])
    method = "t-SNE" if has_tsne(frames) else "PCA"
    k = n - 1
    if not live and n > 1:
        k = st.select_slider("Frame (step)", list(range(n)), value=n - 1, key=f"{key}_frame",
                             format_func=lambda i: f"{int(frames['steps'][i]):,}")
    # beside the curves (the Train page): the weights under the map, as wide as it
    left, right = (st.container(), st.container()) if beside else st.columns([3, 2])
    height = (320 if presenter else 420) if beside else 460
    left.plotly_chart(frame_figure(frames, k, method=method, presenter=presenter, movie=not live,
                                   height=height), key=f"{key}_fig")
    info = next((i for i in state.all_runs() if i.name == name), None)
    shape = tuple(info.meta.get("image_shape") or ()) if info is not None else ()
    if len(shape) == 2:
        right.image(weights_picture(frames, k, shape), caption="first-layer weights at this frame "
                    "(red pushes a unit up, blue down)", output_format="PNG", width="stretch")


def after_panel(name: str) -> None:
    """Name the run, continue it, or take it to the analysis pages."""
    info = next((i for i in state.all_runs() if i.name == name), None)
    if info is None or not info.ok:
        return
    c1, c2, c3 = st.columns([2, 2, 2])
    key = f"rename_{name}"

    def rename() -> None:  # a callback: the sidebar, drawn before this panel, shows the new name
        label = st.session_state[key].strip()
        if label and label != info.label:
            try:
                state.runner().rename(name, label, by=state.changed_by())
            except (DigitLabError, OSError) as e:
                st.session_state[f"{key}_error"] = str(e)

    c1.text_input("Run name", info.label, key=key, max_chars=60, on_change=rename)
    if f"{key}_error" in st.session_state:
        c1.error(plain(st.session_state.pop(f"{key}_error")))
    if info.status == "diverged":  # more epochs from broken weights would blow up again
        c2.caption(f"{state.NOT_CONTINUED} (the settings above).")
        more = None
    else:
        more = c2.number_input("More epochs", 1, 1000, 1, key=f"more_{name}")
    if more is not None and c2.button("Continue training", key=f"continue_{name}", icon=":material/play_arrow:"):
        try:
            state.runner().continue_run(name, int(more), owner=state.owner())
            st.session_state["train_view"] = name
            st.rerun()
        except DigitLabError as e:
            st.error(plain(e))
    for what, label, page, icon in (("evaluate", "Evaluate it", "pages/4_Evaluate.py", ":material/fact_check:"),
                                    ("draw", "Draw with it", "pages/6_Draw.py", ":material/draw:")):
        if c3.button(label, key=f"to_{what}_{name}", icon=icon, type="tertiary"):
            state.session().chosen_run = name  # the analysis pages open on this run
            st.switch_page(page)


__all__ = ["POLL_S", "QUEUED_POLL_S", "REDRAW_S", "STARTING_POLL_S", "after_panel", "curves", "embedding_panel", "live_panel", "pace", "poll_seconds", "status_line"]
