"""The Train page's form: a view of the experiment being edited.

Every widget starts from the experiment's value and carries the session's
`form_version` in its key, so replacing the experiment (a preset, a run's settings)
re-seeds every widget at once. `experiment_form` returns the experiment the widgets now
describe (or an error line); the page stores it back as the one source of truth.
"""

from __future__ import annotations

import copy
import dataclasses

import streamlit as st

from digits_core.config import (
    ACTIVATIONS,
    FAMILIES,
    FAMILY,
    INITS,
    LOSSES,
    MAX_BATCH,
    MAX_CHANNELS,
    MAX_EPOCHS,
    MAX_L2,
    MAX_SMOOTHING,
    OPTIMIZERS,
    SCHEDULES,
    SMOOTHING_UNTIL,
    Experiment,
    ModelConfig,
    TrainConfig,
    conv_blocks,
    conv_rows,
    parse_widths,
)
from digits_core.errors import ConfigError
from digits_core.presets import default_cnn_model

FAMILY_NAMES = {
    "numpy-mlp": "NumPy MLP (from scratch)",
    "torch-mlp": "PyTorch MLP",
    "cnn": "PyTorch CNN",
}
SCHEDULE_NAMES = {"constant": "constant", "onecycle": "one-cycle (warm up, cosine down)"}
LEARNING_RATES = [1e-6, 1e-5, 3e-5, 5e-5, 1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 0.5, 1.0]
WEIGHT_AVERAGE = 0.98  # the decay the checkbox turns on, as the default CNN has it
AVERAGE_STEPS = round(1 / (1 - WEIGHT_AVERAGE))
EXTRA_FIELDS = ("sampling", "steps_per_epoch", "loss_reduction", "stop_at_loss", "momentum", "warmup", "augment_pen")


def experiment_form(exp: Experiment, version: int,
                    fixed: frozenset[str] = frozenset()) -> tuple[Experiment, str | None]:
    """Draw the model and training widgets for `exp`; return (edited experiment, error).
    `fixed`: controls (`links.CONTROLS` names, the widgets' own) shown read-only."""
    k = lambda name: f"train_{name}_v{version}"
    off = fixed.__contains__
    m, t = exp.model, exp.train
    error = None

    st.subheader("Model")
    family = st.radio("Model family", FAMILIES, index=FAMILIES.index(m.family),
                      format_func=FAMILY_NAMES.get, horizontal=True, key=k("family"), disabled=off("family"))
    c1, c2, c3 = st.columns(3)
    hidden_text = c1.text_input("Hidden layer widths", ", ".join(map(str, m.hidden)), key=k("hidden"), disabled=off("hidden"),
                                help="Comma-separated, e.g. '128, 64'; empty means no hidden layer.")
    activation = c1.selectbox("Activation", ACTIVATIONS, ACTIVATIONS.index(m.activation),
                              key=k("activation"), disabled=off("activation"))
    init = c2.selectbox("Weight initialisation", INITS, INITS.index(m.init), key=k("init"), disabled=off("init"))
    dropout = c2.slider("Dropout", 0.0, 0.9, float(m.dropout), 0.05, key=k("dropout"), disabled=off("dropout"))
    bias = c3.checkbox("Biases in dense layers", m.bias, key=k("bias"), disabled=off("bias"))
    kind = FAMILY[family]
    conv, pool_first = [], m.pool_first
    if kind.conv:
        conv = conv_editor(m.conv or default_cnn_model().conv, k("conv"), disabled=off("conv"))
        pool_first = st.checkbox("Max-pool straight after each convolution (before BatchNorm and the "
                                 "activation: a quarter of the work)", m.pool_first, key=k("pool_first"), disabled=off("pool_first"))

    st.subheader("Training")
    c1, c2, c3, c4 = st.columns(4)
    loss = c1.selectbox("Loss", LOSSES, LOSSES.index(t.loss), key=k("loss"), disabled=off("loss"))
    optimizer = c1.selectbox("Optimiser", OPTIMIZERS, OPTIMIZERS.index(t.optimizer), key=k("optimizer"), disabled=off("optimizer"))
    lr = c2.select_slider("Learning rate", sorted({*LEARNING_RATES, t.lr}), t.lr,
                          format_func=lambda v: f"{v:g}", key=k("lr"), disabled=off("lr"))
    schedule = c2.radio("Learning-rate schedule", SCHEDULES, SCHEDULES.index(t.lr_schedule),
                        format_func=SCHEDULE_NAMES.get, key=k("schedule"), disabled=off("schedule"))
    average = c2.checkbox(
        "Average weights", bool(t.weight_average) and kind.torch, key=k("average"),
        disabled=not kind.torch or off("average"),
        help=f"The model is a moving average of the weights over the last ~{AVERAGE_STEPS} steps "
        "(Polyak averaging): steadier, and usually more accurate, while the learning rate is "
        "high. PyTorch models only.")
    # No bounds on the widgets: a number out of range is kept there and shown in red, and Start
    # would quietly train the last valid one; unbounded, it reaches the config's checks,
    # which say what is allowed and keep Start off.
    batch_size = c3.number_input("Batch size", value=int(t.batch_size), step=1, key=k("batch"), disabled=off("batch"),
                                 help=f"Images per step, 1 to {MAX_BATCH:,}.")
    epochs = c3.number_input("Epochs", value=int(t.epochs), step=1, key=k("epochs"), disabled=off("epochs"),
                             help=f"Passes over the training set, 1 to {MAX_EPOCHS:,}.")
    l2 = c4.number_input("L2 penalty", value=float(t.l2), step=1e-4, format="%g", key=k("l2"), disabled=off("l2"),
                         help=f"Weight decay, 0 to {MAX_L2:g}.")
    smooths = kind.torch and loss == "cross-entropy"  # what label smoothing applies to
    smoothing = c4.number_input(
        "Label smoothing", value=float(t.label_smoothing) if smooths else 0.0, step=0.05,
        format="%g", key=k("smoothing"), disabled=not smooths or off("smoothing"),
        help=f"Targets of 1 - s on the right digit and s spread over all ten, fading to hard "
        f"targets by {SMOOTHING_UNTIL:.0%} of the run: a regulariser early, and the final model "
        f"is still sure of what it reads. 0 to {MAX_SMOOTHING:g}; PyTorch models, cross-entropy.")
    seed = c4.number_input("Seed", value=int(t.seed), step=1, key=k("seed"), disabled=off("seed"))
    augment = c4.checkbox("Augment", t.augment, key=k("augment"), disabled=off("augment"),
                          help="Small turns, slants, shifts, bends and redrawn pen strokes per "
                          "batch: what hand drawings look like.")
    live = c3.checkbox("Live t-SNE", t.live_embedding, key=k("live"), disabled=off("live"),
                       help="Re-embeds the last layer of 500 test points as it trains (the S4 "
                       "system's view); costs up to 9 % of training speed.")
    extra = {f: getattr(t, f) for f in EXTRA_FIELDS if getattr(t, f) != getattr(TrainConfig(), f)}
    if extra:
        st.caption("Also from the preset: " + ", ".join(f"{f} = {v}" for f, v in extra.items()))

    try:
        hidden = parse_widths(hidden_text)
    except ConfigError as e:
        error, hidden = str(e), m.hidden
    new = Experiment(
        data=copy.deepcopy(exp.data),
        model=ModelConfig(family=family, hidden=hidden, activation=activation, bias=bias, init=init,
                          dropout=float(dropout), conv=conv, channels_last=m.channels_last,
                          pool_first=pool_first),
        train=dataclasses.replace(
            t, loss=loss, optimizer=optimizer, lr=float(lr), lr_schedule=schedule,
            batch_size=int(batch_size), epochs=int(epochs), l2=float(l2), seed=int(seed),
            augment=augment, live_embedding=live,
            weight_average=(t.weight_average or WEIGHT_AVERAGE) if average and kind.torch else 0.0,
            label_smoothing=float(smoothing) if smooths else 0.0,
        ),
        name=exp.name,
    )
    return new, error


def conv_editor(blocks, key: str, disabled: bool = False):
    """The conv-block table (add or delete rows) -> ConvBlocks.

    A data editor keeps its edits relative to the rows it was first given, so those rows
    stay fixed while the editor lives; a fresh editor (a new form version, or the page
    drawn again after a visit elsewhere) starts from the current `blocks`.
    """
    st.caption("Convolution blocks, in order (add or delete rows):")
    if key not in st.session_state:
        st.session_state[f"{key}_base"] = conv_rows(blocks)
    number = st.column_config.NumberColumn
    rows = st.data_editor(
        st.session_state[f"{key}_base"], key=key, num_rows="fixed" if disabled else "dynamic",
        disabled=disabled,
        column_config={
            "channels": number("channels", min_value=1, max_value=MAX_CHANNELS, step=1, default=32),
            "kernel": number("kernel", min_value=1, max_value=9, step=1, default=3),
            "padding": number("padding", min_value=0, max_value=9, step=1, default=1),
            "batchnorm": st.column_config.CheckboxColumn("BatchNorm", default=True),
            "pool": number("max-pool", min_value=1, max_value=4, step=1, default=2),
            "dropout": number("dropout", min_value=0.0, max_value=0.9, step=0.05, default=0.0),
        },
    )
    return conv_blocks(rows)


__all__ = ["FAMILY_NAMES", "conv_editor", "experiment_form"]
