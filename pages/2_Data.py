"""Data: choose the dataset and how it is split, subset and normalised; look at it."""

import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.charts import digit_grid
from dashboard.mnist_panel import mnist_folder_input, mnist_here
from digits_core.config import DataConfig
from digits_core.data.datasets import DatasetSummary, dataset_summary, load_dataset
from digits_core.errors import DigitLabError

DATASETS = {
    "digits": "Bundled digits (8x8, 1,797 images, always here)",
    "mnist": "MNIST (28x28, 70,000 images)",
}
SPLITS = {
    "official": "official (60,000 train / 10,000 test)",
    "stratified": "stratified (every class keeps its share)",
    "random": "random (seeded shuffle)",
    "ordered": "ordered (the last part is the test set)",
}

st.title("Data")
cfg = state.data_config()

dataset = st.radio(
    "Dataset",
    list(DATASETS),
    index=list(DATASETS).index(cfg.dataset),
    format_func=DATASETS.get,
    key="data_dataset",
)

mnist_dir = None
if dataset == "mnist":
    mnist_dir = mnist_folder_input(cfg)
    if not mnist_here(mnist_dir):
        st.stop()

splits = list(SPLITS) if dataset == "mnist" else list(SPLITS)[1:]
default_split = cfg.split if cfg.dataset == dataset and cfg.split in splits else splits[0]
c1, c2, c3 = st.columns(3)
split = c1.selectbox(
    "Split",
    splits,
    index=splits.index(default_split),
    format_func=SPLITS.get,
    key=f"data_split_{dataset}",
)
test_fraction = c1.slider(
    "Test fraction",
    0.05,
    0.5,
    float(cfg.test_fraction),
    0.05,
    key="data_test_fraction",
    disabled=split == "official",
    help="Share of the images held out for testing.",
)
train_size = c2.number_input(
    "Training images (0 = all)",
    0,
    70_000,
    int(cfg.train_size or 0),
    100,
    key="data_train_size",
    help="Train on a stratified subset of this many images.",
)
normalization = c2.selectbox(
    "Normalisation",
    ["unit", "standardize", "raw"],
    index=["unit", "standardize", "raw"].index(cfg.normalization),
    key="data_normalization",
    format_func={
        "unit": "unit (pixels scaled to 0..1)",
        "standardize": "standardise (per pixel, train statistics)",
        "raw": "raw pixel values",
    }.get,
)
seed = c3.number_input("Seed", 0, 2**31 - 1, int(cfg.seed), key="data_seed")

new = DataConfig(
    dataset=dataset,
    mnist_dir=mnist_dir,
    split=split,
    test_fraction=float(test_fraction),
    train_size=int(train_size) or None,
    normalization=normalization,
    seed=int(seed),
)


@st.cache_data(max_entries=8, show_spinner="Loading the data…")
def summary(cfg: DataConfig) -> DatasetSummary:
    return dataset_summary(load_dataset(cfg))


try:
    s = summary(new)
except DigitLabError as e:
    st.error(str(e))
    st.stop()
if new.train_size is not None and s.n_train < new.train_size:  # more than there are: all of them
    st.info(f"This split has {s.n_train:,} training images, fewer than the {new.train_size:,} asked "
            "for: all of them are used.")
    new.train_size = None
state.set_data_config(new)
state.show_data_line()

h, w = s.image_shape
st.success(
    f"Using {DATASETS[dataset].split(' (')[0]}: {s.n_train:,} training and {s.n_test:,} "
    f"test images of {h}x{w} pixels. The Train page trains on these settings."
)

left, right = st.columns(2)
with left:
    st.subheader("Samples from the training set")
    st.plotly_chart(digit_grid(s.mosaic, s.image_shape), key="data_grid")
with right:
    st.subheader("Class distribution")
    bars = go.Figure(
        [
            go.Bar(name="train", x=list(range(10)), y=s.train_counts),
            go.Bar(name="test", x=list(range(10)), y=s.test_counts),
        ]
    )
    bars.update_layout(
        barmode="group",
        xaxis={"title": "digit", "dtick": 1},
        yaxis_title="images",
        margin={"t": 10},
    )
    st.plotly_chart(bars, key="data_classes")

st.subheader("Mean image per class")
means = px.imshow(s.means, facet_col=0, color_continuous_scale="gray_r", aspect="equal")
means.for_each_annotation(lambda a: a.update(text=a.text.split("=")[-1]))
means.update_layout(coloraxis_showscale=False, margin={"l": 0, "r": 0, "t": 30, "b": 0}, height=200)
means.update_xaxes(showticklabels=False)
means.update_yaxes(showticklabels=False)
st.plotly_chart(means, key="data_means")
