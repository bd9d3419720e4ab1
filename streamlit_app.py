"""Digit Lab: page config, navigation and the shared sidebar.

Run it with `streamlit run streamlit_app.py`.
"""

import streamlit as st

from pages import _shared

st.set_page_config(page_title="Digit Lab", page_icon="🔢", layout="wide")

pages = [
    st.Page("pages/1_Home.py", title="Home", icon=":material/home:", default=True),
    st.Page("pages/2_Data.py", title="Data", icon=":material/dataset:"),
    st.Page("pages/3_Train.py", title="Train", icon=":material/model_training:"),
    st.Page("pages/4_Evaluate.py", title="Evaluate", icon=":material/fact_check:"),
    st.Page("pages/5_Embedding.py", title="Embedding", icon=":material/scatter_plot:"),
    st.Page("pages/6_Draw.py", title="Draw", icon=":material/draw:"),
    st.Page("pages/7_Runs.py", title="Runs", icon=":material/folder_open:"),
]
page = st.navigation(pages)


def job_list(polling: bool) -> None:
    jobs = _shared.jobs()
    if not jobs:
        st.caption("No training jobs yet.")
        return
    for job in reversed(jobs.values()):
        h = job.snapshot()
        name = job.experiment.name or job.experiment.model.family
        if h.status == "running":
            state = f"running, {h.progress:.0%}"
        elif h.final_test_acc is not None:
            state = f"{h.status}, test {h.final_test_acc:.1%}"
        else:
            state = h.status
        st.caption(f"**{name}** · {job.experiment.data.dataset} · {state}")
    if polling and all(job.done for job in jobs.values()):
        st.rerun()  # the whole app, so this list stops polling


with st.sidebar:
    st.subheader("This session")
    # Poll only while something trains; starting a job reruns the whole app, which turns this on.
    busy = any(not job.done for job in _shared.jobs().values())
    st.fragment(run_every=2.0 if busy else None, key="sidebar_jobs")(job_list)(busy)
    data = _shared.data_config()
    st.caption(
        f"Data: **{data.dataset}**, split {data.split}, "
        f"{'all' if data.train_size is None else data.train_size} training images"
    )
    st.caption(f"Runs folder: `{_shared.runs_dir().resolve()}`")

page.run()
