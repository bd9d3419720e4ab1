"""Backprop: the NumPy network trained one mini-batch at a time, every number of the step shown
and checked against finite differences and PyTorch autograd."""

import streamlit as st

from dashboard import backprop_view as view
from dashboard import state

st.title("Backprop")
presenter = state.session().presenter
if not presenter:  # the room hears it; the controls and the numbers stay above the fold
    st.caption("A small NumPy network (written from scratch, float64) learning the 8x8 digits one "
               "mini-batch at a time. Each step's forward pass, backward pass and update are shown "
               "as heat maps (hover a cell for its exact value), the chain rule is written out for "
               "one weight, and two independent checks judge the gradients as you go.")
view.settings()
running = view.running()
st.fragment(run_every=view.RUN_EVERY if running else None)(view.step_view)(presenter, running)
