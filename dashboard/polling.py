"""How often the open tabs look at runs, on a server many tabs may watch at once.

Every look (a live panel's or the sidebar's fragment rerun) is a script run the server pays
for; past CROWD watching tabs each looks proportionally less often, so the server keeps
time for new visitors' pages and for training. Light: the sidebar uses it on every page.
"""

from __future__ import annotations

import threading
import time

CROWD = 4  # tabs that watch at full pace; past this many, each looks less often
MOST_SLOWER = 4.0  # ...but never more than this many times less often

_seen_lock = threading.Lock()
_seen: dict[str, float] = {}  # tab -> when it last looked at a run


def seen(tab: str) -> None:
    """A tab has just looked at a run (the Train page's live panel, the sidebar's runs)."""
    with _seen_lock:
        _seen[tab] = time.monotonic()


def watchers(window_s: float = 10.0) -> int:
    """Tabs that looked at a run within the last `window_s` seconds (at least 1)."""
    now = time.monotonic()
    with _seen_lock:
        for tab in [t for t, at in _seen.items() if now - at > window_s]:
            del _seen[tab]
        return max(1, len(_seen))


def crowded(seconds: float, crowd: int) -> float:
    """A polling interval of `seconds`, stretched for `crowd` tabs watching (see poll_seconds)."""
    return seconds * min(MOST_SLOWER, max(1.0, crowd / CROWD))


__all__ = ["CROWD", "MOST_SLOWER", "crowded", "seen", "watchers"]
