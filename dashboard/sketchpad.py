"""The Draw page's canvas: a small Streamlit component (st.components.v2) that sends the
drawing the moment the pen lifts.

Why not streamlit-drawable-canvas: it sends a stroke 200 ms after the pen lifts (a
debounce for its other drawing modes), which alone was most of the time from a stroke to
its reading. This pad only draws freehand, white on black, with undo, redo and clear; each
change sends the canvas as a PNG data URL (a few kB), or None when nothing is left on it.
"""

from __future__ import annotations

import base64
import binascii

import numpy as np
import streamlit as st

from digits_core.errors import DrawingError
from digits_core.images.imagefile import load_image_file

PNG_PREFIX = "data:image/png;base64,"
MAX_PAD_SIDE = 1024  # pixels a side of a drawing the page accepts (the pad is 280)
MAX_PAD_BYTES = 2 * 1024 * 1024  # a 280x280 drawing is a few kB; a browser could send anything

def _icon(path: str) -> str:
    return ('<svg viewBox="0 0 24 24" width="16" height="16" fill="none" stroke="currentColor" '
            f'stroke-width="2" stroke-linecap="round" stroke-linejoin="round"><path d="{path}"/></svg>')


_HTML = f"""<div class="pad">
  <div class="pad-tools" role="toolbar" aria-label="Canvas tools">
    <button type="button" data-act="undo" aria-label="Undo" title="Undo">{_icon("M9 14 4 9l5-5M4 9h10a6 6 0 0 1 0 12h-3")}</button>
    <button type="button" data-act="redo" aria-label="Redo" title="Redo">{_icon("M15 14l5-5-5-5M20 9H10a6 6 0 0 0 0 12h3")}</button>
    <button type="button" data-act="clear" aria-label="Clear the canvas" title="Clear">{_icon("M3 6h18M8 6V4h8v2M6 6l1 14h10l1-14")}</button>
  </div>
  <canvas class="pad-canvas" aria-label="Drawing canvas"></canvas>
</div>"""

_CSS = """
.pad { display: inline-block; }
.pad-tools { display: flex; gap: .25rem; margin-bottom: .25rem; }
.pad-tools button { display: flex; padding: .3rem .45rem; cursor: pointer;
  border: 1px solid #d0d3da; border-radius: .35rem; background: #fff; color: #31333f; }
.pad-tools button:disabled { opacity: .35; cursor: default; }
.pad-canvas { display: block; touch-action: none; cursor: crosshair; background: #000; }
"""

# One pad per mount, kept across reruns (the function runs again with new data on each).
_JS = """
const PADS = new WeakMap();

function makePad(root) {
  const canvas = root.querySelector(".pad-canvas");
  const ctx = canvas.getContext("2d");
  const pad = { strokes: [], undone: [], current: null, pen: 18, send: null, size: 0, canvas };

  const ink = (pen) => {
    ctx.strokeStyle = "#ffffff"; ctx.lineWidth = pen; ctx.lineCap = "round"; ctx.lineJoin = "round";
  };
  const trace = (s) => {
    ink(s.pen); ctx.beginPath(); ctx.moveTo(s.pts[0][0], s.pts[0][1]);
    for (const p of s.pts) ctx.lineTo(p[0], p[1]);
    if (s.pts.length === 1) ctx.lineTo(s.pts[0][0] + 0.01, s.pts[0][1]);  // a click: a dot
    ctx.stroke();
  };
  const paint = () => {
    ctx.fillStyle = "#000000"; ctx.fillRect(0, 0, canvas.width, canvas.height);
    for (const s of pad.strokes) trace(s);
  };
  const tools = () => {  // the bin stays enabled: on an empty pad it does nothing
    root.querySelector('[data-act="undo"]').disabled = pad.strokes.length === 0;
    root.querySelector('[data-act="redo"]').disabled = pad.undone.length === 0;
  };
  const send = () => {
    tools();
    pad.send("drawing", pad.strokes.length ? canvas.toDataURL("image/png") : null);
  };
  const at = (e) => {
    const r = canvas.getBoundingClientRect();
    return [(e.clientX - r.left) * canvas.width / r.width, (e.clientY - r.top) * canvas.height / r.height];
  };

  canvas.addEventListener("pointerdown", (e) => {
    if (e.button !== 0) return;
    canvas.setPointerCapture(e.pointerId);
    pad.current = { pen: pad.pen, pts: [at(e)] };
    trace(pad.current);
  });
  canvas.addEventListener("pointermove", (e) => {
    const s = pad.current;
    if (!s) return;
    const q = s.pts[s.pts.length - 1], p = at(e);
    s.pts.push(p);
    ink(s.pen); ctx.beginPath(); ctx.moveTo(q[0], q[1]); ctx.lineTo(p[0], p[1]); ctx.stroke();
  });
  const lift = () => {
    if (!pad.current) return;
    pad.strokes.push(pad.current); pad.current = null; pad.undone = [];
    paint(); send();
  };
  canvas.addEventListener("pointerup", lift);
  canvas.addEventListener("pointercancel", lift);
  root.querySelector(".pad-tools").addEventListener("click", (e) => {
    const act = e.target.closest("button")?.dataset.act;
    if (act === "undo" && pad.strokes.length) pad.undone.push(pad.strokes.pop());
    else if (act === "redo" && pad.undone.length) pad.strokes.push(pad.undone.pop());
    else if (act === "clear" && pad.strokes.length) { pad.strokes = []; pad.undone = []; }
    else return;
    paint(); send();
  });
  pad.resize = (size) => {
    if (size === pad.size) return;
    pad.size = size; canvas.width = canvas.height = size;
    canvas.style.width = canvas.style.height = size + "px";
    paint(); tools();
  };
  canvas.dataset.ready = "true";  // listening: what a test waits for before it draws
  return pad;
}

export default function (component) {
  const { data, parentElement, setStateValue } = component;
  let pad = PADS.get(parentElement);
  if (!pad) {
    pad = makePad(parentElement.querySelector(".pad"));
    PADS.set(parentElement, pad);
  }
  pad.send = setStateValue;
  pad.pen = data.pen;
  pad.canvas.dataset.pen = String(data.pen);  // the pen in use: what a test waits for after changing it
  pad.resize(data.size);
}
"""

_component = None


def sketchpad(*, pen: int, size: int, key: str) -> np.ndarray | None:
    """Show the pad (size x size px, a round pen `pen` px wide) and return its drawing:
    (size, size, 4) RGBA uint8, white strokes on opaque black; None while it is empty."""
    global _component
    if _component is None:  # registered on first use: importing this module needs no runtime
        _component = st.components.v2.component(
            "digitlab.sketchpad", html=_HTML, css=_CSS, js=_JS, isolate_styles=True)
    result = _component(data={"pen": pen, "size": size}, key=key, default={"drawing": None},
                        on_drawing_change=lambda: None, width="content", height="content")
    try:
        return decode_data_url(result.get("drawing"))
    except DrawingError as e:  # what came is not the pad's drawing (a tampered client): say so
        st.error(f"The canvas sent something that could not be read: {e}. Clear it and draw again.")
        return None


def decode_data_url(url: object) -> np.ndarray | None:
    """The pad's PNG data URL -> its pixels (H, W, 4) RGBA uint8; None for an empty pad.

    The value comes from a browser, so it is read as any upload is: anything but a PNG data
    URL, one over MAX_PAD_BYTES, or an image over MAX_PAD_SIDE a side raises DrawingError
    (one line) before any pixel is decoded.
    """
    if url is None or url == "":
        return None
    if not isinstance(url, str) or not url.startswith(PNG_PREFIX):
        raise DrawingError("not a PNG drawing")
    if len(url) > len(PNG_PREFIX) + (MAX_PAD_BYTES * 4) // 3 + 4:
        raise DrawingError(f"a drawing of more than {MAX_PAD_BYTES // 2**20} MB")
    try:
        raw = base64.b64decode(url[len(PNG_PREFIX):], validate=True)
    except (binascii.Error, ValueError):
        raise DrawingError("not valid base64") from None
    return load_image_file(raw, max_bytes=MAX_PAD_BYTES, max_side=MAX_PAD_SIDE)


__all__ = ["decode_data_url", "sketchpad"]
