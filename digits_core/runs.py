"""Saved runs: the one place that knows where and how runs are stored.

A run folder holds `experiment.json` (the dataclasses), `history.json` (the curves),
`meta.json` (created time, accuracy, sizes; written last), `weights.npz` or `weights.pt`,
`normalizer.npz` and `first_layer_before.npy`. A folder is written under a temporary name
and renamed into place, so a reader never sees half a run; a folder that is incomplete
or corrupt anyway is listed as broken with the reason and never crashes a listing.
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .config import Experiment
from .data import Dataset, Normalizer, load_dataset
from .errors import DigitLabError, RunError
from .jobs import History, TrainingJob
from .models import Classifier, build_model, read_weights, save_weights, weights_file

FORMAT_VERSION = 1
REQUIRED = ("meta.json", "experiment.json", "history.json", "normalizer.npz")


def default_runs_dir() -> Path:
    """`$DIGITLAB_RUNS` if set, else `./runs`."""
    return Path(os.environ.get("DIGITLAB_RUNS", "runs"))


@dataclass
class RunInfo:
    path: Path
    ok: bool
    reason: str  # why the run is broken; "" when ok
    meta: dict  # meta.json contents ({} when unreadable)

    @property
    def name(self) -> str:
        return self.path.name


@dataclass
class Run:
    """A trained model with everything needed to evaluate it or read drawings with it.

    Made from a saved folder (`load_run`) or from a finished in-session job (`run_from_job`,
    `path` is None until it is saved).
    """

    path: Path | None
    experiment: Experiment
    history: History
    meta: dict
    model: Classifier
    normalizer: Normalizer
    first_layer_before: np.ndarray | None


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-")[:40] or "run"


def save_run(job: TrainingJob, runs_dir: str | Path | None = None, *, label: str = "") -> Path:
    """Write a finished (or stopped) job as a new run folder; returns its path."""
    if job.model is None or job.data is None:
        raise RunError("this job has no trained model to save (it failed or never started)")
    h = job.snapshot()
    if h.active:
        raise RunError("the job is still running; stop it or wait for it to finish")
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    runs_dir.mkdir(parents=True, exist_ok=True)
    exp = job.experiment
    created = time.strftime("%Y%m%d-%H%M%S", time.localtime())
    name = f"{created}-{_slug(label or exp.name or exp.model.family)}-{job.id[-5:]}"
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=runs_dir))
    try:
        (tmp / "experiment.json").write_text(json.dumps(exp.to_dict(), indent=2))
        (tmp / "history.json").write_text(json.dumps(h.to_dict()))
        with open(tmp / "normalizer.npz", "wb") as f:
            np.savez(f, **job.data.normalizer.to_arrays())
        if job.initial_first_layer is not None:
            np.save(tmp / "first_layer_before.npy", job.initial_first_layer, allow_pickle=False)
        weights = tmp / weights_file(exp.model.family)
        save_weights(job.model.state_dict(), weights)
        meta = {
            "format": FORMAT_VERSION,
            "name": name,
            "label": label or exp.name,
            "created": time.time(),
            "family": exp.model.family,
            "dataset": exp.data.dataset,
            "status": h.status,
            "test_acc": h.final_test_acc,
            "epochs_done": len(h.epochs),
            "elapsed": h.elapsed,
            "n_params": job.model.n_params,
            "image_shape": list(job.data.image_shape),
            "weights": weights.name,
        }
        # meta.json last: its presence marks the folder complete.
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2))
        final = runs_dir / name
        os.replace(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def inspect_run(path: str | Path) -> RunInfo:
    """Cheap validity check of a run folder (no weights loaded)."""
    path = Path(path)
    missing = [f for f in REQUIRED if not (path / f).is_file()]
    if missing:
        return RunInfo(path, False, f"incomplete: missing {', '.join(missing)}", {})
    try:
        meta = json.loads((path / "meta.json").read_text())
        if not isinstance(meta, dict):
            raise ValueError("not an object")
        json.loads((path / "experiment.json").read_text())
    except (ValueError, OSError, UnicodeDecodeError) as e:
        return RunInfo(path, False, f"corrupt JSON: {e}", {})
    weights = path / str(meta.get("weights", ""))
    if not meta.get("weights") or not weights.is_file():
        return RunInfo(path, False, "incomplete: weights file missing", meta)
    if weights.stat().st_size == 0:
        return RunInfo(path, False, "corrupt: weights file is empty", meta)
    return RunInfo(path, True, "", meta)


def list_runs(runs_dir: str | Path | None = None) -> list[RunInfo]:
    """Every run folder in `runs_dir`, newest first; broken ones carry a reason."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    out = [
        inspect_run(p)
        for p in runs_dir.iterdir()
        if p.is_dir() and not p.name.startswith(".tmp-")
    ]
    return sorted(out, key=lambda r: (r.meta.get("created", 0), r.name), reverse=True)


def load_run(path: str | Path) -> Run:
    """Rebuild a run's model, normaliser and history. Raises RunError if anything is off."""
    path = Path(path)
    info = inspect_run(path)
    if not info.ok:
        raise RunError(f"{path.name}: {info.reason}")
    try:
        exp = Experiment.from_dict(json.loads((path / "experiment.json").read_text()))
        history = History.from_dict(json.loads((path / "history.json").read_text()))
        with np.load(path / "normalizer.npz", allow_pickle=False) as z:
            normalizer = Normalizer.from_arrays({k: z[k] for k in z.files})
        model = build_model(exp.model, tuple(info.meta["image_shape"]), device="auto")
        model.load_state_dict(read_weights(path / weights_file(exp.model.family)))
        before = path / "first_layer_before.npy"
        first = np.load(before, allow_pickle=False) if before.is_file() else None
    except DigitLabError as e:
        raise RunError(f"{path.name}: {e}") from None
    except Exception as e:  # corrupt zip/pickle-free tensors, shape mismatches, ...
        raise RunError(f"{path.name}: cannot load weights ({type(e).__name__}: {e})") from None
    return Run(path, exp, history, info.meta, model, normalizer, first)


def run_from_job(job: TrainingJob) -> Run:
    """The in-memory `Run` of a job that has a model (finished, stopped or diverged)."""
    if job.model is None or job.data is None:
        raise RunError("this job has no trained model (it failed or never started)")
    h = job.snapshot()
    meta = {
        "name": job.experiment.name or job.experiment.model.family,
        "family": job.experiment.model.family,
        "dataset": job.experiment.data.dataset,
        "status": h.status,
        "test_acc": h.final_test_acc,
        "n_params": job.model.n_params,
        "image_shape": list(job.data.image_shape),
        "created": job.created,
    }
    return Run(None, job.experiment, h, meta, job.model, job.data.normalizer, job.initial_first_layer)


def run_dataset(run: Run, *, mnist_dir: str | None = None) -> Dataset:
    """The run's own data split (same config and seed), for re-evaluation."""
    cfg = copy.deepcopy(run.experiment.data)  # never edit the run's own experiment
    if mnist_dir is not None:
        cfg.mnist_dir = mnist_dir
    return load_dataset(cfg)


def delete_run(path: str | Path, runs_dir: str | Path | None = None) -> None:
    """Remove one run folder; refuses paths outside `runs_dir`."""
    path = Path(path).resolve()
    root = (Path(runs_dir) if runs_dir is not None else default_runs_dir()).resolve()
    if path.parent != root:
        raise RunError(f"{path} is not a run folder inside {root}")
    shutil.rmtree(path)


__all__ = [
    "Run",
    "RunInfo",
    "default_runs_dir",
    "save_run",
    "inspect_run",
    "list_runs",
    "load_run",
    "run_dataset",
    "run_from_job",
    "delete_run",
]
