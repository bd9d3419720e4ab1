"""The browser's chart library, loaded a moment after the first page is drawn.

Plotly's script is megabytes; a browser loads it the first time a page shows a chart, and
for about a second of a small machine it is busy with nothing else. Loaded on the Train
page, a Start pressed at once waited for it (a first run's first point: 1.6-2.1 s after
Start, 0.5-0.9 s once it is loaded). The Home page does not draw a chart (its first paint
is a goal of its own), so it asks for the library in a fragment that runs once, shortly
after the page is up, then stops.
"""

from __future__ import annotations

import time

import streamlit as st

DELAY_S = 1.0  # after the page is drawn (the fragment mounted): the browser is idle again
_DONE, _ARMED = "plotly_prefetched", "plotly_prefetch_armed"


def prefetch_plotly_soon() -> None:
    """Call at the end of a page that draws no chart itself."""
    ss = st.session_state
    if ss.get(_DONE):
        _prefetch()  # the same hidden chart on later runs: nothing to load or redraw
        return
    ss[_ARMED] = time.monotonic()

    @st.fragment(run_every=DELAY_S)
    def soon() -> None:
        if time.monotonic() - ss.get(_ARMED, 0.0) < DELAY_S / 2:
            return  # the page's own run: not yet
        _prefetch()
        ss[_DONE] = True
        st.rerun()  # the whole page once, so this fragment stops polling

    soon()


def _prefetch() -> None:
    from .charts import prefetch_plotly  # imports Plotly on the server: after the first page

    prefetch_plotly()


__all__ = ["DELAY_S", "prefetch_plotly_soon"]
