"""Draw: write a digit (or upload a photo of one) and watch a trained model read it."""

import plotly.graph_objects as go
import streamlit as st
from streamlit_drawable_canvas import st_canvas

from digits_core.imagefile import MAX_UPLOAD_BYTES, load_upload
from digits_core.images import display_image
from digits_core.data import MAX_VALUE
from digits_core.errors import DigitLabError
from digits_core.predict import predict_canvas
from pages import _shared

CANVAS = 280  # pixels a side: ten canvas pixels per MNIST pixel

st.title("Draw")
run = _shared.pick_run()
if run is None:
    st.stop()

draw_col, result_col = st.columns([1, 1])
with draw_col:
    st.caption("Draw one digit, large and centred. Hover the canvas for its toolbar: undo, "
               "redo and clear (the bin).")
    canvas_box = st.container()  # the slider goes below, clear of the canvas's toolbar
    stroke = st.slider("Pen width", 5, 40, 18)
    with canvas_box:
        canvas = st_canvas(
            stroke_width=stroke, stroke_color="#FFFFFF", background_color="#000000",
            height=CANVAS, width=CANVAS, drawing_mode="freedraw", update_streamlit=True,
            return_image_data=True, key="draw_canvas",
        )
    upload = st.file_uploader(
        f"...or upload a photo or scan of one digit (PNG/JPEG, up to "
        f"{MAX_UPLOAD_BYTES // 2**20} MB); it replaces the drawing",
        type=["png", "jpg", "jpeg"],
    )

try:
    rgba = load_upload(upload) if upload is not None else canvas.image_data
    prediction = None if rgba is None else predict_canvas(run, rgba)
except DigitLabError as e:
    st.error(str(e))
    st.stop()

with result_col:
    if prediction is None or prediction.digit is None:
        st.info("Draw a digit on the canvas: the model's reading appears here.")
        st.stop()
    seen_col, metric_col = st.columns(2)
    metric_col.metric("Prediction", prediction.digit,
                      f"{prediction.probs[prediction.digit]:.0%} sure", delta_color="off",
                      delta_arrow="off", border=True)
    dataset = run.experiment.data.dataset
    h, w = prediction.image.shape
    seen_col.image(display_image(prediction.image, MAX_VALUE[dataset], size=140, frame=4),
                   caption=f"what the model sees ({h}x{w})", output_format="PNG")
    colors = ["#d62728" if d == prediction.digit else "#9aa5b1" for d in range(10)]
    fig = go.Figure(go.Bar(
        x=prediction.probs, y=[str(d) for d in range(10)], orientation="h",
        marker_color=colors, text=[f"{p:.0%}" for p in prediction.probs], textposition="outside",
        hovertemplate="%{y}: %{x:.1%}<extra></extra>",
    ))
    fig.update_layout(
        xaxis=dict(range=[0, 1.15], tickformat=".0%", title="probability"),
        yaxis=dict(title="digit", type="category", autorange="reversed"),
        height=360, margin=dict(l=10, r=10, t=10, b=10),
    )
    st.plotly_chart(fig, key="draw_probs")
