"""Runs: every run on this server (each is saved as it trains); compare any of them, open
one on the analysis pages, train again with its settings, continue it, or delete it. On a
class server others' runs are read-only and a teacher can publish a run to the class."""

import streamlit as st

from dashboard import state
from dashboard.charts import overlay
from dashboard.plain import plain
from dashboard.run_table import COLUMNS, compared_run, runs_table, space_panel
from digits_core.analysis.comparison import XAXES, relative_losses
from digits_core.errors import DigitLabError, RunError

ss = st.session_state
session = state.session()
st.title("Runs")
infos = state.all_runs()
if not infos:
    st.info("No runs yet: start one on the Train page; it is saved as it trains.")
    st.stop()
by_name = {i.name: i for i in infos}


st.dataframe(runs_table(infos), hide_index=True, key="runs_table", width="stretch",
             column_config=COLUMNS)

if state.teacher():
    space_panel(infos)

st.subheader("Compare")
loadable = [i.name for i in infos if i.status != "broken"]
state.keep_choice("runs_compare", {n: by_name[n].label for n in loadable})
chosen = st.multiselect("Runs to overlay", loadable, key="runs_compare",
                        default=None if "runs_compare" in ss else loadable[:2],
                        format_func=lambda n: by_name[n].label, placeholder="Choose runs…")
if chosen:
    curves = [compared_run(by_name[n]) for n in chosen]
    c1, c2 = st.columns(2)
    x = c1.radio("Draw against", list(XAXES), format_func=XAXES.get, horizontal=True, key="runs_x")
    differ = relative_losses(curves)
    relative = c2.radio("Loss", ["as measured", "relative to each run's start"], index=int(differ),
                        horizontal=True, key=f"runs_loss_view_{differ}") != "as measured"
    if differ:
        c2.caption("These runs' losses are of different kinds or scales: "
                   + ("each is drawn relative to where it began." if relative else "one axis may flatten some."))
    loss_fig, acc_fig = overlay(curves, session.presenter, x=x, relative=relative)
    left, right = st.columns(2)
    left.plotly_chart(acc_fig, key="runs_acc")
    right.plotly_chart(loss_fig, key="runs_loss")

st.subheader("One run")
labels = {n: state.run_label(i, live=False) for n, i in by_name.items()}
names = list(by_name)  # newest first; it opens on this person's newest (a class: not the teacher's)
own = set(state.my_run_names())
mine_first = next((n for n in names if n in own), names[0])
state.keep_choice("runs_pick", {n: labels[n] for n in names})
name = st.selectbox("Run", names, index=None if "runs_pick" in ss else names.index(mine_first),
                    key="runs_pick", format_func=labels.get)
info = by_name[name]


def open_run(name: str) -> None:
    session.chosen_run = name
    ss["runs_opened"] = name


def train_again(name: str) -> None:
    try:
        state.set_experiment(state.load(by_name[name]).experiment)
    except RunError as e:
        ss["runs_error"] = str(e)
        return
    ss["runs_again"] = name


def delete(name: str) -> None:
    try:
        state.runner().delete(name, by=state.deleted_by())
    except (RunError, OSError) as e:
        ss["runs_error"] = str(e)
        return
    ss["runs_deleted"] = by_name[name].label


def publish(name: str, on: bool) -> None:
    if not state.teacher():  # the button is the teacher's; a forged click is not
        ss["runs_error"] = "only the teacher can publish a run"
        return
    try:
        state.runner().publish(name, on, teacher=state.teacher())
    except (RunError, OSError) as e:
        ss["runs_error"] = str(e)


mine = state.may_change(info)
if not mine:
    st.caption(f"{plain(info.person) or 'Someone else'}'s run: you can look at it, open it and train "
               "with its settings; only they can continue, rename or delete it.")
if state.teacher() and info.ok:
    st.button("Take back from the class" if info.published else "Publish to the class",
              key="runs_publish", on_click=publish, args=(name, not info.published),
              icon=":material/push_pin:", help="A published run comes first in everyone's pickers.")
if info.status == "broken":
    st.error(f"This run is broken: {plain(info.reason)}. It can only be deleted.")
else:
    c1, c2, c3 = st.columns(3)
    c1.button("Open on the analysis pages", key="runs_open", on_click=open_run,
              args=(name,), icon=":material/open_in_new:", disabled=not info.ok, width="stretch",
              help="Evaluate, Embedding and Draw show this run from now on.")
    c2.button("Train again with these settings", key="runs_again_btn", on_click=train_again,
              args=(name,), icon=":material/replay:", disabled=not info.ok, width="stretch")
    if mine and info.status == "diverged":
        c3.caption(f"{state.NOT_CONTINUED}.")
    elif mine and info.ok and info.status not in ("running", "loading", "queued", "stopping"):
        more = c3.number_input("More epochs", 1, 1000, 1, key=f"runs_more_{name}")
        if c3.button("Continue training", key="runs_continue", icon=":material/play_arrow:"):
            try:
                state.runner().continue_run(name, int(more), owner=state.owner())
                st.session_state["train_view"] = name
                st.switch_page("pages/3_Train.py")
            except DigitLabError as e:
                st.error(plain(e))
    if ss.pop("runs_opened", None) == name:
        st.success(f"{plain(info.label)} is now the model on Evaluate, Embedding and Draw.")
    if ss.pop("runs_again", None) == name:
        st.page_link("pages/3_Train.py", label="Its settings are on the Train page", icon=":material/arrow_forward:")
    with st.expander("Configuration (experiment.json)"):
        try:
            st.json(state.load(info).experiment.to_dict() if info.ok else {}, expanded=False)
        except RunError as e:
            st.error(plain(e))

may_delete = state.may_delete(info)
sure = st.checkbox(f"Yes, delete {plain(info.label)} permanently", key=f"runs_sure_{name}", disabled=not may_delete)
st.button("Delete run", key="runs_delete", disabled=not (sure and may_delete), on_click=delete, args=(name,),
          icon=":material/delete:")
if "runs_deleted" in ss:
    st.success(f"Deleted {plain(ss.pop('runs_deleted'))}.")
if "runs_error" in ss:
    st.error(plain(ss.pop("runs_error")))
