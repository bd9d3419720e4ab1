"""Embedding: test images placed by how alike the model's last hidden layer sees them."""

import plotly.express as px
import streamlit as st

from dashboard import state
from dashboard.frames import DIGIT_COLOURS
from dashboard.live import embedding_panel
from dashboard.plain import plain
from dashboard.polling import crowded, watchers
from digits_core.analysis.embedding import DEFAULT_POINTS, MAX_POINTS, embedding_for_run
from digits_core.errors import DigitLabError
from digits_core.images.pictures import display_image

METHODS = {"t-SNE": "tsne", "PCA": "pca"}
KEPT = 6  # embeddings kept per session; each is a few hundred kB
DIGITS = [str(d) for d in range(10)]

st.title("Embedding")
st.caption(
    "Each dot is a test image, placed by its features in the model's last hidden layer. "
    "t-SNE keeps neighbours together: images the model sees alike land close, so tight, "
    "separate clusters mean features that tell the digits apart; the distances between "
    "clusters and their sizes mean little. PCA is the straight linear projection (instant)."
)
info = state.pick_run(include_running=True)
if info is None:
    st.info(state.NO_MODEL)
    st.stop()
session = state.session()
running = info.name in state.runner().active()
frames = state.runner().frames(info.name)
if frames is not None and len(frames["steps"]):
    st.subheader("As it learned" if not running else "As it learns (live)")
    st.caption(f"The last hidden layer of {len(frames['labels']):,} fixed test points, re-embedded while it trained"
               + (" (t-SNE from the previous frame, so points move smoothly)." if len(frames["tsne"])
                  else " (PCA). Tick 'Live t-SNE' on the Train page for a t-SNE.")
               + " Crosses are the points it reads wrong; the slider replays the frames.")
    st.fragment(run_every=crowded(2.0, watchers()) if running else None)(embedding_panel)(
        info.name, session.presenter, key="embedding_live", live=running)
if running or not info.ok:
    st.info("The full embedding below is computed once the run has a final model.")
    st.stop()
try:
    run = state.load(info)
except DigitLabError as e:
    st.error(plain(e))
    st.stop()
st.subheader("Now")

left, mid, right, last = st.columns(4)
method = left.radio("Method", list(METHODS), horizontal=True)
n_points = mid.slider("Points", 100, MAX_POINTS, DEFAULT_POINTS, step=100)
perplexity = right.slider("Perplexity", 5, 100, 30, disabled=method == "PCA",
                          help="t-SNE's effective number of neighbours per point.")
seed = last.number_input("Seed", 0, 1_000_000, 0)

settings = (info.name, info.meta.get("updated"), METHODS[method],
            n_points, seed, perplexity if method == "t-SNE" else None)
cache = st.session_state.setdefault("embeddings", {})
if st.button("Compute", type="primary") and settings not in cache:
    bar = st.progress(0.0, text=f"Computing {method} of up to {n_points} test images...")
    try:
        data = state.run_data(run)
        cache[settings] = embedding_for_run(
            run, data, method=METHODS[method], n_points=n_points, seed=seed,
            perplexity=perplexity, progress=lambda f: bar.progress(f, text=f"{method}: {f:.0%}"),
        )
    except (DigitLabError, ValueError) as e:
        st.error(plain(e))
        st.stop()
    bar.empty()
    while len(cache) > KEPT:
        cache.pop(next(iter(cache)))
result = cache.get(settings)
if result is None:
    st.info("Choose the settings and press Compute.")
    st.stop()

st.caption(f"{len(result.labels)} test images, {int(result.wrong.sum())} misclassified (x).")
fig = px.scatter(
    result.columns(), x="x", y="y", color="true", symbol="status",
    symbol_map={"correct": "circle", "misclassified": "x"},
    category_orders={"true": DIGITS, "status": ["correct", "misclassified"]},
    hover_data={"x": False, "y": False, "status": False, "predicted": True,
                "confidence": ":.0%", "test image": True},
    custom_data=["point"], height=620, color_discrete_sequence=DIGIT_COLOURS,  # as in the frames above
)
fig.update_traces(marker=dict(size=6, opacity=0.8))
fig.update_traces(marker=dict(size=10, line=dict(color="black", width=1.5)),
                  selector=lambda t: t.name.endswith("misclassified"))
fig.update_layout(xaxis=dict(visible=False), yaxis=dict(visible=False),
                  legend_title_text="true digit, status")
event = st.plotly_chart(fig, on_select="rerun", selection_mode=("points", "box", "lasso"),
                        key="embedding_chart")

points = [p["customdata"][0] for p in event.selection.points]
if not points:
    wrong = [k for k in range(len(result.labels)) if result.wrong[k]]
    st.caption("Click a point, or draw a box or lasso, to see the images; or pick a mistake:")
    choice = st.selectbox("Misclassified point", wrong, index=None,
                          format_func=lambda k: result.example(k).caption)
    points = [] if choice is None else [choice]
examples = [result.example(k) for k in points[:24]]
if examples:
    st.image([display_image(e.image, result.max_value, frame=4) for e in examples],
             caption=[f"#{e.index}: {e.caption}" for e in examples], output_format="PNG")
