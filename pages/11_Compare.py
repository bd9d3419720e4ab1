"""Compare: race 2-4 models live on equal terms, or sweep one or two settings over a grid."""

import streamlit as st

from dashboard import state
from dashboard.compare import race_form, race_view
from dashboard.sweeping import sweep_form, sweep_view

presenter = state.session().presenter
st.title("Compare")
race, sweep = st.tabs(["Race", "Sweep"])
with race:
    race_form()
    race_view(presenter)
with sweep:
    sweep_form()
    sweep_view(presenter)
