"""Polling for tests that watch something happen in another thread or process."""

import time


def wait_for(predicate, timeout=120.0):
    """True as soon as `predicate()` is, False if it is not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return False
