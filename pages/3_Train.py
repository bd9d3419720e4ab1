"""Train: set up a model and its training, start it, and watch it learn live.

The job trains in a background thread (digits_core.train.TrainingJob) and lives in this
session's state, so it keeps going across clicks and page switches; a fragment polls it.
"""

import copy
import dataclasses
import time

import plotly.graph_objects as go
import streamlit as st

from digits_core.config import (
    ACTIVATIONS,
    INITS,
    LOSSES,
    OPTIMIZERS,
    Experiment,
    ModelConfig,
    TrainConfig,
    conv_blocks,
    conv_rows,
    parse_widths,
)
from digits_core.errors import ConfigError, RunError
from digits_core.jobs import preflight
from digits_core.mnist import mnist_available
from digits_core.presets import ALL, default_cnn_model, get_preset
from digits_core.runs import save_run
from pages import _shared

FAMILIES = {
    "numpy-mlp": "NumPy MLP (from scratch)",
    "torch-mlp": "PyTorch MLP",
    "cnn": "PyTorch CNN",
}
LEARNING_RATES = [1e-5, 3e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0]
MAX_CHART_POINTS = 2000
ss = st.session_state

st.title("Train")


def load_preset() -> None:
    name = ss.get("preset_pick")
    if name in ALL:
        _shared.set_experiment(get_preset(name).build())
    ss["preset_pick"] = None


st.selectbox(
    "Fill everything from a preset",
    list(ALL),
    index=None,
    key="preset_pick",
    placeholder="Choose a preset…",
    on_change=load_preset,
    format_func=lambda name: ALL[name].title,
)
exp = _shared.experiment()
base_name = exp.name.removesuffix(" (edited)")

data = exp.data
st.caption(
    f"Data: **{data.dataset}**, {data.split} split, "
    f"{'all' if data.train_size is None else f'{data.train_size:,}'} training images, "
    f"{data.normalization} pixels, seed {data.seed}."
)
st.page_link("pages/2_Data.py", label="Change the data on the Data page", icon=":material/dataset:")

# ------------------------------------------------------------------ model
st.subheader("Model")
m = exp.model
family = st.radio(
    "Model family",
    list(FAMILIES),
    index=list(FAMILIES).index(m.family),
    format_func=FAMILIES.get,
    horizontal=True,
    key="train_family",
)
c1, c2, c3 = st.columns(3)
hidden_text = c1.text_input(
    "Hidden layer widths",
    ", ".join(map(str, m.hidden)),
    key="train_hidden",
    help="Comma-separated, e.g. '128, 64'; empty means no hidden layer.",
)
activation = c1.selectbox(
    "Activation", ACTIVATIONS, ACTIVATIONS.index(m.activation), key="train_activation"
)
init = c2.selectbox("Weight initialisation", INITS, INITS.index(m.init), key="train_init")
dropout = c2.slider("Dropout", 0.0, 0.9, float(m.dropout), 0.05, key="train_dropout")
bias = c3.checkbox("Biases in dense layers", m.bias, key="train_bias")

conv = []
if family == "cnn":
    if "train_conv_blocks" not in ss:
        ss["train_conv_blocks"] = m.conv or default_cnn_model().conv
    if "train_conv_editor" not in ss:  # a fresh editor starts from the durable blocks
        ss["train_conv_base"] = conv_rows(ss["train_conv_blocks"])
    st.caption("Convolution blocks, in order (add or delete rows):")
    rows = st.data_editor(
        ss["train_conv_base"],
        key="train_conv_editor",
        num_rows="dynamic",
        column_config={
            "channels": st.column_config.NumberColumn(
                "channels", min_value=1, max_value=256, step=1, default=32
            ),
            "kernel": st.column_config.NumberColumn(
                "kernel", min_value=1, max_value=9, step=1, default=3
            ),
            "padding": st.column_config.NumberColumn(
                "padding", min_value=0, max_value=9, step=1, default=1
            ),
            "batchnorm": st.column_config.CheckboxColumn("BatchNorm", default=True),
            "pool": st.column_config.NumberColumn(
                "max-pool", min_value=1, max_value=4, step=1, default=2
            ),
            "dropout": st.column_config.NumberColumn(
                "dropout", min_value=0.0, max_value=0.9, step=0.05, default=0.0
            ),
        },
    )
    conv = ss["train_conv_blocks"] = conv_blocks(rows)

# ------------------------------------------------------------------ training
st.subheader("Training")
t = exp.train
c1, c2, c3, c4 = st.columns(4)
loss = c1.selectbox("Loss", LOSSES, LOSSES.index(t.loss), key="train_loss")
optimizer = c1.selectbox(
    "Optimiser", OPTIMIZERS, OPTIMIZERS.index(t.optimizer), key="train_optimizer"
)
lr = c2.select_slider(
    "Learning rate",
    sorted({*LEARNING_RATES, t.lr}),
    t.lr,
    format_func=lambda v: f"{v:g}",
    key="train_lr",
)
schedule = c2.radio(
    "Learning-rate schedule",
    ["constant", "onecycle"],
    ["constant", "onecycle"].index(t.lr_schedule),
    format_func={"constant": "constant", "onecycle": "one-cycle (warm up, cosine down)"}.get,
    key="train_schedule",
)
batch_size = c3.number_input("Batch size", 1, 8192, int(t.batch_size), key="train_batch")
epochs = c3.number_input("Epochs", 1, 1000, int(t.epochs), key="train_epochs")
l2 = c4.number_input("L2 penalty", 0.0, 1.0, float(t.l2), 1e-4, format="%g", key="train_l2")
seed = c4.number_input("Seed", 0, 2**31 - 1, int(t.seed), key="train_seed")
augment = c4.checkbox(
    "Augment (small shifts, turns, stroke widths)", t.augment, key="train_augment"
)

extra = {
    k: getattr(t, k)
    for k in ("sampling", "steps_per_epoch", "loss_reduction", "stop_at_loss", "momentum")
    if getattr(t, k) != getattr(TrainConfig(), k)
}
if extra:
    st.caption("Also from the preset: " + ", ".join(f"{k} = {v}" for k, v in extra.items()))

# ------------------------------------------------------------------ the experiment
error = None
try:
    hidden = parse_widths(hidden_text)
except ConfigError as e:
    error, hidden = str(e), m.hidden
new = Experiment(
    data=copy.deepcopy(exp.data),
    model=ModelConfig(
        family=family,
        hidden=hidden,
        activation=activation,
        bias=bias,
        init=init,
        dropout=float(dropout),
        conv=conv,
        channels_last=m.channels_last,
    ),
    train=dataclasses.replace(
        t,
        loss=loss,
        optimizer=optimizer,
        lr=float(lr),
        lr_schedule=schedule,
        batch_size=int(batch_size),
        epochs=int(epochs),
        l2=float(l2),
        seed=int(seed),
        augment=augment,
    ),
    name=base_name,
)
if base_name in ALL and new != get_preset(base_name).build():
    new.name = f"{base_name} (edited)"
ss["experiment"] = new

n_params = None
if error is None:
    try:
        n_params = preflight(new)
    except ConfigError as e:
        error = str(e)
if error is None and new.data.dataset == "mnist":
    ok, message = mnist_available(new.data.mnist_dir)
    if not ok:
        error = f"MNIST is not on this machine yet: get it on the Data page. ({message})"

c1, c2 = st.columns([1, 3])
c1.metric("Parameters", "—" if n_params is None else f"{n_params:,}")
if error:
    c2.error(error)
else:
    c2.caption(
        f"Experiment **{new.name or 'custom'}** is ready; training runs in the background, "
        "so you may switch pages while it runs."
    )


def start(experiment: Experiment) -> None:
    try:
        job = _shared.start_job(copy.deepcopy(experiment))
    except ConfigError as e:
        ss["start_error"] = str(e)
        return
    ss["current_job"] = ss["job_view"] = job.id


st.button(
    "Start training", type="primary", key="start", on_click=start, args=(new,), disabled=bool(error)
)
if "start_error" in ss:
    st.error(ss.pop("start_error"))

# ------------------------------------------------------------------ live view
jobs = _shared.jobs()
if not jobs:
    st.info("Nothing trained in this session yet: press **Start training**.")
    st.stop()

st.divider()
ids = list(reversed(jobs))
if ss.get("job_view") not in ids:
    ss["job_view"] = ss.get("current_job") if ss.get("current_job") in ids else ids[0]


def job_label(job_id: str) -> str:
    job = jobs[job_id]
    when = time.strftime("%H:%M:%S", time.localtime(job.created))
    exp = job.experiment
    return f"{exp.name or exp.model.family} · {exp.data.dataset} · started {when}"


view = st.selectbox("Job", ids, format_func=job_label, key="job_view")
ss["current_job"] = view


def save(job_id: str) -> None:
    try:
        ss.setdefault("saved", {})[job_id] = str(save_run(jobs[job_id], _shared.runs_dir()))
    except (RunError, OSError) as e:
        ss["save_error"] = str(e)


def clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{int(seconds // 60)}:{int(seconds % 60):02d}"


def live(job_id: str, polling: bool) -> None:
    job = jobs[job_id]
    h = job.snapshot()
    epochs = job.experiment.train.epochs
    if h.status == "queued":
        st.info(f"Queued: {h.message or 'waiting for a free training slot'}.")
    elif h.status == "loading":
        st.info("Loading the data and building the model…")
    elif h.status == "running":
        st.write(f"**Running** · epoch {max(h.epoch, 1)} of {epochs}")
    elif h.status == "finished":
        st.success(f"{h.message[:1].upper()}{h.message[1:]}.")
    elif h.status == "stopped":
        st.info(f"{h.message[:1].upper()}{h.message[1:]}.")
    elif h.status == "diverged":
        st.warning(h.message)
    else:
        st.error(f"Training failed: {h.message}")

    if h.active:
        st.progress(
            h.progress,
            text=f"step {h.step:,} of {h.total_steps:,} · {h.progress:.0%} · ETA {clock(h.eta)}",
        )
        st.button("Stop", key="stop_job", on_click=job.stop, icon=":material/stop:")
    c1, c2, c3 = st.columns(3)
    if not h.active and h.final_test_acc is not None:
        c1.metric("Test accuracy", f"{h.final_test_acc:.2%}")
    else:
        last = next((a for a in reversed(h.test_acc) if a is not None), None)
        c1.metric("Test accuracy", "—" if last is None else f"{last:.2%}", "so far", delta_color="off", delta_arrow="off")
    c2.metric("Images/s", f"{h.images_per_s:,.0f}")
    c3.metric("Elapsed", clock(h.elapsed))

    left, right = st.columns(2)
    stride = max(1, -(-len(h.steps) // MAX_CHART_POINTS))  # ceil: at most MAX_CHART_POINTS points
    loss_fig = go.Figure(
        go.Scatter(x=h.steps[::stride], y=h.loss[::stride], mode="lines", name="loss")
    )
    loss_fig.update_layout(
        title="Training loss per step",
        xaxis_title="step",
        yaxis_title="loss",
        height=320,
        margin={"t": 40},
    )
    left.plotly_chart(loss_fig, key="loss_chart")
    acc_fig = go.Figure(
        [
            go.Scatter(x=h.epochs, y=h.train_acc, mode="lines+markers", name="train"),
            go.Scatter(x=h.epochs, y=h.test_acc, mode="lines+markers", name="test"),
        ]
    )
    acc_fig.update_layout(
        title="Accuracy per epoch",
        xaxis={"title": "epoch", "tickformat": "d"},
        yaxis={"title": "accuracy", "tickformat": ".0%"},
        height=320,
        margin={"t": 40},
    )
    right.plotly_chart(acc_fig, key="acc_chart")

    if not h.active and job.model is not None:
        saved = ss.get("saved", {}).get(job_id)
        if saved:
            st.success(f"Saved to `{saved}`; it is listed on the Runs page.")
        else:
            st.button(
                "Save run", key="save_run", on_click=save, args=(job_id,), icon=":material/save:"
            )
        if "save_error" in ss:
            st.error(ss.pop("save_error"))
    with st.expander("This job's settings"):
        st.json(job.experiment.to_dict(), expanded=False)
    if polling and not h.active:
        st.rerun()  # the whole page: stops this polling and refreshes the sidebar


polling = not jobs[view].done
st.fragment(run_every=0.75 if polling else None, key="live_job")(live)(view, polling)
