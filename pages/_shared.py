"""UI glue shared by every page: this session's jobs and models, the process-wide training
slots, the runs folder, the session's data settings, and the watchdog that stops the jobs
of closed tabs. No ML logic lives here; it only wires `digits_core` into `st.session_state`.

Import it from a page as `from pages import _shared` (the app's folder is on sys.path).

Session-state keys owned here:
  "jobs"          dict[str, TrainingJob]  this session's jobs, oldest first
  "job_runs"      dict[str, Run]          the Run of each ended job, made once
  "loaded_runs"   dict[str, Run]          runs loaded from disk, keyed by folder name
  "selected_run"  str                     the model chosen in `pick_run`, across pages
  "data_config"   DataConfig              the data settings chosen on the Data page
  "experiment"    Experiment              the experiment the Train page edits (presets land here)
  "train_*"       widget keys of the Train page's form; cleared when an experiment is loaded
The pages keep a few more of their own: "current_job"/"job_view" (Train: the job shown),
"saved" (Train: job id -> saved folder), "preset_pick", "data_*" (Data), "runs_*" (Runs).
"""

from __future__ import annotations

import copy
import os
import time
from pathlib import Path

import numpy as np
import streamlit as st

from digits_core.config import ConvBlock, DataConfig, Experiment, ModelConfig
from digits_core.errors import ConfigError, RunError
from digits_core.jobs import DEFAULT_EVERY, DEFAULT_GRACE, SessionJobs, preflight
from digits_core.runs import Run, default_runs_dir, run_from_job
from digits_core.jobs import JobSlots, TrainingJob

NO_MODEL_MESSAGE = "Train a model on the Train page or load one on the Runs page first."


# ------------------------------------------------------------------ process-wide


@st.cache_resource
def slots() -> JobSlots:
    """The one JobSlots of this server process: at most $DIGITLAB_MAX_JOBS (2) train at once."""
    return JobSlots(max(1, int(os.environ.get("DIGITLAB_MAX_JOBS", "2"))))


def _session_alive(session_id: str) -> bool:
    from streamlit import runtime

    # No runtime (bare mode, or AppTest between runs): nobody to ask, so never stop a job.
    # A websocket closes -> the session leaves the active set at once (it may still be
    # resumable for server.disconnectedSessionTTL; SessionJobs' grace covers quick returns).
    if not runtime.exists():
        return True
    return bool(runtime.get_instance().is_active_session(session_id))


@st.cache_resource
def _watchdog() -> SessionJobs:
    """The registry of (session, job) pairs, swept by one daemon thread per process."""
    registry = SessionJobs(grace=float(os.environ.get("DIGITLAB_TAB_GRACE", DEFAULT_GRACE)))
    registry.watch(_session_alive, every=DEFAULT_EVERY)
    return registry


def runs_dir() -> Path:
    return default_runs_dir()


# ------------------------------------------------------------------ this session


def jobs() -> dict[str, TrainingJob]:
    """This session's training jobs, keyed by job id, in the order they were started."""
    return st.session_state.setdefault("jobs", {})


def start_job(experiment: Experiment) -> TrainingJob:
    """Start `experiment` in a background thread, owned by this session.

    Raises ConfigError if the experiment is invalid or would not fit in memory. The job is
    registered with the watchdog, so it stops by itself when this browser tab is closed.
    """
    preflight(experiment)
    job = TrainingJob(experiment, slots=slots())
    job.start()
    ctx = st.runtime.scriptrunner.get_script_run_ctx()
    if ctx is not None:
        _watchdog().register(ctx.session_id, job)
    jobs()[job.id] = job
    return job


def data_config() -> DataConfig:
    """The data settings chosen on the Data page (defaults until then)."""
    return st.session_state.setdefault("data_config", DataConfig())


def set_data_config(cfg: DataConfig) -> None:
    """Make `cfg` the session's data; the Train page's experiment follows it."""
    if cfg == data_config():
        return
    st.session_state["data_config"] = copy.deepcopy(cfg)
    exp = st.session_state.get("experiment")
    if exp is not None:
        exp.data = copy.deepcopy(cfg)


def experiment() -> Experiment:
    """The experiment the Train page edits: the last one loaded, or a small NumPy MLP."""
    if "experiment" not in st.session_state:
        st.session_state["experiment"] = Experiment(
            data=copy.deepcopy(data_config()), model=ModelConfig(), name="custom"
        )
    return st.session_state["experiment"]


def set_experiment(exp: Experiment) -> None:
    """Hand `exp` to the Train page (a preset, say): the form shows it, the data follows it.

    Clears the form's widget state so every widget starts again from `exp`.
    """
    st.session_state["experiment"] = copy.deepcopy(exp)
    st.session_state["data_config"] = copy.deepcopy(exp.data)
    for key in [k for k in st.session_state if str(k).startswith("train_")]:
        del st.session_state[key]


def loaded_runs() -> dict[str, Run]:
    """Runs loaded from disk on the Runs page, keyed by folder name."""
    return st.session_state.setdefault("loaded_runs", {})


def session_runs() -> dict[str, Run]:
    """Every model this session can evaluate: ended jobs with a model, then loaded runs.

    Jobs still training are left out: their weights change under any reader.
    """
    made: dict[str, Run] = st.session_state.setdefault("job_runs", {})
    out: dict[str, Run] = {}
    for key, job in jobs().items():
        if key not in made:
            if job.model is None or not job.done:
                continue
            try:
                made[key] = run_from_job(job)
            except RunError:
                continue
        out[key] = made[key]
    out.update(loaded_runs())
    return out


def run_label(key: str) -> str:
    """A one-line label for a key of `session_runs()`."""
    job = jobs().get(key)
    if job is not None:
        exp = job.experiment
        when = time.strftime("%H:%M:%S", time.localtime(job.created))
        acc = job.snapshot().final_test_acc
        tail = f" · {acc:.1%}" if acc is not None else ""
        return f"{exp.name or exp.model.family} · {exp.data.dataset} · trained {when}{tail}"
    run = loaded_runs().get(key)
    if run is not None:
        meta = run.meta
        name = meta.get("label") or run.experiment.name or run.experiment.model.family
        acc = meta.get("test_acc")
        tail = f" · {acc:.1%}" if isinstance(acc, (int, float)) else ""
        return f"{name} · {run.experiment.data.dataset} · saved {key}{tail}"
    return key


def pick_run(label: str = "Model", key: str = "pick_run") -> Run | None:
    """A selectbox over `session_runs()`; the choice is remembered across pages.

    Shows an info box and returns None when the session has no model yet.
    """
    runs = session_runs()
    if not runs:
        st.info(NO_MODEL_MESSAGE)
        return None
    keys = list(runs)
    chosen = st.session_state.get("selected_run")
    index = keys.index(chosen) if chosen in keys else len(keys) - 1
    choice = st.selectbox(label, keys, index=index, format_func=run_label, key=key)
    st.session_state["selected_run"] = choice
    return runs[choice]


# ------------------------------------------------------------------ form input and views


def digit_grid(mosaic: np.ndarray, image_shape: tuple[int, int], title: str = ""):
    """A Plotly figure of a class mosaic (images.class_mosaic): one labelled row per digit."""
    import plotly.express as px

    h = image_shape[0]
    fig = px.imshow(mosaic, color_continuous_scale="gray_r", aspect="equal", title=title or None)
    fig.update_layout(
        coloraxis_showscale=False, margin={"l": 30, "r": 0, "t": 30 if title else 0, "b": 0}
    )
    fig.update_xaxes(showticklabels=False)
    fig.update_yaxes(
        tickmode="array",
        tickvals=[h * k + (h - 1) / 2 for k in range(10)],
        ticktext=[str(k) for k in range(10)],
        title="label",
    )
    fig.update_traces(hovertemplate="%{z}<extra></extra>")
    return fig


__all__ = [
    "NO_MODEL_MESSAGE",
    "data_config",
    "digit_grid",
    "experiment",
    "jobs",
    "loaded_runs",
    "pick_run",
    "run_label",
    "runs_dir",
    "session_runs",
    "set_data_config",
    "set_experiment",
    "slots",
    "start_job",
]
