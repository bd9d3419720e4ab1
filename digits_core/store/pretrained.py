"""The ready-made model that ships with Digit Lab, so drawing works on a fresh machine.

A small MNIST CNN trained by the project's own CLI (the command is in docs/drawings.md), kept as
an ordinary run folder inside the package with a sha256 of each file in `SHA256SUMS`.
Its weights are a torch `state_dict` read with `weights_only=True`.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from digits_core.errors import RunError

READY_MADE = Path(__file__).resolve().parents[1] / "pretrained" / "mnist-cnn"  # digits_core/pretrained


def checksums(folder: Path = READY_MADE) -> dict[str, str]:
    """file name -> expected sha256, from the folder's SHA256SUMS."""
    out = {}
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, _, name = line.strip().partition("  ")
        if digest and name:
            out[name] = digest
    return out


def verify(folder: Path = READY_MADE) -> None:
    """Raise RunError unless every file listed in SHA256SUMS has its checksum."""
    try:
        expected = checksums(folder)
    except OSError:
        raise RunError("the ready-made model is not installed (no SHA256SUMS)") from None
    for name, digest in expected.items():
        try:
            actual = hashlib.sha256((folder / name).read_bytes()).hexdigest()
        except OSError:
            raise RunError(f"the ready-made model's {name} is missing") from None
        if actual != digest:
            raise RunError(f"the ready-made model's {name} does not match its checksum")


def load_ready_made():
    """The ready-made model as a `runs.Run`; None when it is not installed.

    Raises RunError when it is there but damaged.
    """
    from digits_core.store.runs import load_run

    if not (READY_MADE / "SHA256SUMS").is_file():
        return None
    verify()
    run = load_run(READY_MADE)
    run.meta["ready_made"] = True
    run.meta["label"] = "ready-made MNIST CNN"
    return run


__all__ = ["READY_MADE", "checksums", "load_ready_made", "verify"]
