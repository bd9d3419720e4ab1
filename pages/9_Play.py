"""Play: paint over a test digit the model reads right (or your last drawing), or nudge it, until it
changes its mind."""

import zlib

import numpy as np
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from dashboard import state
from dashboard.draw import model_caption, ready_made_label
from dashboard.play_view import PAD, background, last_drawing, nudge_panel, reading, saliency_panel
from digits_core.analysis.play import compose, start_digit
from digits_core.data.datasets import MAX_VALUE
from digits_core.errors import DigitLabError

st.title("Play")
st.caption("Start from a test digit the model reads right (or your last drawing on the Draw page) and paint on it "
           "(a white pen adds ink, a black one rubs it out), or turn on the canvas's edit toggle to move, scale and rotate your strokes. After each change: "
           "the reading and which pixels decided it.")
ready = state.ready_made()
info = state.pick_run("Model", ready_made=None if ready is None else ready_made_label(ready))
try:
    run = state.load(info) if info is not None else ready
    data = state.run_data(run) if run is not None else None
except DigitLabError as e:
    st.error(str(e))
    st.stop()
if run is None:
    st.info(state.NO_MODEL)
    st.stop()
st.caption(model_caption(run))
top = MAX_VALUE[run.experiment.data.dataset]

START = ("a test digit", "my last drawing")
source = st.radio("Start from", START, horizontal=True, key="play_start",
                  help="Your last drawing is the one the Draw page read last, in this browser tab.")
left, mid, right = st.columns(3)
pen = mid.radio("Pen", ["white (adds ink)", "black (rubs out)"], horizontal=True, key="play_pen")
width = right.slider("Pen width", 5, 40, 16, key="play_width")
if source == START[1]:
    drawn = last_drawing(run)
    if drawn is None:
        st.info("No drawing yet in this tab: draw a digit on the Draw page, then come back.")
        st.stop()
    digit, want = drawn.image, drawn.digit
    name = f"drawing_{zlib.crc32(digit.tobytes())}"  # a new drawing starts a fresh pad and count
    left.caption(f"Your last drawing, as this model reads it: a {want}.")
else:
    want = left.selectbox("Start from a test digit", range(10), index=4, key="play_digit")
    first = data.images_test[:2000]
    k = start_digit(data.labels_test[:2000], run.model.forward(run.normalizer(first)).argmax(1), want)
    if k is None:
        st.info(f"The model reads none of the first 2,000 test {want}s right: pick another digit.")
        st.stop()
    digit, name = first[k].astype(np.float32), f"{want}_{k}"

pad_col, read_col = st.columns([1, 1])
with pad_col:
    canvas = st_canvas(stroke_width=width, stroke_color="#ffffff" if pen.startswith("white") else "#000000",
                       background_image=background(digit, top), height=PAD, width=PAD, drawing_mode="freedraw",
                       return_image_data=True, key=f"play_canvas_{name}")
strokes = len((canvas.json_data or {}).get("objects", [])) if canvas is not None else 0
image = compose(digit, None if canvas is None else canvas.image_data, top)
with read_col:
    reading(run, image, want, strokes, key=f"play_history_{name}")
st.subheader("Which pixels decided")
saliency_panel(run, image, px=140)
st.subheader("Nudge it")
if st.button("Nudge: a small change the model notices and you don't", key="play_nudge"):
    nudge_panel(run, image, top)
