"""Digit Lab: page config, navigation and the shared sidebar.

Run it with `streamlit run streamlit_app.py` (or `make run`).
"""

import streamlit as st

from dashboard import people, polling, state, warm
from dashboard.plain import plain

st.set_page_config(page_title="Digit Lab", page_icon="🔢", layout="wide")
SIDEBAR_RUNS = 6  # the newest of a person's runs listed in the sidebar
# Pickers whose choice a person expects to find again after visiting another page: the run
# shown on Train, the runs compared and the one run on Runs, the cell picked on Evaluate, the
# learning rate, Break it and the view of the step on Backprop.
KEPT_ACROSS_PAGES = ("train_view", "runs_compare", "runs_pick", "cell_true", "cell_pred",
                     "bp_lr", "bp_broken", "bp_view")

pages = [
    st.Page("pages/1_Home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/2_Data.py", title="Data", url_path="data", icon=":material/dataset:"),
    st.Page("pages/3_Train.py", title="Train", url_path="train", icon=":material/model_training:"),
    st.Page("pages/4_Evaluate.py", title="Evaluate", url_path="evaluate", icon=":material/fact_check:"),
    st.Page("pages/5_Embedding.py", title="Embedding", url_path="embedding", icon=":material/scatter_plot:"),
    st.Page("pages/6_Draw.py", title="Draw", url_path="draw", icon=":material/draw:"),
    st.Page("pages/7_Runs.py", title="Runs", url_path="runs", icon=":material/folder_open:"),
    st.Page("pages/8_Backprop.py", title="Backprop", url_path="backprop", icon=":material/account_tree:"),
    st.Page("pages/9_Play.py", title="Play", url_path="play", icon=":material/sports_esports:"),
    st.Page("pages/10_Drawings.py", title="Drawings", url_path="drawings", icon=":material/gesture:"),
    st.Page("pages/11_Compare.py", title="Compare", url_path="compare", icon=":material/leaderboard:"),
]
page = st.navigation(pages)
session = state.session()
if not people.identify():  # a class server asks for a name first
    st.stop()


def my_runs(busy: bool) -> None:
    if busy:
        polling.seen(state.sid())
    infos = {i.name: i for i in state.all_runs()}
    every = [n for n in state.my_run_names() if n in infos]
    names = every[-SIDEBAR_RUNS:]
    if not names:
        st.caption("No runs yet.")
        return
    runner = state.runner()
    for name in reversed(names):
        st.caption(plain(state.run_label(infos[name])))
    if len(every) > len(names):
        st.caption(f"…and {len(every) - len(names)} older on the Runs page")
    if busy and not runner.active(state.owner()):
        st.rerun()  # the whole app, so this list stops polling


with st.sidebar:
    people.sidebar()
    session.presenter = st.toggle("Presenter mode", value=session.presenter, key="presenter",
                                  help="Large text and chart labels for the back of a room.")
    st.subheader("Your runs")
    busy = bool(state.runner().active(state.owner()))
    st.fragment(run_every=polling.crowded(2.0, polling.watchers()) if busy else None)(my_runs)(busy)
    state.show_data_line(st.empty())  # the Data page writes it again when it changes the data
    st.caption("Runs are saved as they train; see them all on the Runs page.")
    # Less empty space above every page's title than Streamlit's default (6rem): a running
    # run's picker, progress and both charts fit a 1280x720 screen.
    st.html("<style>[data-testid='stMainBlockContainer'] { padding-top: 3.5rem; }</style>")
    if session.presenter:  # last in the sidebar: turning it on moves nothing on the page (a new
        # element above the page would remount its components: the Draw page's pad)
        st.markdown("<style>html { font-size: 20px; } h1 { font-size: 1.9rem !important; "
                    "padding-top: 0 !important; } [data-testid='stMainBlockContainer'] "
                    "{ padding-top: 1.25rem; }</style>",
                    unsafe_allow_html=True)

# Widget state is dropped on pages that do not draw the widget: these choices are kept
# (written back as plain values) so that a person coming back finds them as they left them.
for key in KEPT_ACROSS_PAGES:
    if key in st.session_state:
        st.session_state[key] = st.session_state[key]
page.run()
warm.after_first_page()  # once per server: what later pages and a first job import
