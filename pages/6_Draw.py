"""Draw: write a digit (or upload a photo of one) and watch a trained model read it.

Only the canvas and its reading re-render on a stroke (a fragment); the page around it
stays put.
"""

import streamlit as st
from streamlit.errors import StreamlitAPIException

from dashboard import state
from dashboard.draw import (
    NARROW_SCREEN_CSS,
    inline_image,
    model_caption,
    probability_bars,
    reading_text,
    ready_made_label,
    seen_caption,
)
from dashboard.inside_view import inside_view
from dashboard.marking import mark_panel
from dashboard.plain import plain
from dashboard.play_view import remember_drawing
from dashboard.sketchpad import sketchpad
from digits_core.analysis.predict import SURE_ALONE, TOO_SMALL, predict_canvas
from digits_core.data.datasets import MAX_VALUE
from digits_core.errors import DigitLabError
from digits_core.images.imagefile import MAX_UPLOAD_BYTES, load_upload
from digits_core.images.pictures import display_image

CANVAS = 280  # pixels a side: ten canvas pixels per MNIST pixel
ss = st.session_state

st.title("Draw")
ready = state.ready_made()
info = state.pick_run("Model that reads your drawing",
                      ready_made=None if ready is None else ready_made_label(ready))
run = None
if info is not None:
    try:
        run = state.load(info)
    except DigitLabError as e:
        st.error(plain(e))
if run is None:
    run = ready
    if run is None:
        st.info(state.NO_MODEL)
        st.stop()
st.container(key="draw_model").caption(model_caption(run))


@st.fragment
def drawing() -> None:
    st.html(NARROW_SCREEN_CSS)  # a phone: the reading right under the canvas, in view with it
    draw_col, result_col = st.columns([1, 1])
    tools = st.expander("Pen width, or upload a photo")  # folded, under both
    stroke = tools.slider("Pen width", 5, 40, 18, key="draw_pen")
    upload = tools.file_uploader(
        f"...or upload a photo or scan of one digit (PNG/JPEG, up to "
        f"{MAX_UPLOAD_BYTES // 2**20} MB); it replaces the drawing",
        type=["png", "jpg", "jpeg"], key=f"draw_upload_{ss.get('draw_uploads', 0)}")
    with draw_col:
        st.container(key="draw_hint").caption(
            "Draw one digit, large and centred. Above the canvas: undo, redo and clear (the bin).")
        rgba = sketchpad(pen=stroke, size=CANVAS, key="draw_canvas")
    if upload is not None:
        try:
            rgba = load_upload(upload)
            ss.pop("draw_upload_error", None)
        except DigitLabError as e:  # refused: say why, clear it, and the canvas works again
            ss["draw_upload_error"] = f"That file was not used: {e}"
            ss["draw_uploads"] = ss.get("draw_uploads", 0) + 1
            try:
                st.rerun(scope="fragment")
            except StreamlitAPIException:  # a full run (the first one) reruns in full
                st.rerun()
    try:
        prediction = None if rgba is None else predict_canvas(run, rgba)
    except DigitLabError as e:
        result_col.error(plain(e))
        return
    with result_col:
        refused = ss.pop("draw_upload_error", None)  # where the reading would be, once
        if refused:
            st.error(plain(refused))
        if prediction is None or prediction.digit is None:
            if prediction is not None and prediction.message == TOO_SMALL:
                st.warning(f"{TOO_SMALL[:1].upper()}{TOO_SMALL[1:]}.")
            elif not refused:
                st.info("Draw a digit on the canvas: the model's reading appears here.")
            return
        remember_drawing(rgba)  # the Play page can start from it
        seen_col, metric_col = st.columns(2)
        headline, second = reading_text(prediction)
        metric_col.metric("Prediction", prediction.digit, headline, delta_color="off",
                          delta_arrow="off", border=True)
        if second:
            metric_col.caption(second)
        h, w = prediction.image.shape
        top = MAX_VALUE[run.experiment.data.dataset]
        caption = seen_caption((h, w), len(prediction.views), SURE_ALONE)
        if len(prediction.views) > 1:  # unsure of the drawing: also read narrowed (digits_core.analysis.predict)
            seen = [display_image(v, top, size=size, frame=4) for v, size in zip(prediction.views, (112, 56))]
        else:
            seen = [display_image(prediction.image, top, size=140, frame=4)]
        seen_col.markdown(inline_image(seen[0], caption, tuple(seen[1:])), unsafe_allow_html=True)
        st.markdown(probability_bars(prediction), unsafe_allow_html=True)
        # "Right" / "No, it's a _" keeps the drawing (dashboard.marking); under the bars, so that
        # a phone shows the reading whole right under the canvas
        mark_panel(run, rgba, prediction)
    inside_view(run, prediction, rgba)  # below the reading, drawn after it (dashboard/inside_view.py)


drawing()
