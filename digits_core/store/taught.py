"""A taught run's folder, written for `training.teach` (only the store writes in the runs folder).

Teaching continues a run on the drawings into a new run of the person's, so the source is
never changed: the new folder starts as a copy of the source's files with its own
`meta.json` (its name, owner, status) and `taught.json`, what it was taught from, which the
Runs page shows. The teaching job then writes the folder as any run's (`RunRecorder`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from digits_core.errors import RunError
from digits_core.store.readers import read_meta
from digits_core.store.recorder import new_run_folder, write_json

TAUGHT = "taught.json"  # in a taught run's folder: what it was taught from
RUN_FILES = ("experiment.json", "history.json", "normalizer.npz", "first_layer_before.npy",
             "weights.npz", "weights.pt", "optimizer.npz")  # copied from the source when it has them


def write_taught_run(source: Path, runs_dir: str | Path, *, base: str, meta: dict, taught: dict) -> Path:
    """Create `runs_dir/<base>-<k>` holding a copy of run folder `source`'s files, its
    `meta.json` updated with `meta` (and the new folder's name as name and label), and
    `taught` as `taught.json`; return its path. RunError (one line) when it cannot be
    written, and nothing is left behind."""
    path = new_run_folder(Path(runs_dir), base)
    try:
        for name in RUN_FILES:
            if (source / name).is_file():
                shutil.copyfile(source / name, path / name)
        new_meta = read_meta(source / "meta.json").to_dict()
        new_meta.update(name=path.name, label=path.name, **meta)
        write_json(path / TAUGHT, taught)
        write_json(path / "meta.json", new_meta)
    except (OSError, RunError) as e:
        shutil.rmtree(path, ignore_errors=True)
        raise RunError(f"could not start teaching ({getattr(e, 'strerror', None) or e})") from None
    return path


def discard_taught_run(path: str | Path) -> None:
    """Remove the folder `write_taught_run` made for a teaching that never started."""
    shutil.rmtree(path, ignore_errors=True)


__all__ = ["RUN_FILES", "TAUGHT", "discard_taught_run", "write_taught_run"]
