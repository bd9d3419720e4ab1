"""Typed errors of the engine. Each carries a one-line, user-facing message."""


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
