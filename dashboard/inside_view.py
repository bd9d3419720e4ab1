"""Inside the network, for the drawing on the Draw page (and a test image on Evaluate):
every layer's output, which pixels decided, how the drawing was prepared, and where it
lands among the test digits. The numbers come from the engine (`inside`, `saliency`,
`preparation`, `landing`); this module only draws them.

Every picture uses one colour scale, labelled beside it: white is 0, red positive, blue
negative, the ends at the largest |value| of that row. The inside views are drawn after
the reading, in the same fragment, so a stroke's reading arrives first.
"""

from __future__ import annotations

from functools import partial

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import state
from dashboard.frames import DIGIT_COLOURS
from dashboard.pictures import png_data_url
from digits_core.analysis.embedding import FRAME_POINTS, sample_points
from digits_core.analysis.inside import (
    first_filters,
    layer_values,
    strongest,
    unit_scores,
    unit_weights,
)
from digits_core.analysis.landing import land, landscape, neighbours_line
from digits_core.analysis.predict import read_views
from digits_core.analysis.saliency import explain
from digits_core.data.datasets import MAX_VALUE
from digits_core.errors import DigitLabError
from digits_core.images.pictures import display_image, diverging_rgb, mosaic, mosaic_centres
from digits_core.images.preparation import prepare

VIEWS = ("Every layer", "Which pixels decided", "How it was prepared", "Where it lands")
MAP_PX = 30  # about this many pixels per map in a row of maps
UNIT_PX = 14  # pixels per hidden unit in a strip of units


def _key(run) -> str:
    return f"{run.label}|{run.meta.get('updated')}|{id(run.model)}"


def _rgb_html(rgb: np.ndarray, alt: str, width: int | None = None) -> str:
    """A small RGB (or grey) picture, sent at its own size and drawn `width` CSS px wide with
    crisp pixels: the browser scales it, so a stroke's pictures cost little to encode. Both
    shape is given (its aspect ratio, object-fit: fill), as the page's own image styles
    would otherwise draw it at its own size; a narrow column shrinks it to fit."""
    h, w = rgb.shape[:2]
    width = width or w
    size = f"width:100%;max-width:{width}px;aspect-ratio:{w}/{h};height:auto;object-fit:fill;"
    return (f'<img src="{png_data_url(rgb)}" alt="{alt}" style="{size}'
            f'image-rendering:pixelated;border:1px solid #e6e9ef"/>')


def scale_html(top: float, what: str = "") -> str:
    """The colour scale: blue -top, white 0, red +top, labelled."""
    return (f'<span style="display:inline-flex;align-items:center;gap:.3rem;font-size:.75rem;color:#555">'
            f'<span>{-top:.3g}</span><span style="display:inline-block;width:5rem;height:.7rem;border:1px solid #ccc;'
            f'background:linear-gradient(90deg,rgb(33,102,172),#fff,rgb(178,24,43))"></span><span>+{top:.3g}</span>'
            f'<span>(white = 0{", " + what if what else ""})</span></span>')


def _picture(values: np.ndarray, top: float) -> np.ndarray:
    """(h, w) values -> (h, w, 3) on the diverging scale, its ends at -top and +top."""
    return diverging_rgb(values / top if top > 0 else values * 0)


def _row_html(values: np.ndarray, top: float, px: int, alt: str) -> str:
    """One image's stage: maps (C, h, w) as a mosaic, each about px wide; units (K,) as a
    strip of UNIT_PX cells, 32 a row."""
    if values.ndim == 3:
        c, h, w = values.shape
        m = mosaic(values / (top or 1), min(c, 16), gap=1)
        return _rgb_html(diverging_rgb(m), alt, m.shape[1] * max(1, -(-px // max(h, w))))
    k = values.shape[0]
    cols = min(k, 32)
    grid = np.full(-(-k // cols) * cols, np.nan, np.float32)
    grid[:k] = values / (top or 1)
    return _rgb_html(diverging_rgb(grid.reshape(-1, cols)), alt, cols * UNIT_PX)


def _digit_cells(values: np.ndarray, top: float, fmt: str) -> str:
    """Ten values (logits or probabilities) as cells labelled 0..9, coloured on the scale."""
    rgb = diverging_rgb(values / (top or 1))
    cells = "".join(f'<div style="text-align:center;width:3.2rem"><div style="background:rgb{tuple(int(c) for c in rgb[d])};'
                    f'border:1px solid #ccc;height:1.6rem;line-height:1.6rem;font-size:.75rem">{v:{fmt}}</div>'
                    f'<div style="font-size:.8rem">{d}</div></div>' for d, v in enumerate(values))
    return f'<div style="display:flex;gap:2px">{cells}</div>'


WHAT = {"input": "the image as the model gets it, after normalising",
        "conv": "each filter slid over the maps before: one map per filter",
        "norm": "batch norm: each channel shifted and scaled by its training statistics",
        "act": "the activation: what passes on to the next layer",
        "pool": "max-pooling: the largest value of each small block, a map a quarter the size",
        "dense": "weighted sums of everything before, one per unit",
        "logits": "the raw score of each digit 0..9",
        "probs": "the softmax of the logits: the reading"}


def layers_panel(run, image: np.ndarray, presenter: bool) -> None:
    x = run.normalizer(np.asarray(image, np.float32)[None])
    stages = layer_values(run.model, x)
    if not np.isfinite(stages[-1].values).all():
        st.warning("This model's outputs are not finite numbers (it diverged): there is nothing to show.")
        return
    st.caption("Each row is what one layer hands to the next for your drawing, top to bottom. "
               "Colours: white is 0, red positive, blue negative; each row's ends are its largest |value|.")
    html = []
    for i, s in enumerate(stages):
        v = s.values[0]
        top = float(np.abs(v).max()) or 1.0
        shape = "x".join(str(n) for n in v.shape)
        label = (f'<div style="font-weight:600">{s.name} <span style="font-weight:400;color:#808495">'
                 f'({shape})</span></div><div style="font-size:.8rem;color:#555">{WHAT[s.kind]}</div>')
        if s.kind in ("logits", "probs"):
            pic = _digit_cells(v, top, ".0%" if s.kind == "probs" else ".1f")
        else:
            px = 2 * MAP_PX if presenter else MAP_PX  # presenter mode: maps twice the size
            pic = _rgb_html(_picture(v[0], top), s.name, 84) if s.kind == "input" else _row_html(v, top, px, s.name)
        extra = ""
        if i == 1 and s.source is not None:  # the first layer: its filters beside the maps they made
            extra = _filters_html(_key(run), run)
        html.append(f'<div class="inside-layer" style="margin:.4rem 0">{label}{pic}<div>{scale_html(top)}</div>'
                    f'{extra}</div>')
    st.markdown(f'<div class="inside-layers">{"".join(html)}</div>', unsafe_allow_html=True)
    unit_panel(run, stages)


@st.cache_resource(max_entries=6, show_spinner=False)
def _filters_html(key: str, _run) -> str:
    """The first layer's filters as a picture: the same for every drawing, so made once per model."""
    filters = first_filters(_run.model, 32)
    m = mosaic(filters, min(len(filters), 16), gap=1)
    width = m.shape[1] * max(1, -(-MAP_PX // max(filters.shape[1:])))
    return ('<div style="font-size:.8rem;color:#555;margin-top:.3rem">the filters that made them '
            '(each to its own largest |weight|):</div>' + _rgb_html(diverging_rgb(m), "first-layer filters", width))


def unit_panel(run, stages) -> None:
    """A chosen map or unit: its weights as a picture, and the test images that drive it hardest."""
    choices = {s.name: s for s in stages if s.source is not None and s.kind != "logits"}
    if not choices:
        return
    left, right = st.columns([1, 2])
    name = left.selectbox("Look at a layer's map or unit", list(choices), key="inside_layer")
    s = choices[name]
    count = s.values.shape[1]
    unit = left.number_input(f"which one (0..{count - 1})", 0, count - 1, 0, key="inside_unit")
    unit = min(int(unit), count - 1)
    what = "map" if s.maps else "unit"
    left.caption(f"Or click a {what} in the picture below.")
    chart = f"inside_pick_{list(choices).index(name)}"
    left.plotly_chart(pick_figure(s.values[0], unit), key=chart, on_select=partial(_picked, chart),
                      selection_mode="points", config={"displayModeBar": False})
    src = s.source
    before = _input_shape(stages, src)
    pic = unit_weights(run.model, src, unit, before)
    right.markdown(f"**{src}, {'map' if s.maps else 'unit'} {unit}: its weights** (red: ink there pushes it "
                   f"up, blue: down)" + "<br>" + _rgb_html(_picture(pic, 1.0), "weights", 140)
                   + "<br>" + scale_html(1.0, "scaled to its largest |weight|"), unsafe_allow_html=True)
    try:
        data = state.run_data(run)
        scores = _scores(_key(run), run, data)
    except DigitLabError as e:
        right.caption(f"Its strongest test images need the run's test set: {e}")
        return
    images, labels = scores["images"], scores["labels"]
    best = strongest(scores["scores"][name], unit, 8)
    top = MAX_VALUE[run.experiment.data.dataset]
    right.markdown("**The test images that drive it hardest** (of the 500 fixed test points)<br>"
                   + " ".join(_grey_html(images[k], top, f"{labels[k]}") for k in best), unsafe_allow_html=True)


PICK_COLS = 8  # maps a row in the clickable picture (units: 16): narrow enough for the column beside the detail


def pick_figure(values: np.ndarray, chosen: int) -> go.Figure:
    """One layer's maps (C, h, w) or units (K,) for this drawing, as a picture whose tiles are
    clickable (an invisible point on each, its unit in customdata); the chosen one outlined."""
    maps = values if values.ndim == 3 else values[:, None, None]
    k, h, w = maps.shape
    cols, gap = (PICK_COLS, 1) if values.ndim == 3 else (2 * PICK_COLS, 0)
    top = float(np.abs(maps).max()) or 1.0
    rgb = diverging_rgb(mosaic(maps / top, cols, gap))
    at = mosaic_centres(k, (h, w), cols, gap)
    what = "map" if values.ndim == 3 else "unit"
    fig = go.Figure(go.Image(z=rgb, hoverinfo="skip"))
    fig.add_scatter(x=at[:, 0], y=at[:, 1], mode="markers", customdata=np.arange(k),
                    marker={"symbol": "square", "size": 12, "opacity": 0}, selected={"marker": {"opacity": 0}},
                    unselected={"marker": {"opacity": 0}}, hovertemplate=f"{what} %{{customdata}}<extra></extra>")
    x, y = at[chosen]
    fig.add_shape(type="rect", x0=x - w / 2, x1=x + w / 2, y0=y - h / 2, y1=y + h / 2,
                  line={"color": "black", "width": 2})
    rows, width = rgb.shape[:2]
    fig.update_layout(height=max(80, min(400, int(260 * rows / width))), margin={"l": 0, "r": 0, "t": 0, "b": 0},
                      xaxis={"visible": False, "range": [-0.5, width - 0.5]}, dragmode=False,
                      yaxis={"visible": False, "range": [rows - 0.5, -0.5], "scaleanchor": "x"}, showlegend=False)
    return fig


def _picked(chart: str) -> None:
    """A click on the picture of maps or units: that one becomes the one looked at."""
    points = st.session_state[chart].selection.points
    if points:
        st.session_state["inside_unit"] = int(points[0]["customdata"] if "customdata" in points[0]
                                              else points[0]["point_index"])


def _grey_html(image, top, caption: str) -> str:
    return (f'<figure style="display:inline-block;margin:0 .2rem;text-align:center"><img src="'
            f'{png_data_url(display_image(image, top, size=56, frame=2))}" style="image-rendering:pixelated"/>'
            f'<figcaption style="font-size:.8rem">{caption}</figcaption></figure>')


def _input_shape(stages, source: str) -> tuple[int, ...]:
    """The shape one image has on the way into weight layer `source` (what its weights read)."""
    before = stages[0].values.shape[1:]
    for s in stages[1:]:
        if s.name == source:
            return tuple(before)
        before = s.values.shape[1:]
    return tuple(before)


@st.cache_resource(max_entries=6, show_spinner="Walking 500 test images through the network...")
def _scores(key: str, _run, _data) -> dict:
    idx = sample_points(_data.labels_test, FRAME_POINTS, _run.experiment.data.seed)
    images = _data.images_test[idx]
    return {"idx": idx, "images": images, "labels": _data.labels_test[idx],
            "scores": unit_scores(_run.model, _run.normalizer(images))}


def saliency_panel(run, image: np.ndarray, px: int = 168) -> None:
    sal = explain(run.model, run.normalizer, np.asarray(image, np.float32))
    if sal is None:
        st.warning("This model's outputs are not finite numbers (it diverged): no map to show.")
        return
    top = MAX_VALUE[run.experiment.data.dataset]
    cols = st.columns(1 + len(sal.classes))
    cols[0].markdown("**the input**<br>" + _rgb_html(display_image(image, top, size=1), "input", px),
                     unsafe_allow_html=True)
    for col, c, m in zip(cols[1:], sal.classes, sal.maps):
        col.markdown(f"**towards {c}** ({sal.probs[c]:.0%})<br>" + _rgb_html(_picture(m, sal.scale), f"why {c}", px),
                     unsafe_allow_html=True)
    why = (f"why a {sal.classes[0]} and not a {sal.classes[1]}: compare the two maps. "
           if len(sal.classes) > 1 else "")
    st.markdown(scale_html(sal.scale, "logit units") + "<br>" + f'<span style="font-size:.85rem">Red pixels pushed '
                f"the model towards that digit, blue ones away from it; white did nothing. {why}Integrated gradients: "
                "each pixel's ink times how much the digit's score rose as the ink faded in; the colours add up to the "
                f"score's change from a blank image to within {max(sal.gaps):.0%}. A blank pixel is always "
                "white: the map cannot say what ink there would have done.</span>", unsafe_allow_html=True)


def preparation_panel(run, rgba: np.ndarray, narrowed: bool) -> None:
    dataset = run.experiment.data.dataset
    a, b = st.columns(2)
    centre = a.toggle("Centre by centre of mass", True, key="inside_centre", disabled=dataset != "mnist")
    size = b.toggle("Scale into the 20x20 box", True, key="inside_size", disabled=dataset != "mnist")
    p = prepare(rgba, dataset, centre=centre, size=size, narrowed=narrowed)
    cells = []
    for i, s in enumerate(p.steps):
        grey = display_image(s.image, 1.0, size=96, frame=2)
        cells.append(f'<figure style="display:inline-block;vertical-align:top;width:9.5rem;margin:0 .4rem .4rem 0">'
                     f'<img src="{png_data_url(grey)}" style="width:96px;image-rendering:pixelated"/>'
                     f'<figcaption style="font-size:.8rem"><b>{i + 1}. {s.name}</b><br>{s.line}</figcaption></figure>')
    if p.image is not None:
        x = run.normalizer(p.image[None])[0]
        t = float(np.abs(x).max()) or 1.0
        cells.append(f'<figure style="display:inline-block;vertical-align:top;width:9.5rem;margin:0">'
                     f'{_rgb_html(_picture(x, t), "normalised", 96)}<figcaption style="font-size:.8rem">'
                     f'<b>{len(p.steps) + 1}. normalised</b><br>As the training images were '
                     f'({run.experiment.data.normalization}); {scale_html(t)}</figcaption></figure>')
    st.markdown("".join(cells), unsafe_allow_html=True)
    if p.image is None:
        st.info("Nothing left to read once the steps found no ink.")
    elif p.changed:
        probs = read_views(run, p.image[None])
        d = int(probs.argmax())
        st.markdown(f"**With {'centring' if not centre else ''}{' and ' if not centre and not size else ''}"
                    f"{'size normalisation' if not size else ''} off, the model reads {d} ({probs[d]:.0%} sure).** "
                    "It learned from digits that were all scaled and centred this way: a digit elsewhere or of "
                    "another size is unlike anything it saw.")


@st.cache_resource(max_entries=6, show_spinner="Mapping the 500 test points (PCA and t-SNE, once per model)...")
def _landscape(key: str, _run, _data):
    return landscape(_run.model, _run.normalizer, _data.images_test, _data.labels_test,
                     seed=_run.experiment.data.seed)


def landing_panel(run, image: np.ndarray, what: str = "drawing", presenter: bool = False, key: str = "") -> None:
    try:
        data = state.run_data(run)
        scape = _landscape(_key(run), run, data)
        where = land(scape, run.model, run.normalizer, np.asarray(image, np.float32))
    except DigitLabError as e:
        st.info(f"Where it lands needs the run's test set: {e}")
        return
    except ValueError as e:
        st.warning(str(e))
        return
    method = st.radio("Map", ["t-SNE", "PCA"], horizontal=True, key=f"inside_map{key}")
    xy, star = (scape.tsne_xy, where.tsne) if method == "t-SNE" else (scape.pca, where.pca)
    fig = go.Figure()
    for d in range(10):
        m = scape.labels == d
        fig.add_scatter(x=xy[m, 0], y=xy[m, 1], mode="markers", name=str(d),
                        marker={"size": 6, "color": DIGIT_COLOURS[d], "opacity": 0.75})
    fig.add_scatter(x=[star[0]], y=[star[1]], mode="markers", name=f"your {what}",
                    marker={"symbol": "star", "size": 24 if presenter else 20, "color": "black",
                            "line": {"color": "white", "width": 1.5}})
    size = 16 if presenter else 12
    fig.update_layout(height=420, margin={"l": 0, "r": 0, "t": 10, "b": 0}, xaxis={"visible": False},
                      yaxis={"visible": False}, legend={"title": "test digit", "font": {"size": size}})
    left, right = st.columns([3, 2])
    left.plotly_chart(fig, key=f"inside_landing_chart{key}")
    left.caption(f"The 500 fixed test points by the model's last hidden layer ({method}); the star is your {what}, "
                 "placed without moving the others (t-SNE: openTSNE's transform; PCA: the same projection).")
    top = MAX_VALUE[run.experiment.data.dataset]
    digit = int(run.model.probs(run.normalizer(np.asarray(image, np.float32)[None]))[0].argmax())
    right.markdown(f"**Its {len(where.nearest)} nearest test images** (by the last layer)<br>"
                   + " ".join(_grey_html(scape.images[k], top, f"a {scape.labels[k]}") for k in where.nearest)
                   + f"<br>{neighbours_line(scape.labels[where.nearest], digit)}.", unsafe_allow_html=True)


def inside_view(run, prediction, rgba) -> None:
    """The Draw page's inside views for a reading (`predict.Prediction`) of `rgba`."""
    if prediction is None or prediction.digit is None or rgba is None:
        return
    presenter = state.session().presenter
    view = st.segmented_control("Inside the network", VIEWS, default=VIEWS[0], key="inside_view")
    try:
        if view == VIEWS[0]:
            layers_panel(run, prediction.image, presenter)
        elif view == VIEWS[1]:
            saliency_panel(run, prediction.image)
        elif view == VIEWS[2]:
            preparation_panel(run, rgba, narrowed=prediction.views is not None and len(prediction.views) > 1)
        elif view == VIEWS[3]:
            landing_panel(run, prediction.image, presenter=presenter)
    except DigitLabError as e:
        st.error(str(e))


def test_image_view(run, image: np.ndarray, caption: str, key: str = "_eval") -> None:
    """Evaluate's view of one test image: which pixels decided, and where it lands (`key`
    tells two such views on one page apart)."""
    st.markdown(f"**{caption}**")
    saliency_panel(run, image, px=140)
    landing_panel(run, image, what="test image", presenter=state.session().presenter, key=key)


__all__ = ["VIEWS", "inside_view", "landing_panel", "saliency_panel", "scale_html", "test_image_view"]
