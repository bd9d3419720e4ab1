"""Evaluate's hardest examples: the test images ranked by the model's loss, filtered by the
true and the predicted digit, each with its probabilities (`digits_core.hardest`); one of
them picked opens in the inside view."""

from __future__ import annotations

import streamlit as st

from dashboard.inside_view import test_image_view
from digits_core.analysis.hardest import hardest_examples
from digits_core.images.pictures import display_image

ANY = "any"
CHOICES = [ANY] + list(range(10))


def hardest_panel(run, ev, loss: str) -> None:
    """Draw the panel for a `evaluate.RunEvaluation` of `run`, trained on `loss`."""
    st.subheader("Hardest examples")
    st.caption(f"The test images with the highest {loss} loss, the model's own measure of how "
               "wrong it is: confident mistakes first, then shaky right answers.")
    left, right = st.columns(2)
    true = left.selectbox("True digit", CHOICES, key="hard_true")
    pred = right.selectbox("Predicted digit", CHOICES, key="hard_pred")
    examples = hardest_examples(ev.images_test, ev.probs, ev.labels, loss,
                                true=None if true == ANY else int(true),
                                pred=None if pred == ANY else int(pred))
    if not examples:
        st.info(f"No test image is a {true} read as {pred}.")
        return
    st.image([display_image(e.image, ev.max_value, frame=4) for e in examples],
             caption=[e.caption for e in examples], output_format="PNG")
    with st.expander("Their probabilities"):
        st.dataframe(
            {"test image": [e.index for e in examples], "true": [e.true for e in examples],
             "loss": [round(e.loss, 3) for e in examples]}
            | {str(d): [float(e.probs[d]) for e in examples] for d in range(10)},
            column_config={str(d): st.column_config.NumberColumn(str(d), format="percent")
                           for d in range(10)},
            hide_index=True, key="hard_probs",
        )
    shown = st.selectbox("Which pixels decided, and where it lands, for hardest example",
                         range(len(examples)), index=None, format_func=lambda k: examples[k].caption,
                         key="hard_inside")
    if shown is not None and shown < len(examples):  # a filter may have shortened the list
        test_image_view(run, examples[shown].image, examples[shown].caption, key="_hard")


__all__ = ["hardest_panel"]
