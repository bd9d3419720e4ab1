"""Slowing down guessing: a few wrong tries are free, then each one makes the next wait longer.

A class server's teacher code is a short word a student can try to guess, as fast as a
script types. `Backoff` counts wrong tries per key and answers how long the next try must
wait; `CodeGuard` keeps one per browser tab and one for the whole server (a student who
reloads gets a new tab, not a fresh count). While a wait runs, no try counts, the right one
included, so guessing faster gains nothing. The clock is injected: tests move it instead of
sleeping.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

SERVER = ""  # the key of the whole server's count


class Backoff:
    """Wrong tries per key: after `free` of them, the next try waits `first` seconds, and
    each further wrong one doubles the wait, up to `most`. A key with no wrong try for
    `forget` seconds starts over; a right try forgets it at once."""

    def __init__(self, *, free: int = 5, first: float = 5.0, most: float = 600.0,
                 forget: float = 3600.0, clock: Callable[[], float] = time.monotonic):
        self.free, self.first, self.most, self.forget, self.clock = free, first, most, forget, clock
        self._fails: dict[str, tuple[int, float]] = {}  # key -> (wrong tries, when the last one was)
        self._lock = threading.Lock()

    def wait(self, key: str) -> float:
        """Seconds until `key` may try again (0: now)."""
        with self._lock:
            n, last = self._current(key)
        return max(0.0, last + self._pause(n) - self.clock()) if n else 0.0

    def failed(self, key: str) -> float:
        """Count a wrong try of `key`; return the wait it now faces."""
        with self._lock:
            n, _ = self._current(key)
            self._fails[key] = (n + 1, self.clock())
            if len(self._fails) > 10_000:  # many keys: drop the forgotten ones
                now = self.clock()
                self._fails = {k: v for k, v in self._fails.items() if now - v[1] < self.forget}
        return self.wait(key)

    def succeeded(self, key: str) -> None:
        with self._lock:
            self._fails.pop(key, None)

    def _current(self, key: str) -> tuple[int, float]:
        n, last = self._fails.get(key, (0, 0.0))
        return (0, 0.0) if n and self.clock() - last >= self.forget else (n, last)

    def _pause(self, n: int) -> float:
        return 0.0 if n < self.free else min(self.most, self.first * 2 ** (n - self.free))


class CodeGuard:
    """A secret typed by people: per-tab and server-wide back-off (see the module docstring)."""

    def __init__(self, *, per_tab: int = 5, per_server: int = 20, first: float = 5.0, most: float = 600.0,
                 clock: Callable[[], float] = time.monotonic):
        self.tab = Backoff(free=per_tab, first=first, most=most, clock=clock)
        self.server = Backoff(free=per_server, first=first, most=most, clock=clock)

    def attempt(self, key: str, *, right: bool) -> str | None:
        """One try from tab `key`, `right` or not: a one-line refusal while a wait runs (the
        try does not count, right or wrong), else None, and the try is counted."""
        mine, everyone = self.tab.wait(key), self.server.wait(SERVER)
        if mine or everyone:
            where = "from this tab" if mine >= everyone else "on this server"
            return (f"too many wrong teacher codes {where}: try again in {_seconds(max(mine, everyone))}; "
                    "guessing is slowed down on purpose")
        if right:
            self.tab.succeeded(key)
            self.server.succeeded(SERVER)
        else:
            self.tab.failed(key)
            self.server.failed(SERVER)
        return None


def _seconds(s: float) -> str:
    s = max(1, round(s + 0.49))
    return f"{s} s" if s < 120 else f"{round(s / 60)} minutes"


__all__ = ["Backoff", "CodeGuard"]
