"""Drawings: what people marked on the Draw page, per digit; any model scored on them beside
its MNIST test figure; the set as one file; and "Teach the model" these drawings."""

import streamlit as st

from dashboard import drawings_view as view
from dashboard import state
from dashboard.draw import ready_made_label
from digits_core.analysis.drawing_scores import score_drawings
from digits_core.errors import DigitLabError
from digits_core.store import drawings as dr
from digits_core.training.train import plural

ss = st.session_state
st.title("Drawings")
st.caption("Drawings kept from the Draw page (\"Right\" or \"No, it's a _\"): real people's handwriting, "
           "to score a model on and to teach it.")
for kind, key in (("error", "drawings_error"), ("success", "drawings_note")):
    if key in ss:
        getattr(st, kind)(ss.pop(key))

every = dr.visible(dr.list_drawings(state.runs_dir()), state.owner(), class_server=state.class_mode())
images, labels, every = dr.inputs_of(state.runs_dir(), [d for d in every if d.dataset == "mnist"])
view.set_file(every)
if not every:
    st.info("No drawings yet: on the Draw page, after a reading, click \"Right\" or the digit it really is.")
    st.stop()

ready = state.ready_made()
info = state.pick_run("Model to score and teach",
                      ready_made=None if ready is None else ready_made_label(ready))
run = ready
try:
    run = state.load(info) if info is not None else ready
except DigitLabError as e:
    st.error(str(e))
if run is None or run.experiment.data.dataset != "mnist":
    st.info("Pick an MNIST model: the drawings are 28x28, as MNIST's digits.")
    st.stop()
score = score_drawings(run, images, labels)
reads = {d.id: int(p) for d, p in zip(every, score.preds)}

people = sorted({d.person or ("you" if d.owner == state.owner() else "someone") for d in every})
left, right = st.columns(2)
who = left.selectbox("Drawn by", ["everyone", *people], key="drawings_who") if len(people) > 1 else "everyone"
which = right.radio("Show", ["all", f"misread by {run.label}"], horizontal=True, key="drawings_which")
shown = [d for d in every if who == "everyone" or (d.person or ("you" if view.mine(d) else "someone")) == who]
if which != "all":
    shown = [d for d in shown if reads[d.id] != d.label]

# a keyed choice, not tabs: it stays on its view when the picked model changes (a taught run)
view_name = st.segmented_control("View", ["Drawings", "Score", "Teach the model"], default="Drawings",
                                 key="drawings_view", label_visibility="collapsed") or "Drawings"
if view_name == "Drawings":
    view.grid(shown, {d.id: x for d, x in zip(every, images)}, reads)
    if any(view.mine(d) for d in every):
        with st.popover("Delete all my drawings", icon=":material/delete_sweep:"):
            st.button("Yes, delete every drawing of mine", on_click=view._delete_mine, key="drawings_delete_mine")
elif view_name == "Score":
    view.score_panel(run, score, list(images))
else:
    st.caption(f"Continue {run.label} for one short epoch on MNIST plus {plural(len(labels), 'drawing')}, "
               "into a new run of yours (the model picked stays as it is).")
    st.button(f"Teach {run.label} {plural(len(labels), 'drawing')}", type="primary", key="drawings_teach",
              on_click=view.start_teaching, args=(run, images, labels), icon=":material/school:",
              disabled=bool(ss.get("teaching")) and state.runner().busy(ss["teaching"]["name"]))
    view.teaching_panel(images, labels)
