"""What one person may keep on a shared server: at most so many items and so many bytes.

A class server stores what every student makes (run folders; drawings), and one student
with a loop could fill its disk. A store whose items belong to owners counts them per owner
(`usage_by_owner`) and asks `check_room` before it adds one; the refusal says how to free
space. Caps come from the environment (`caps_from_env`): sensible defaults on a class
server, none elsewhere unless set. Nothing here knows what a run is.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from digits_core.errors import ConfigError

RUNS_ENV = "DIGITLAB_MAX_RUNS_PER_PERSON"  # runs one person keeps ("0" or "": no cap)
MB_ENV = "DIGITLAB_MAX_MB_PER_PERSON"  # megabytes of runs one person keeps ("0" or "": no cap)
CLASS_RUNS = 20  # a lesson's worth of runs, on a class server unless set
CLASS_MB = 200  # about 40 MNIST CNNs, or 4 of the largest MLPs


@dataclass(frozen=True)
class Caps:
    """How much one owner may keep; None: no cap."""

    items: int | None = None  # most items
    bytes: int | None = None  # most bytes, all their items together

    @property
    def any(self) -> bool:
        return self.items is not None or self.bytes is not None


@dataclass
class Usage:
    """What one owner keeps."""

    items: int = 0
    bytes: int = 0


def caps_from_env(*, class_server: bool, items_env: str = RUNS_ENV, mb_env: str = MB_ENV,
                  class_items: int = CLASS_RUNS, class_mb: float = CLASS_MB) -> Caps:
    """Caps from `items_env` / `mb_env` (a number; 0 turns that cap off); unset, the class
    defaults on a class server and no cap elsewhere. ConfigError for a value that is not a number."""
    def read(name: str, default: float) -> float | None:
        text = os.environ.get(name, "").strip()
        if not text:
            return default if class_server else None
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{name} must be a number, got {text[:20]!r}") from None
        return value if value > 0 else None

    items, mb = read(items_env, class_items), read(mb_env, class_mb)
    return Caps(None if items is None else int(items), None if mb is None else int(mb * 2**20))


def folder_bytes(path: str | os.PathLike) -> int:
    """Bytes of the files under `path` (links not followed; what vanishes meanwhile counts 0)."""
    total = 0
    for root, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(Path(root) / name).st_size
            except OSError:
                pass
    return total


def usage_by_owner(items: Iterable[tuple[str, int]]) -> dict[str, Usage]:
    """(owner, bytes) of every item -> each owner's Usage."""
    out: dict[str, Usage] = {}
    for owner, size in items:
        u = out.setdefault(owner, Usage())
        u.items += 1
        u.bytes += int(size)
    return out


def check_room(usage: Usage, caps: Caps, *, adding: int = 0, what: str = "runs",
               free: str = "delete some on the Runs page") -> None:
    """Refuse (ConfigError, one line saying how to free space) one more item of about
    `adding` bytes for an owner who keeps `usage`."""
    if caps.items is not None and usage.items >= caps.items:
        raise ConfigError(f"you keep {usage.items} {what} and one person may keep at most {caps.items} "
                          f"on this server; {free} to make room")
    if caps.bytes is not None and usage.bytes + adding > caps.bytes:
        more = f" and this one would need about {mb(adding)} more" if adding else ""
        raise ConfigError(f"your {what} take {mb(usage.bytes)}{more}, over the {mb(caps.bytes)} one "
                          f"person may keep on this server; {free} to make room")


def mb(n: int) -> str:
    """'12.3 MB' (megabytes of 2**20 bytes)."""
    return f"{n / 2**20:,.1f} MB"


__all__ = ["CLASS_MB", "CLASS_RUNS", "MB_ENV", "RUNS_ENV", "Caps", "Usage", "caps_from_env", "check_room",
           "folder_bytes", "mb", "usage_by_owner"]
