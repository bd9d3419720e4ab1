"""The Drawings page's parts: the grid of drawings per label, the score of a model on them
(with the drawings in each confusion cell), the set as a file, and "Teach the model" with
its live progress and before/after."""

from __future__ import annotations

import html

import numpy as np
import streamlit as st

from dashboard import state
from dashboard.marking import model_key
from dashboard.pictures import png_data_url
from digits_core.analysis.drawing_scores import DrawingScore
from digits_core.analysis.predict import predict_canvas
from digits_core.data.mnist import mnist_available
from digits_core.errors import DigitLabError
from digits_core.images.imagefile import load_image_file
from digits_core.store import drawings as dr
from digits_core.store.drawing_sets import export_set, import_set
from digits_core.store.runs import load_run
from digits_core.training.teach import MNIST_HELD, compare, teach

ss = st.session_state
PER_LABEL = 24  # drawings shown per label before "and N more"
PER_CELL = 6  # drawings shown in one confusion cell


def thumb(x: np.ndarray, size: int = 42) -> str:
    """A model input (28, 28) 0..255 as a small inline picture (white ink on black)."""
    grey = np.clip(x, 0, 255).astype(np.uint8)
    return (f'<img src="{png_data_url(grey)}" style="width:{size}px;height:{size}px;'
            f'image-rendering:pixelated;border-radius:3px" alt="a drawing"/>')


def mine(d: dr.Drawing) -> bool:
    return d.owner == state.owner()


def _delete(drawing_id: str) -> None:
    try:
        dr.delete_drawing(state.runs_dir(), drawing_id, by=state.owner())
    except DigitLabError as e:
        ss["drawings_error"] = str(e)


def _unshare(drawing_id: str) -> None:
    try:
        dr.remove_from_shared(state.runs_dir(), drawing_id)
    except DigitLabError as e:
        ss["drawings_error"] = str(e)


def _delete_mine() -> None:
    ss["drawings_note"] = f"Deleted {dr.delete_mine(state.runs_dir(), state.owner())} of your drawings."


def grid(shown: list[dr.Drawing], inputs: dict[str, np.ndarray], reads: dict[str, int] | None) -> None:
    """One row of drawings per label, each with who drew it and what it was read as; a
    bin for one's own, and for a teacher "take out of the class's set"."""
    teacher = state.class_mode() and state.teacher()
    for label in range(10):
        these = [d for d in shown if d.label == label]
        if not these:
            continue
        st.markdown(f"**{label}** · {len(these)} drawing{'s' if len(these) != 1 else ''}")
        cols = st.columns(8)
        for k, d in enumerate(these[:PER_LABEL]):
            with cols[k % 8]:
                read = reads.get(d.id) if reads is not None else d.reading
                wrong = read is not None and read != d.label
                who = f" · {html.escape(d.person)}" if d.person else ""
                st.markdown(f'<div class="drawing-tile" data-label="{d.label}" data-id="{d.id}">'
                            f'{thumb(inputs[d.id], 56)}<div style="font-size:.75rem;color:'
                            f'{"#d62728" if wrong else "#808495"}">read {read if read is not None else "–"}'
                            f'{who}</div></div>', unsafe_allow_html=True)
                if mine(d):
                    st.button("", key=f"del_{d.id}", on_click=_delete, args=(d.id,), icon=":material/delete:",
                              help="Delete this drawing", type="tertiary")
                elif teacher and d.shared:
                    st.button("", key=f"unshare_{d.id}", on_click=_unshare, args=(d.id,),
                              icon=":material/remove_circle:", help="Take it out of the class's set",
                              type="tertiary")
        if len(these) > PER_LABEL:
            st.caption(f"…and {len(these) - PER_LABEL} more")


def confusion_html(score: DrawingScore, inputs: list[np.ndarray]) -> str:
    """The confusion matrix as a table whose cells hold their drawings (rows: the digit it
    is, columns: what the model read)."""
    head = "".join(f'<th style="padding:2px 4px">{p}</th>' for p in range(10))
    rows = []
    for t in range(10):
        if not score.counts[t]:
            continue
        cells = []
        for p in range(10):
            idx = score.cell(t, p)
            pics = "".join(thumb(inputs[i], 24) for i in idx[:PER_CELL])
            more = f"+{len(idx) - PER_CELL}" if len(idx) > PER_CELL else ""
            bg = "#e8f5e9" if t == p and len(idx) else "#fdecea" if len(idx) else "transparent"
            cells.append(f'<td class="cm-cell" data-true="{t}" data-pred="{p}" data-n="{len(idx)}" '
                         f'style="background:{bg};vertical-align:top;padding:2px;min-width:28px">'
                         f'<div style="font-size:.7rem">{len(idx) or ""}</div>{pics}'
                         f'<div style="font-size:.65rem">{more}</div></td>')
        rows.append(f'<tr><th style="padding:2px 4px">{t}</th>{"".join(cells)}</tr>')
    return (f'<div style="overflow-x:auto"><table class="drawing-confusion" style="border-collapse:collapse;'
            f'font-size:.8rem"><tr><th title="the digit it is / what the model read">is \\ read</th>{head}</tr>'
            f'{"".join(rows)}</table></div>')


def score_panel(run, score: DrawingScore, inputs: list[np.ndarray]) -> None:
    acc_col, mnist_col = st.columns(2)
    acc_col.metric("On these drawings", f"{score.accuracy:.1%}", f"{len(score.labels)} drawings",
                   delta_color="off", delta_arrow="off", border=True)
    mnist = run.meta.get("test_acc")
    mnist_col.metric("On MNIST test", f"{mnist:.2%}" if isinstance(mnist, (int, float)) else "–",
                     "10,000 digits", delta_color="off", delta_arrow="off", border=True)
    per = " · ".join(f"{c}: {score.per_class[c]:.0%}" for c in range(10) if score.counts[c])
    st.caption(f"Per digit: {per}")
    st.markdown(confusion_html(score, inputs), unsafe_allow_html=True)


def set_file(every: list[dr.Drawing]) -> None:
    """Download the set (a teacher in class mode; anyone on a one-person server) and bring
    one back."""
    teacher = not state.class_mode() or state.teacher()
    left, right = st.columns(2)
    if teacher and every:
        left.download_button("Download the set (zip: PNGs + labels.csv)", export_set(state.runs_dir(), every),
                             file_name="drawings.zip", mime="application/zip", icon=":material/download:",
                             key="drawings_download")
    up = right.file_uploader("Bring back a set (a zip from Download)", type=["zip"],
                             key=f"drawings_import_{ss.get('drawings_imports', 0)}")
    if up is not None:
        ss["drawings_imports"] = ss.get("drawings_imports", 0) + 1
        try:
            n = import_set(state.runs_dir(), up.getvalue(), owner=state.owner(), person=state.person())
            ss["drawings_note"] = f"Added {n} drawings."
        except DigitLabError as e:
            ss["drawings_error"] = f"That file was not used: {e}"
        st.rerun()


# ------------------------------------------------------------------ teaching


def start_teaching(run, images, labels) -> None:
    own = run.experiment.data.mnist_dir  # the run's own MNIST where it is still there, else this person's
    mnist_dir = own if own and mnist_available(own)[0] else state.mnist_dir()
    try:
        name = teach(state.runner(), run, images, labels, owner=state.owner(), person=state.person(),
                     mnist_dir=mnist_dir)
    except DigitLabError as e:
        ss["drawings_error"] = str(e)
        return
    ss["teaching"] = {"name": name, "source": str(run.path), "ready": bool(run.meta.get("ready_made"))}
    state.session().chosen_run = name


def _source(t: dict):
    return state.ready_made() if t["ready"] else load_run(t["source"])


def teaching_panel(images, labels) -> None:
    """The teaching job's progress while it trains, then before/after and the drawing
    that started it read again. Polls only while the job trains."""
    t = ss.get("teaching")
    if not t:
        return
    runner = state.runner()
    busy = runner.busy(t["name"])

    def body() -> None:
        h = runner.history(t["name"])
        if runner.busy(t["name"]):
            st.progress(min(1.0, h.progress), text=f"Teaching {t['name']}: {h.message or h.status}")
            return
        if busy:  # it ended while polling: draw the page once more, without polling
            st.rerun()
        if h.status != "finished":
            st.error(f"Teaching stopped: {h.message or h.status}")
            return
        after = load_run(state.runs_dir() / t["name"])
        c = compare(_source(t), after, images, labels)
        st.success(f"Taught: the new run **{after.label}** is yours, and picked on every page.",
                   icon=":material/school:")
        cols = st.columns(2)
        cols[0].metric("On the drawings", f"{c.drawings_after:.1%}", f"{c.drawings_after - c.drawings_before:+.1%} "
                       f"(was {c.drawings_before:.1%})", border=True)
        if c.mnist_before is not None and c.mnist_after is not None:
            cols[1].metric("On MNIST test", f"{c.mnist_after:.2%}", f"{100 * (c.mnist_after - c.mnist_before):+.2f} "
                           f"points (was {c.mnist_before:.2%})", border=True)
        if c.mnist_dropped:
            st.warning(f"MNIST test dropped by more than {100 * MNIST_HELD:.1f} points: the drawings "
                       "pulled the model away from MNIST's digits. Keep the old run for MNIST.")
        _read_again(after)

    st.fragment(run_every=1.0 if busy else None)(body)()


def _read_again(after) -> None:
    """The drawing last marked, read again by the taught model."""
    last = ss.get("last_marked")
    if not last:
        return
    try:
        d = dr.get_drawing(state.runs_dir(), last)
        p = predict_canvas(after, load_image_file(dr.pad_png(state.runs_dir(), last)))
    except DigitLabError:
        return
    if p.digit is None:
        return
    was = f"misread as {d.reading}" if d.misread else f"read as {d.reading}"
    verdict = "right" if p.digit == d.label else "still wrong"
    st.markdown(f'<div class="read-again">{thumb(p.image, 56)} The drawing that started it (a {d.label}, '
                f'{was} by {html.escape(d.model)}) is now read as <b>{p.digit}</b>: {verdict}.</div>',
                unsafe_allow_html=True)


__all__ = ["confusion_html", "grid", "model_key", "score_panel", "set_file", "start_teaching",
           "teaching_panel", "thumb"]
