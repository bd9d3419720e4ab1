"""Typed errors of the engine. Each carries a one-line, user-facing message."""

import urllib.error


class DigitLabError(Exception):
    """Base class: every error the engine raises on purpose. `str(e)` is one line for a user."""


class DataError(DigitLabError):
    """A dataset file is missing, malformed, truncated or inconsistent."""


class DownloadError(DataError):
    """MNIST could not be fetched (offline, every mirror failed, or a checksum mismatch)."""


class ConfigError(DigitLabError):
    """A configuration is refused up front (non-positive sizes, absurd widths, lr <= 0, ...)."""


class RunError(DigitLabError):
    """A saved run folder is missing, half-written or corrupt."""


class DrawingError(DigitLabError):
    """An image given as a drawing cannot be read (wrong shape, not an image)."""


def short_reason(e: BaseException, limit: int = 160) -> str:
    """Why `e` happened, in one short line for a person: the engine's own message, an OS
    error's reason ("No space left on device"), "timed out", a URL error's cause, else the
    first line of the exception (after its type name; at most `limit` characters). The one
    place an exception becomes a line of a message."""
    if isinstance(e, urllib.error.URLError) and not isinstance(e, urllib.error.HTTPError):
        reason = e.reason
        if not isinstance(reason, BaseException):
            return str(reason).splitlines()[0] if str(reason) else "URL error"
        e = reason
    if isinstance(e, DigitLabError):
        return str(e)
    if isinstance(e, TimeoutError):
        return "timed out"
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    lines = str(e).strip().splitlines()
    text = " ".join(lines[0].split())[:limit] if lines else ""
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


def show_value(v) -> str:
    """A short, one-line picture of a JSON value for an error message."""
    if isinstance(v, (dict, list)):
        return f"{'an object' if isinstance(v, dict) else 'a list'} of {len(v)} entries"
    if isinstance(v, str) and len(v) > 40:
        return f"a text of {len(v)} characters"
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > 10**18:
        return "a number too large"
    return " ".join(repr(v).split())[:60]
