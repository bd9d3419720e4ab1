"""The Play page's pictures and sentences: the reading of a painted-over test digit (or of
the person's last drawing on the Draw page), its saliency, the fewest strokes that changed
it, and a nudge beside the original."""

from __future__ import annotations

import numpy as np
import streamlit as st
from PIL import Image

from dashboard.draw import probability_bars
from dashboard.inside_view import saliency_panel
from dashboard.pictures import png_data_url
from digits_core.analysis.play import flip_line
from digits_core.analysis.predict import Prediction, predict_canvas
from digits_core.analysis.saliency import nudge
from digits_core.images.pictures import display_image

PAD = 280  # the canvas, pixels a side: a whole multiple of 28 and of 8
LAST_DRAWING = "play_last_drawing"  # st.session_state: the Draw page's last canvas read (RGBA), kept across pages


def remember_drawing(rgba: np.ndarray) -> None:
    """The Draw page keeps the canvas it just read, for Play to start from (a plain
    session-state key, not a widget's: it survives moving between pages)."""
    st.session_state[LAST_DRAWING] = rgba


def last_drawing(run) -> Prediction | None:
    """The person's last drawing as `run` reads it (prepared for its dataset, as on the Draw
    page), or None when there is none this session or it holds no readable digit."""
    rgba = st.session_state.get(LAST_DRAWING)
    if rgba is None:
        return None
    p = predict_canvas(run, rgba)
    return p if p.digit is not None else None


def background(digit: np.ndarray, top: float) -> Image.Image:
    """The test digit as the canvas's background: white ink on black, PAD px a side."""
    grey = display_image(digit, top, size=PAD)
    return Image.fromarray(grey).resize((PAD, PAD), Image.Resampling.NEAREST).convert("RGB")


def reading(run, image: np.ndarray, start: int, strokes: int, key: str) -> int:
    """Show the reading of `image` (raw pixels), its bars and the fewest strokes that
    changed it; returns the digit read."""
    probs = run.model.probs(run.normalizer(image[None]))[0]
    if not np.isfinite(probs).all():
        st.warning("This model's outputs are not finite numbers (it diverged): it cannot read anything.")
        return start
    digit = int(probs.argmax())
    history = st.session_state.setdefault(key, {})
    history[strokes] = digit
    st.metric("The model reads", digit, f"{probs[digit]:.0%} sure", delta_color="off", delta_arrow="off", border=True)
    st.markdown(probability_bars(Prediction(digit, probs, image, "")), unsafe_allow_html=True)
    line = flip_line(start, [history[n] for n in sorted(history) if n > 0])
    if line:
        st.success(f"{line}.")
    elif strokes:
        st.caption(f"{strokes} stroke{'s' if strokes != 1 else ''} so far: still a {start}.")
    return digit


def nudge_panel(run, image: np.ndarray, top: float) -> None:
    n = nudge(run.model, run.normalizer, image, top)
    if n is None:
        st.warning("This model's outputs are not finite numbers (it diverged): nothing to nudge.")
        return
    before, after = (display_image(x, top, size=140, frame=2) for x in (image, n.image))
    st.markdown(
        f'<div style="display:flex;gap:1rem"><figure style="margin:0"><img src="{png_data_url(before)}" '
        f'style="image-rendering:pixelated"/><figcaption>before: read as {n.was}</figcaption></figure>'
        f'<figure style="margin:0"><img src="{png_data_url(after)}" style="image-rendering:pixelated"/>'
        f'<figcaption>nudged: read as <b>{n.digit}</b> ({n.probs[n.digit]:.0%})</figcaption></figure></div>',
        unsafe_allow_html=True)
    moved = "changed its mind" if n.digit != n.was else "held on (try again on the nudged digit, or draw first)"
    st.caption(f"A few steps of projected gradient descent on the pixels, none moved by more than "
               f"{n.largest_change:.0%} of the range: the model {moved}. To you it is the same digit as before the nudge: the change is a faint "
               "haze spread over many pixels, each pushed the way the model's gradient says, which a person's eye "
               "ignores; the model adds up every pixel's small push, so together they outweigh the strokes.")


__all__ = ["LAST_DRAWING", "PAD", "background", "last_drawing", "nudge_panel", "reading", "remember_drawing",
           "saliency_panel"]
