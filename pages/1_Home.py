"""Home: what Digit Lab is, what the digits look like, and one-click presets."""

import streamlit as st

from dashboard import state
from dashboard.pictures import digit_grid_html
from dashboard.prefetch import prefetch_plotly_soon
from digits_core.data.datasets import load_digits
from digits_core.data.mnist import mnist_available
from digits_core.images.pictures import class_mosaic
from digits_core.presets import CLASSIC, FAST, PRESETS

st.title("Digit Lab")
st.write(
    "Digit Lab lets you train, inspect and compare neural networks that read handwritten "
    "digits, from a NumPy network written from scratch to a PyTorch CNN. Pick a preset below "
    "or set up your own run on the Data and Train pages, then evaluate it, look at its "
    "embedding and test it on your own drawings."
)


@st.cache_data
def samples():
    images, labels = load_digits()
    return class_mosaic(images, labels), images.shape[1:], len(labels)


mosaic, shape, n_images = samples()
left, right = st.columns([2, 3])
with left:
    st.subheader("The bundled digits")
    st.html(digit_grid_html(mosaic, shape))
    st.caption(f"{n_images:,} scanned digits, 8x8 pixels, 16 grey levels; one row per label.")

with right:
    st.subheader("Presets")
    st.caption(
        "A preset fills in data, model and training settings and opens the Train page; "
        "press **Start** there to train it."
    )
    mnist_ok, _ = mnist_available(state.mnist_dir())

    def preset_button(preset, key: str) -> None:
        needs_mnist = preset.experiment.data.dataset == "mnist"
        clicked = st.button(
            preset.title, key=key, disabled=needs_mnist and not mnist_ok, width="stretch"
        )
        st.caption(preset.description)
        if needs_mnist and not mnist_ok:
            st.page_link(
                "pages/2_Data.py",
                label="Needs MNIST, which is not here yet: get it on the Data page",
            )
        if clicked:
            state.set_experiment(preset.build())
            st.switch_page("pages/3_Train.py")

    preset_button(FAST, "preset_fast")
    with st.expander("The classic systems (S1a to S5)", expanded=True):
        for name in CLASSIC:
            preset_button(PRESETS[name], f"preset_{name}")

prefetch_plotly_soon()  # the Train page's charts, loaded while the person reads this one
