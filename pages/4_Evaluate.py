"""Evaluate: a model's scores on its test split, the digits it confuses, and its first layer."""

import streamlit as st

from dashboard import evaluate_view as view
from dashboard import state
from dashboard.plain import plain
from digits_core.errors import DigitLabError

st.title("Evaluate")
info = state.pick_run()
if info is None:
    st.info(state.NO_MODEL)
    st.stop()
try:
    run = state.load(info)
    ev = view.evaluation(info.name, float(info.meta.get("updated") or 0), run)
except DigitLabError as e:
    st.error(plain(e))
    st.stop()

view.evaluation_view(info.name, run, ev)
