"""The dashboard's settings kept beside the runs (`settings.json` in the runs folder): what
a server remembers across restarts, today the accepted MNIST folder. The runs folder is the
store's, so this file is written here, under a temporary name and renamed into place.
Remembering is a convenience: a missing, broken or unwritable file is no error.
"""

from __future__ import annotations

from pathlib import Path

from digits_core.errors import RunError
from digits_core.store import bounded
from digits_core.store.recorder import write_json

SETTINGS_FILE = "settings.json"
MAX_SETTINGS_BYTES = 64 * 2**10


def read_settings(runs_dir: str | Path) -> dict:
    """The settings remembered in `runs_dir`; {} when there are none or they are unreadable."""
    try:
        return bounded.read_json_object(Path(runs_dir) / SETTINGS_FILE, MAX_SETTINGS_BYTES)
    except RunError:  # missing or broken: nothing is remembered
        return {}


def remembered_mnist_dir(runs_dir: str | Path) -> str | None:
    value = read_settings(runs_dir).get("mnist_dir")
    return value if isinstance(value, str) and value else None


def remember(runs_dir: str | Path, **update) -> bool:
    """Merge `update` into the settings in `runs_dir`; False when they could not be written."""
    runs_dir = Path(runs_dir)
    try:
        runs_dir.mkdir(parents=True, exist_ok=True)
        write_json(runs_dir / SETTINGS_FILE, read_settings(runs_dir) | update)
    except (OSError, ValueError):
        return False
    return True


__all__ = ["SETTINGS_FILE", "read_settings", "remember", "remembered_mnist_dir"]
