"""The Evaluate page's panels: scores, per-class table, the clickable confusion matrix and its
cell's images, the strict rule's matrix and the first-layer weights, for one scored run
(`digits_core.analysis.evaluate.evaluate_run`). The page picks the run and calls these."""

from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.hardest import hardest_panel
from dashboard.inside_view import test_image_view
from digits_core.analysis.evaluate import (
    cell_examples,
    evaluate_run,
    most_confused,
    uses_strict_rule,
)
from digits_core.images.pictures import display_image, first_layer_mosaic
from digits_core.nn.models import first_layer_weights

DIGITS = [str(d) for d in range(10)]


@st.cache_data(max_entries=8, show_spinner="Scoring the test set...")
def evaluation(name: str, updated: float, _run):
    """Cached per run and checkpoint (`updated` changes with every checkpoint)."""
    return evaluate_run(_run, state.run_data(_run))


def confusion_figure(confusion, columns: list[str], presenter: bool = False) -> go.Figure:
    """Annotated heatmap, true rows top to bottom. Plotly cannot select heatmap cells, so an
    invisible marker sits on every cell: clicking a cell selects its marker."""
    cells = [(t, p) for t in range(confusion.shape[0]) for p in range(confusion.shape[1])]
    fig = go.Figure(go.Heatmap(
        z=confusion, x=columns, y=DIGITS, text=confusion, texttemplate="%{text}",
        colorscale="Blues", showscale=False, hoverinfo="skip",
    ))
    fig.add_scatter(
        x=[columns[p] for _, p in cells], y=[DIGITS[t] for t, _ in cells],
        customdata=cells, text=[int(confusion[t, p]) for t, p in cells], mode="markers",
        marker={"symbol": "square", "size": 28, "opacity": 0}, showlegend=False,
        hovertemplate="true %{y}, predicted %{x}: %{text} images<extra></extra>",
    )
    size = 18 if presenter else 13  # the cells' counts, the digits and the titles
    fig.update_layout(
        xaxis={"title": {"text": "predicted", "font": {"size": size}}, "type": "category",
               "side": "top", "tickfont": {"size": size}},
        yaxis={"title": {"text": "true", "font": {"size": size}}, "type": "category",
               "autorange": "reversed", "tickfont": {"size": size}},
        height=560 if presenter else 480, margin={"l": 10, "r": 10, "t": 50 if presenter else 40, "b": 10},
    )
    fig.update_traces(textfont={"size": size}, selector={"type": "heatmap"})
    return fig


def select_cell() -> None:
    """A click on the matrix moves the two selectboxes below it to that cell."""
    points = st.session_state["confusion_chart"].selection.points
    if points:
        st.session_state["cell_true"], st.session_state["cell_pred"] = points[0]["customdata"]


def scores(run, ev) -> None:
    """Accuracy, test images, mistakes (and the strict rule's score where it applies), then
    precision, recall and F1 per digit."""
    report = ev.report
    cols = st.columns(4)
    cols[0].metric("Test accuracy", f"{report.accuracy:.2%}")
    cols[1].metric("Test images", f"{report.n:,}")
    cols[2].metric("Mistakes", f"{int((ev.preds != ev.labels).sum()):,}")
    if uses_strict_rule(run):
        cols[3].metric(
            "Percent correct (strict)", f"{ev.strict_accuracy:.2%}",
            help="The squared-error write-ups' rule: correct only if the rounded output vector is "
            "exactly the one-hot label, i.e. the top probability is above 0.5.",
        )

    st.subheader("Per class")
    st.dataframe(
        {
            "digit": DIGITS, "precision": report.precision, "recall": report.recall,
            "F1": report.f1, "test images": report.support,
        },
        column_config={
            name: st.column_config.ProgressColumn(name, format="percent", min_value=0, max_value=1)
            for name in ("precision", "recall", "F1")
        },
        hide_index=True,
    )


def confusion_panel(name: str, run, ev) -> None:
    """The matrix, the cell picked on it (a first look, or another model, opens on its most
    confused cell) and that cell's images, one of which opens in the inside view."""
    report = ev.report
    st.subheader("Confusion matrix")
    st.caption("Rows are the true digits, columns the predicted ones. Click a cell (or pick it "
               "below) to see its images.")
    st.plotly_chart(
        confusion_figure(report.confusion, DIGITS, state.session().presenter), key="confusion_chart",
        on_select=select_cell, selection_mode="points",
    )
    default = most_confused(report.confusion) or (0, 0)
    ss = st.session_state
    if ss.get("cell_of") != name or "cell_true" not in ss or "cell_pred" not in ss:
        ss["cell_true"], ss["cell_pred"] = default
        ss["cell_of"] = name
    left, right = st.columns(2)
    true = left.selectbox("True digit", range(10), key="cell_true")
    pred = right.selectbox("Predicted digit", range(10), key="cell_pred")

    examples = cell_examples(ev, true, pred)
    kind = "correctly read, least sure first" if true == pred else "mistakes, most confident first"
    if not examples:
        st.info(f"No test image of a {true} was read as {pred}.")
        return
    st.caption(f"{len(examples)} of {int(report.confusion[true, pred])} images ({kind}).")
    st.image(
        [display_image(e.image, ev.max_value, frame=4) for e in examples],  # a grey edge apart
        caption=[e.caption for e in examples], output_format="PNG",
    )
    with st.expander("Full probability vectors"):
        st.dataframe(
            {"test image": [e.index for e in examples]}
            | {d: [float(e.probs[int(d)]) for e in examples] for d in DIGITS},
            column_config={d: st.column_config.NumberColumn(d, format="percent") for d in DIGITS},
            hide_index=True,
        )
    shown = st.selectbox("Which pixels decided, and where it lands, for image", range(len(examples)), index=None,
                         format_func=lambda k: examples[k].caption, key="inside_example")
    if shown is not None:
        test_image_view(run, examples[shown].image, examples[shown].caption)


def strict_panel(run, ev) -> None:
    """The strict rule's matrix, for runs trained on the squared-error write-ups' rule."""
    if not uses_strict_rule(run):
        return
    st.subheader("Confusion matrix, strict rule")
    st.caption("The last column counts the images the strict rule refuses to classify.")
    st.plotly_chart(
        confusion_figure(ev.strict_confusion, DIGITS + ["none"], state.session().presenter), key="strict_chart"
    )


def first_layer_panel(run) -> None:
    """The first layer's weights before and after training, and what training changed."""
    st.subheader("First-layer weights")
    shape = run.model.image_shape
    what = "convolution kernels" if run.experiment.model.kind.conv else "units"
    st.caption(f"What the first 32 {what} look for: red pixels push a unit up, blue ones down "
               "(each scaled to its own largest weight).")
    before_col, after_col, change_col = st.columns(3)
    after = first_layer_weights(run.model)
    if run.first_layer_before is not None:
        before_col.image(first_layer_mosaic(run.first_layer_before, shape),
                         caption="before training", output_format="PNG")
        # often alike at a glance (small steps from random starts): the change itself shows what moved
        change_col.image(first_layer_mosaic(after - run.first_layer_before, shape), output_format="PNG",
                         caption="what training changed (after minus before, each scaled to its largest change)")
    else:
        before_col.info("This run did not keep its initial weights.")
    after_col.image(first_layer_mosaic(after, shape), caption="after training", output_format="PNG")


def evaluation_view(name: str, run, ev) -> None:
    """Every panel of the page, top to bottom, for run `name` scored as `ev`."""
    scores(run, ev)
    confusion_panel(name, run, ev)
    hardest_panel(run, ev, run.experiment.train.loss)
    strict_panel(run, ev)
    first_layer_panel(run)
