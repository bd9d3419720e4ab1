"""Warming the server up after its first page.

The first page imports nothing heavy (the Home page needs no torch, scikit-learn or
scipy). What a first Train press, Draw page or analysis page would import lazily (torch
and its optimiser machinery, scikit-learn, scipy, pandas: seconds of one core) is loaded
in a background thread, at training priority, once the first page has been served: done
before it, the imports took the interpreter and a core away from that page.
"""

from __future__ import annotations

import importlib
import threading
import time

from digits_core.serve.warmup import warm_up
from digits_core.threads import lower_thread_priority

DELAY_S = 2.0  # after the first script run ends: the browser is still drawing its page
# What the pages import lazily beyond a training job's own modules (`warm_up`).
PAGE_MODULES = ("digits_core.images.drawing", "digits_core.analysis.evaluate", "digits_core.analysis.embedding",
                "scipy.signal", "pandas")

_lock = threading.Lock()
_thread: threading.Thread | None = None


def after_first_page(delay_s: float = DELAY_S) -> threading.Thread:
    """Start the warm-up once per process (the call at the end of each script run is a
    no-op after the first); returns its thread."""
    global _thread
    with _lock:
        if _thread is None:
            _thread = threading.Thread(target=_warm, args=(delay_s,), name="digitlab-warm-up",
                                       daemon=True)
            _thread.start()
        return _thread


def _warm(delay_s: float) -> None:
    time.sleep(delay_s)
    lower_thread_priority()
    warm_up()
    for name in PAGE_MODULES:
        importlib.import_module(name)


__all__ = ["DELAY_S", "PAGE_MODULES", "after_first_page"]
