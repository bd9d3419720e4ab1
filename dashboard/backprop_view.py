"""The Backprop page's Streamlit glue: the stepper kept in the session, its controls, and the
figures of one step (heat maps of every matrix, the chain rule for one weight, both checks).

The numbers all come from `digits_core.analysis.backprop` (and its `gradcheck`); this module
only lays them out. Plotly heat maps give the exact value of every cell on hover; a
blue-white-red scale is centred on 0 (white, red above, blue below), probabilities go from
white (0) to blue (1).
"""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard.charts import style
from digits_core.analysis.backprop import (
    ACTIVATIONS,
    MAX_BATCH,
    MAX_HIDDEN,
    OPTIMIZERS,
    StepConfig,
    Stepper,
    StepTrace,
    chain_rule,
    strongest_weight,
)
from digits_core.errors import DigitLabError
from digits_core.images.pictures import display_image

KEY = "bp_stepper"  # the Stepper of this session
RUN_EVERY = 1.0  # seconds between two steps while running
DEFAULT_LR = {"sgd": 0.5, "momentum": 0.1, "adam": 0.03}
MAX_LR = 10.0
LOSS_LABELS = {"cross-entropy": "cross-entropy", "mse-softmax": "squared error (on softmax)"}
OPT_LABELS = {"sgd": "SGD", "momentum": "SGD + momentum 0.9", "adam": "Adam"}
VIEWS = ["Forward", "Backward", "Update", "One image"]
DIVERGING = "RdBu_r"  # blue below 0, white at 0, red above
ss = st.session_state


# ------------------------------------------------------------------ state and controls


def stepper() -> Stepper:
    """This session's stepper (the default 64-16-10 network the first time)."""
    if KEY not in ss:
        start_over(StepConfig())
    return ss[KEY]


def start_over(cfg: StepConfig) -> None:
    ss[KEY] = Stepper(cfg)
    ss["bp_lr"] = DEFAULT_LR[cfg.optimizer]
    ss["bp_running"] = False
    ss["bp_error"] = None
    for k in ("bp_n", "bp_i", "bp_j", "bp_layer", "bp_auto"):
        ss.pop(k, None)


def running() -> bool:
    return bool(ss.get("bp_running"))


def take_steps(n: int) -> None:
    """`n` steps at the rate and break-it switch shown; a refused step pauses and says why."""
    try:
        stepper().steps_many(n, float(ss.get("bp_lr", 0.1)), broken=bool(ss.get("bp_broken")))
        ss["bp_error"] = None
    except DigitLabError as e:
        ss["bp_error"], ss["bp_running"] = str(e), False


def set_running(on: bool) -> None:
    """Run or Pause. Says which, not "the other one": a click that reaches the server twice
    (a fragment rerun interrupted by it) must not undo itself."""
    ss["bp_running"] = on


def settings() -> None:
    """The network and how it learns; 'Start over' builds it afresh."""
    cfg = stepper().config
    with st.expander(f"Network: 64-{'-'.join(map(str, cfg.hidden))}-10, {cfg.activation}, "
                     f"{LOSS_LABELS[cfg.loss]}, {OPT_LABELS[cfg.optimizer]}, {cfg.batch_size} images "
                     "a step"), st.form("bp_settings", border=False):
        a, b, c = st.columns(3)
        h1 = a.number_input("Hidden units", 2, MAX_HIDDEN, cfg.hidden[0])
        h2 = a.number_input("Second hidden layer (0 = none)", 0, MAX_HIDDEN,
                            cfg.hidden[1] if len(cfg.hidden) > 1 else 0)
        act = b.radio("Activation", ACTIVATIONS, index=ACTIVATIONS.index(cfg.activation), horizontal=True)
        loss = b.radio("Loss", list(LOSS_LABELS), format_func=LOSS_LABELS.get,
                       index=list(LOSS_LABELS).index(cfg.loss), horizontal=True)
        opt = c.radio("Optimiser", OPTIMIZERS, format_func=OPT_LABELS.get,
                      index=OPTIMIZERS.index(cfg.optimizer), horizontal=True)
        batch = c.number_input("Images per step", 1, MAX_BATCH, cfg.batch_size)
        seed = a.number_input("Seed (weights and image order)", 0, 10_000, cfg.seed)
        if st.form_submit_button("Start over with this network"):
            hidden = (int(h1),) + ((int(h2),) if h2 else ())
            start_over(StepConfig(hidden=hidden, activation=act, loss=loss, optimizer=opt,
                                  batch_size=int(batch), seed=int(seed)))
            st.rerun()


def controls() -> None:
    """Step, Step x10, Run/Pause, the learning rate and the break-it switch."""
    busy = running()
    ss.setdefault("bp_lr", DEFAULT_LR[stepper().config.optimizer])
    # a long line of the chain rule scrolls sideways on a narrow screen instead of being cut off
    st.html("<style>.st-key-bp_chain .katex-display { overflow-x: auto; overflow-y: hidden; }</style>")
    cols = st.columns([1, 1, 1, 1.6, 1.6], vertical_alignment="bottom")
    cols[0].button("Step", key="bp_step", on_click=take_steps, args=(1,), disabled=busy,
                   type="primary", help="One mini-batch: forward, backward, update.")
    cols[1].button("Step x10", key="bp_step10", on_click=take_steps, args=(10,), disabled=busy)
    cols[2].button("Pause" if busy else "Run", key="bp_run", on_click=set_running, args=(not busy,),
                   help=f"A step every {RUN_EVERY:g} s until paused.")
    cols[3].number_input("Learning rate", min_value=1e-4, max_value=MAX_LR, step=0.01, format="%.4f",
                         key="bp_lr", help="Used by the next step; change it between steps.")
    cols[4].toggle("Break it", key="bp_broken",
                   help="From the next step, the backward pass forgets the activation's derivative "
                   "f'(z): watch both checks catch it.")


# ------------------------------------------------------------------ figures


Axis = tuple[list[str], str]  # a heat map side: its labels and its title


def heatmap(values, *, title: str, rows: Axis, cols: Axis, name: str, presenter: bool,
            probs: bool = False, numbers: bool = False, height: int | None = None) -> go.Figure:
    """A labelled heat map of `values` (R, C) whose hover gives each cell's exact value."""
    values = np.atleast_2d(np.asarray(values, float))
    (row_labels, row_title), (col_labels, col_title) = rows, cols
    size = 16 if presenter else 11
    fig = go.Figure(go.Heatmap(
        z=values, x=col_labels, y=row_labels, xgap=1, ygap=1,
        colorscale="Blues" if probs else DIVERGING, zmin=0 if probs else None, zmax=1 if probs else None,
        zmid=None if probs else 0,
        colorbar={"title": {"text": "0 = white", "side": "top",
                            "font": {"size": size}},
                  "tickfont": {"size": size}, "thickness": 12},
        text=np.vectorize(lambda v: f"{v:.2f}")(values) if numbers else None,
        texttemplate="%{text}" if numbers else None, textfont={"size": size},
        hovertemplate=f"{row_title} %{{y}}<br>{col_title} %{{x}}<br>{name} = %{{z:.10g}}<extra></extra>",
    ))
    rows_px = (28 if presenter else 22) if len(row_labels) <= 20 else (10 if presenter else 8)
    style(fig, title, presenter, height or max(210, 110 + rows_px * len(row_labels)))
    fig.update_yaxes(type="category", autorange="reversed", title=row_title)
    fig.update_xaxes(type="category", title=col_title, tickangle=0)
    return fig.update_layout(margin={"t": 50, "l": 10, "r": 10, "b": 10})


def _images(trace: StepTrace) -> Axis:
    return [f"{k} (a {int(y)})" for k, y in enumerate(trace.y)], "image"


def _numbered(n: int, title: str) -> Axis:
    return [str(j) for j in range(n)], title


def _inputs(li: int, n: int) -> Axis:
    return _numbered(n, "pixel (8 row + col)" if li == 0 else f"unit of layer {li}")


def _outputs(trace: StepTrace, li: int, n: int) -> Axis:
    return _numbered(n, "digit" if li == len(trace.layers) - 1 else f"unit of layer {li + 1}")


def loss_figure(losses: list[float], presenter: bool) -> go.Figure:
    fig = go.Figure(go.Scatter(x=list(range(1, len(losses) + 1)), y=list(losses), mode="lines+markers",
                               marker={"size": 5}, line={"color": "#0072B2"},
                               hovertemplate="step %{x}: loss %{y:.6g}<extra></extra>"))
    fig.update_xaxes(title="step", range=[0, max(10, len(losses)) + 0.5])  # whole steps on the axis
    fig.update_yaxes(title="batch loss", rangemode="tozero")
    return style(fig, "Loss of each step's batch", presenter, 260)


def forward(trace: StepTrace, presenter: bool) -> None:
    st.caption("Each layer: z = x W + b for every image of the batch (rows), then a = f(z). The last "
               "layer's z are the logits; the softmax turns them into probabilities, and the loss "
               "compares those with the labels.")
    rows = _images(trace)
    for li, L in enumerate(trace.layers):
        left, right = st.columns(2)
        outs = _outputs(trace, li, L.z.shape[1])
        if L.hidden:
            left.plotly_chart(heatmap(L.z, title=f"layer {li + 1}: z = xW + b", rows=rows, cols=outs,
                                      name="z", presenter=presenter), key=f"bp_f_z{li}")
            right.plotly_chart(heatmap(L.a, title=f"layer {li + 1}: a = {trace.config.activation}(z)",
                                       rows=rows, cols=outs, name="a", presenter=presenter), key=f"bp_f_a{li}")
        else:
            left.plotly_chart(heatmap(L.z, title="logits z", rows=rows, cols=outs, name="logit",
                                      presenter=presenter), key="bp_f_logits")
            right.plotly_chart(heatmap(trace.probs, title=f"softmax; batch loss {trace.loss:.4f}", rows=rows,
                                       cols=outs, name="p", presenter=presenter, probs=True), key="bp_f_probs")


def backward(trace: StepTrace, presenter: bool) -> None:
    st.caption("From the loss down: δ = dL/dz of each layer, then dW = xᵀ δ (summed over the batch) and "
               "db = δ summed over the batch. Below a hidden layer: dL/da = δ_above Wᵀ_above, and "
               "δ = dL/da × f'(z)." + (" **Broken: f'(z) is left out.**" if trace.broken else ""))
    rows = _images(trace)
    for li in reversed(range(len(trace.layers))):
        L = trace.layers[li]
        outs, ins = _outputs(trace, li, L.z.shape[1]), _inputs(li, L.x.shape[1])
        left, right = st.columns(2)
        left.plotly_chart(heatmap(L.dz, title=f"layer {li + 1}: δ = dL/dz", rows=rows, cols=outs,
                                  name="dL/dz", presenter=presenter), key=f"bp_b_dz{li}")
        right.plotly_chart(heatmap(L.db[None], title=f"layer {li + 1}: db", rows=(["db"], ""), cols=outs,
                                   name="dL/db", presenter=presenter, height=210), key=f"bp_b_db{li}")
        right.plotly_chart(heatmap(L.dW, title=f"layer {li + 1}: dW = xᵀδ", rows=ins, cols=outs,
                                   name="dL/dW", presenter=presenter), key=f"bp_b_dW{li}")


def update(trace: StepTrace, presenter: bool) -> None:
    opt = trace.config.optimizer
    rule = {"sgd": "W ← W − lr · dW", "momentum": "v ← 0.9 v + dW;  W ← W − lr · v",
            "adam": "m ← 0.9 m + 0.1 dW;  v ← 0.999 v + 0.001 dW²;  "
                    "W ← W − lr · m̂ / (√v̂ + 1e-8), m̂ = m / (1 − 0.9ᵗ), v̂ = v / (1 − 0.999ᵗ)"}[opt]
    st.caption(f"{OPT_LABELS[opt]}, lr {trace.lr:g}, t = {trace.t}: {rule}. The step's colour scale is "
               "its own: it is far smaller than the weights.")
    for li, L in enumerate(trace.layers):
        ins, outs = _inputs(li, L.W.shape[0]), _outputs(trace, li, L.W.shape[1])
        cols = st.columns(3)
        for col, (key, what, m) in zip(cols, (("before", "W before", L.W), ("step", "the step", L.W_step),
                                              ("after", "W after", L.W_after))):
            col.plotly_chart(heatmap(m, title=f"layer {li + 1}: {what}", rows=ins, cols=outs, name=what,
                                     presenter=presenter), key=f"bp_u_{key}{li}")
        state = [(k, v) for k, v in L.state.items() if k.startswith("W.")]
        if state:
            cols = st.columns(3)
            for col, (k, v) in zip(cols, state):
                label = {"W.v": "velocity v" if opt == "momentum" else "v (mean of dW²)",
                         "W.m": "m (mean of dW)"}[k]
                col.plotly_chart(heatmap(v, title=f"layer {li + 1}: optimiser's {label}", rows=ins, cols=outs,
                                         name=k, presenter=presenter), key=f"bp_u_{k[2:]}{li}")


def one_image(trace: StepTrace, n: int, images: np.ndarray, presenter: bool) -> None:
    """Image `n` of the batch through the whole step, one heat map row per quantity."""
    y, p = int(trace.y[n]), trace.probs[n]
    st.caption(f"Image {n} of the batch, a {y}: read as {int(p.argmax())} ({p.max():.1%}); its loss "
               f"{trace.example_loss[n]:.4f}. Numbers in the cells, exact values on hover.")
    left, right = st.columns([1, 3])
    left.plotly_chart(heatmap(trace.x[n].reshape(8, 8), title="input x (pixel / 16)", rows=_numbered(8, "row"),
                              cols=_numbered(8, "column"), name="x", presenter=presenter, probs=True,
                              height=330), key="bp_e_x")
    with right:
        for li, L in enumerate(trace.layers):
            outs = _outputs(trace, li, L.z.shape[1])
            if L.hidden:
                rows = {"z": L.z[n], f"a = {trace.config.activation}(z)": L.a[n], "dL/da": L.da[n],
                        "f'(z)": L.fprime[n], "δ = dL/dz" + (" (broken)" if trace.broken else ""): L.dz[n]}
            else:
                rows = {"logits z": L.z[n], "p = softmax(z)": p,
                        "target": (np.arange(len(p)) == y).astype(float), "δ = dL/dz": L.dz[n]}
            st.plotly_chart(heatmap(np.array(list(rows.values())), title=f"layer {li + 1}", rows=(list(rows), ""),
                                    cols=outs, name="value", presenter=presenter,
                                    numbers=len(outs) <= 16 and not presenter), key=f"bp_e_l{li}")


def decisions(trace: StepTrace, images: np.ndarray) -> None:
    """The batch's images with what this step's forward pass read in each."""
    captions = [f"{'✓' if p == y else '✗'} {y}→{p} {trace.probs[k, p]:.0%}"
                for k, (y, p) in enumerate(zip(trace.y.tolist(), trace.preds.tolist()))]
    st.image([display_image(images[i], 16, size=48, frame=2) for i in trace.index], caption=captions,
             output_format="PNG")


def _param(name: str) -> str:
    """"dense0.W" -> "W(1)": the layer counted from 1, as everywhere on the page."""
    layer, kind = name.removeprefix("dense").split(".")
    return f"{kind}({int(layer) + 1})"


def _n(v: float) -> str:
    return f"{v:.4g}"


def chain_rule_lines(trace: StepTrace, layer: int, i: int, j: int, n: int) -> list[tuple[str, str]]:
    """(words, LaTeX) lines of dL/dW[i, j] for this step with its numbers, image `n` followed."""
    c = chain_rule(trace, layer, i, j, n)
    w = f"W^{{({layer + 1})}}_{{{i},{j}}}"
    lines = [
        (f"The gradient sums one product per image of the batch ({len(trace.y)}):",
         rf"\frac{{\partial L}}{{\partial {w}}} = \sum_{{n}} x_{{n,{i}}}\,\delta_{{n,{j}}}"),
        (f"Image {n}'s product: its input {i} times its δ at unit {j}:",
         rf"x_{{{n},{i}}}\,\delta_{{{n},{j}}} = {_n(c.x_in)} \times ({_n(c.delta)}) = {_n(c.term)}"),
    ]
    if c.da is not None:
        if trace.broken:
            lines.append(((f"δ: the gradient from above, times f'(z)... **which the broken step leaves out** "
                          f"(f'(z) = {_n(c.fprime)}):"),
                          rf"\delta_{{{n},{j}}} = \frac{{\partial L}}{{\partial a_{{{n},{j}}}}} = {_n(c.da)}"))
        else:
            lines.append(((f"δ: the gradient from above times the {trace.config.activation}'s slope at "
                          f"z = {_n(c.z)}:"),
                          (rf"\delta_{{{n},{j}}} = \frac{{\partial L}}{{\partial a_{{{n},{j}}}}}\,f'(z_{{{n},{j}}})"
                          rf" = {_n(c.da)} \times {_n(c.fprime)} = {_n(c.delta)}")))
        terms = " + ".join(f"({_n(d)})({_n(v)})" for d, v in list(zip(c.upstream, c.W_next))[:3])
        lines.append(((f"The gradient from above: every unit k of layer {layer + 2}, δ times the weight to it "
                      f"= {terms}{' + …' if len(c.upstream) > 3 else ''} ({len(c.upstream)} terms):"),
                      (rf"\frac{{\partial L}}{{\partial a_{{{n},{j}}}}} = \sum_k \delta^{{({layer + 2})}}_{{{n},k}}"
                      rf"\,W^{{({layer + 2})}}_{{{j},k}} = {_n(c.da)}")))
    elif trace.config.loss == "cross-entropy":
        lines.append(("δ of a logit: the probability minus the target, over the batch size:",
                      (rf"\delta_{{{n},{j}}} = \frac{{p_{{{n},{j}}} - [y_{{{n}}} = {j}]}}{{N}} = "
                      rf"\frac{{{_n(c.prob)} - {int(c.target)}}}{{{len(trace.y)}}} = {_n(c.delta)}")))
    else:
        lines.append(("δ of a logit: the squared error's gradient through the softmax:",
                      rf"\delta_{{{n},{j}}} = {_n(c.delta)}"))
    lines.append((f"Image {n}'s product plus the other images' ones:",
                  rf"{_n(c.term)} + ({_n(c.total - c.term)}) = {_n(c.total)}"))
    if trace.config.optimizer == "sgd":
        lines.append((f"The update, learning rate {trace.lr:g}:",
                      rf"{w} \leftarrow {_n(c.weight_before)} - {trace.lr:g} \times ({_n(c.total)}) = {_n(c.weight_after)}"))
    else:
        lines.append((f"The update by {OPT_LABELS[trace.config.optimizer]} (its state on the Update view):",
                      rf"{w}: {_n(c.weight_before)} \rightarrow {_n(c.weight_after)}"))
    return lines


def hold_weight() -> None:
    """A weight or image picked by hand stays picked from step to step."""
    ss["bp_auto"] = False


def pick_weight(trace: StepTrace) -> tuple[int, int, int]:
    """The layer and weight (i, j) whose chain rule is written out."""
    n_layers = len(trace.layers)
    if ss.get("bp_layer", 0) >= n_layers:
        ss["bp_layer"] = 0
    a, b, c = st.columns(3)
    layer = a.selectbox("Layer", range(n_layers), format_func=lambda k: f"layer {k + 1}", key="bp_layer")
    ss.setdefault("bp_auto", True)
    if st.checkbox("Each step, the weight with the largest gradient and the image that gives most of it",
                   key="bp_auto"):
        ss["bp_i"], ss["bp_j"], ss["bp_n"] = strongest_weight(trace, layer)
    n_in, n_out = trace.layers[layer].W.shape
    ss["bp_i"], ss["bp_j"] = min(ss["bp_i"], n_in - 1), min(ss["bp_j"], n_out - 1)
    i = b.number_input("Row i (input)", 0, n_in - 1, key="bp_i", on_change=hold_weight)
    j = c.number_input("Column j (output)", 0, n_out - 1, key="bp_j", on_change=hold_weight)
    return layer, int(i), int(j)


def checks(s: Stepper, presenter: bool) -> None:
    """Both checks of the last step, pass or fail in words."""
    fd, ag = s.checks()
    trace = s.last
    say = st.success if fd.passed else st.error
    say(f"Finite differences: worst relative error {fd.worst:.1e} "
        f"({'below' if fd.passed else 'above'} {fd.tolerance:g}) over {len(fd.weights)} random weights")
    st.caption(f"finite diff. = (L(w + ε) − L(w − ε)) / 2ε with ε = {fd.eps:g}, the loss of this step's "
               "batch at its weights before the update")
    st.dataframe({"weight": [f"W({li + 1})[{i},{j}]" for li, i, j in fd.weights], "backprop": fd.analytic, "finite diff.": fd.numeric,
                  "rel. error": fd.rel_error},
                 column_config={"rel. error": st.column_config.NumberColumn(format="%.1e"),
                                "backprop": st.column_config.NumberColumn(format="%.5e"),
                                "finite diff.": st.column_config.NumberColumn(format="%.5e")},
                 hide_index=True, height=200 if presenter else 180, key="bp_fd_table")
    say = st.success if ag.passed else st.error
    say(f"PyTorch autograd ({ag.dtype}): largest |dW − dW_torch| = {ag.grad_diff:.1e} (in {_param(ag.worst)}), "
        f"weights after torch.optim's step differ by {ag.weight_diff:.1e}; "
        f"{'both below' if ag.passed else 'above'} {ag.tolerance:g}")
    if trace.bug_changes_nothing:
        st.info("The bug changes nothing on this batch: every unit's f'(z) is 1 (all active).")


def step_view(presenter: bool, was_running: bool) -> None:
    """The controls and everything about the last step, drawn in a fragment that runs every
    RUN_EVERY seconds while running (`was_running`: as the page set it up), taking a step
    each time. The buttons are inside it, as the Train page's Stop is: a click outside a
    fragment that keeps rerunning could be lost."""
    if running() != was_running:
        st.rerun()  # the whole page: Run or Pause changes how often this fragment runs
    controls()
    if running():
        take_steps(1)
    s = stepper()
    if ss.get("bp_error"):
        st.error(ss["bp_error"])
    trace = s.last
    m = st.columns([1, 1.2, 1.2, 1, 1.6])
    m[0].metric("Step", f"{s.steps:,}")
    if trace is None:
        st.info("Press **Step** to take the first step: one mini-batch forward, backward and update.")
        return
    m[1].metric("Batch loss", f"{trace.loss:.4f}",
                delta=f"{trace.loss - s.losses[-2]:+.4f}" if s.steps > 1 else None, delta_color="inverse")
    m[2].metric("Read right in the batch", f"{int((trace.preds == trace.y).sum())} of {len(trace.y)}")
    m[3].metric("Learning rate", f"{trace.lr:g}")
    fd, ag = s.checks()
    m[4].metric("Gradient checks", f"{'✓' if fd.passed else '✗'} FD · {'✓' if ag.passed else '✗'} torch",
                help="Finite differences and PyTorch autograd against this step's backprop (details below).")
    left, right = st.columns(2)
    left.plotly_chart(loss_figure(s.losses, presenter), key="bp_loss")
    with right:
        st.markdown("**The batch as this step read it** (before its update)")
        decisions(trace, s.images)
    left, right = st.columns([3, 2])
    with left, st.container(key="bp_chain"):
        st.subheader("The chain rule for one weight")
        layer, i, j = pick_weight(trace)
        n = st.selectbox("Follow image", range(len(trace.y)), key="bp_n", on_change=hold_weight,
                         format_func=lambda k: f"image {k} (a {int(trace.y[k])})")
        for words, line in chain_rule_lines(trace, layer, i, j, n):
            st.markdown(words)
            st.latex(line)
    with right, st.container(key="bp_checks"):
        st.subheader("Checked, live")
        checks(s, presenter)
    view = st.radio("Show", VIEWS, horizontal=True, key="bp_view", label_visibility="collapsed")
    st.caption("In every heat map red is above 0, blue below, white is 0 (probabilities and pixels: "
               "white 0 to blue 1); hover a cell for its exact value.")
    if view == "Forward":
        forward(trace, presenter)
    elif view == "Backward":
        backward(trace, presenter)
    elif view == "Update":
        update(trace, presenter)
    else:
        one_image(trace, ss.get("bp_n", 0), s.images, presenter)


__all__ = ["KEY", "RUN_EVERY", "running", "settings", "start_over", "step_view", "stepper"]
