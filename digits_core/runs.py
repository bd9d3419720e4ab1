"""Run folders: the one place that knows where and how runs are stored.

A run is a folder from the moment it starts (`recorder.RunRecorder` writes it), so a reload, a closed tab
or a killed process loses at most one checkpoint interval. The folder holds:

    meta.json              name, label, owner, status, pid, accuracy, sizes (written last)
    experiment.json        the dataclasses (`Experiment.to_dict()`)
    history.json           the curves (`jobs.History`)
    normalizer.npz         how raw pixels become model inputs
    first_layer_before.npy the first layer at initialisation
    weights.npz | .pt      the latest checkpoint (NumPy arrays, or a torch tensor dict)
    optimizer.npz          the optimiser's state, so training can continue
    snapshots.npz          live-embedding frames (`monitor`), when the run kept them

Every file is written under a temporary name and renamed into place; `meta.json` goes
last, so a reader never sees a checkpoint without its meta. A folder whose meta says
"running" while the process that wrote it is gone is listed as **interrupted**: its last
checkpoint can be evaluated, drawn with and trained further. A folder that fails
validation is listed as broken with the reason and never crashes a listing.
"""

from __future__ import annotations

import copy
import functools
import os
import shutil
import socket
import time
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from . import bounded, readers
from .config import Experiment
from .data import Dataset, Normalizer, load_dataset
from .errors import DigitLabError, RunError
from .jobs import ACTIVE, History
from .models import Classifier, build_model
from .recorder import REMOTE_STALE_S, RunRecorder, _process_started, _write_json


def default_runs_dir() -> Path:
    """`$DIGITLAB_RUNS` if set, else `./runs`."""
    return Path(os.environ.get("DIGITLAB_RUNS", "runs"))


def saved_test_acc(meta: dict) -> float | None:
    """A run's test accuracy as its meta.json records it: the final one, else the last full
    test while it trained (a run stopped or interrupted midway), else None."""
    for key in ("test_acc", "last_test_acc"):
        if isinstance(meta.get(key), (int, float)):
            return meta[key]
    return None


@dataclass
class RunInfo:
    """What a listing knows of a run folder without loading its weights."""

    path: Path
    ok: bool  # loadable: a checkpoint and every required file are there and valid
    reason: str  # why it is broken (or why it cannot be loaded yet); "" when ok
    meta: dict = field(default_factory=dict)
    status: str = ""  # running | interrupted | finished | stopped | diverged | failed | broken

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def label(self) -> str:
        return str(self.meta.get("label") or self.path.name)

    @property
    def owner(self) -> str:
        return str(self.meta.get("owner") or "")

    @property
    def person(self) -> str:
        """The name of the person whose run it is (class mode), else ""."""
        return str(self.meta.get("person") or "") if self.owner.startswith("@") else ""

    @property
    def test_acc(self) -> float | None:
        """Its final test accuracy, else the last full test while it trained, else None."""
        return saved_test_acc(self.meta)

    @property
    def published(self) -> bool:
        """A teacher published it to the class."""
        return bool(self.meta.get("published"))


@dataclass
class Run:
    """A trained model with everything needed to evaluate it, draw with it or train it on."""

    path: Path | None
    experiment: Experiment
    history: History
    meta: dict
    model: Classifier
    normalizer: Normalizer
    first_layer_before: np.ndarray | None
    optimizer_state: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return str(self.meta.get("label") or (self.path.name if self.path else "run"))


# ------------------------------------------------------------------ reading


def read_meta(path: Path) -> dict:
    """A run folder's meta.json as a dict (checked by `readers.read_meta`); RunError."""
    return readers.read_meta(Path(path) / "meta.json").to_dict()


def _alive(meta: dict) -> bool:
    host = meta.get("host")
    if host and host != socket.gethostname():
        updated = meta.get("updated")
        return isinstance(updated, (int, float)) and time.time() - updated < REMOTE_STALE_S
    pid = meta.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    started = _process_started(pid)
    want = meta.get("pid_started")
    return started is not None and (not isinstance(want, (int, float)) or abs(started - want) < 1.0)


def inspect_run(path: str | Path) -> RunInfo:
    """Validity check of a run folder (every file read through `readers`, cached until the
    folder changes); a run still training, or interrupted, is told apart from a broken one."""
    path = Path(path)
    try:
        meta = read_meta(path)
    except RunError as e:
        return RunInfo(path, False, str(e), _whose(path), "broken")
    status = meta["status"]
    if status in ACTIVE and not _alive(meta):
        status = "interrupted"
    if not (path / meta["weights"]).exists():
        if status in ACTIVE:
            return RunInfo(path, False, "training, no checkpoint yet", meta, status)
        if status in ("stopped", "failed") and not meta.get("steps_done"):
            # never trained (stopped while it waited for a slot, or failed to start): not broken
            return RunInfo(path, False, meta.get("message") or f"{status} before it started", meta, status)
        if status == "interrupted":
            return RunInfo(path, False, "interrupted before its first checkpoint", meta, "broken")
    try:
        _checked(path, *_stamps(path))
    except RunError as e:
        return RunInfo(path, False, str(e), meta, "broken")
    return RunInfo(path, True, "", meta, status)


def _whose(path: Path) -> dict:
    """The owner and person of a run whose meta.json does not read as a whole (a field is
    wrong), where those two still do: a broken run stays its owner's to delete."""
    try:
        d = bounded.read_json_object(path / "meta.json", readers.MAX_META_BYTES)
        return {k: bounded.text(d[k], k) for k in ("owner", "person") if k in d}
    except RunError:
        return {}


def _stamps(path: Path) -> tuple:
    """What changes whenever a run folder's files do (their names, sizes and times)."""
    out = []
    for name in ("meta.json", "experiment.json", "history.json", "normalizer.npz", "weights.npz", "weights.pt"):
        try:
            st = (path / name).stat()
            out.append((name, st.st_mtime_ns, st.st_size))
        except OSError:
            out.append((name, None, None))
    return tuple(out)


@functools.lru_cache(maxsize=512)
def _checked(path: Path, *stamps) -> None:
    readers.check_run(path)


def list_runs(runs_dir: str | Path | None = None) -> list[RunInfo]:
    """Every run folder in `runs_dir`, newest first; broken ones carry a reason."""
    runs_dir = Path(runs_dir) if runs_dir is not None else default_runs_dir()
    if not runs_dir.is_dir():
        return []
    out = [inspect_run(p) for p in runs_dir.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(out, key=lambda r: (_num(r.meta.get("created")), r.name), reverse=True)


def _num(x) -> float:
    return float(x) if isinstance(x, (int, float)) else 0.0


def load_run(path: str | Path) -> Run:
    """Rebuild a run's model (its latest checkpoint), normaliser and history.

    Raises RunError with a one-line reason naming the file that is wrong. A broken
    history.json costs the curves, not the model: the run loads with an empty history
    whose `warning` says why.
    """
    path = Path(path)
    info = inspect_run(path)
    if not info.ok:
        raise RunError(f"{path.name}: {info.reason}")
    meta = readers.read_meta(path / "meta.json")
    exp = readers.read_experiment(path / "experiment.json")
    try:
        history = readers.read_history(path / "history.json")
    except RunError as e:
        history = History(warning=str(e))
    normalizer = readers.read_normalizer(path / "normalizer.npz", image_shape=meta.image_shape)
    try:
        model = build_model(exp.model, meta.image_shape, device="auto")
    except DigitLabError as e:
        raise RunError(f"{path.name}: experiment.json: {e}") from None
    weights = readers.weights_path(path, meta, exp)
    try:
        model.load_state_dict(readers.read_weights_file(weights))
    except ValueError as e:
        raise RunError(f"{weights.name} does not fit the model: {e}") from None
    before = path / "first_layer_before.npy"
    first = readers.read_first_layer(before) if before.is_file() else None
    optimizer = {}
    if (path / "optimizer.npz").is_file():
        try:
            optimizer = readers.read_optimizer(path / "optimizer.npz")
        except RunError:
            optimizer = {}  # training can go on without it, with a fresh optimiser
    history.status = info.status
    return Run(path, exp, history, dict(info.meta, status=info.status), model, normalizer, first, optimizer)


def read_snapshots(path: str | Path) -> dict[str, np.ndarray] | None:
    """A run's live-embedding frames (`monitor.Snapshots.to_arrays`), or None."""
    file = Path(path) / "snapshots.npz"
    if not file.is_file():
        return None
    try:
        return readers.read_snapshots(file)
    except RunError:
        return None


def check_owner(meta: dict, by: str | None, doing: str) -> None:
    """Refuse (RunError) when `by` is given and is not the run's owner: on a class server
    only a run's owner may `doing` it (rename, continue, delete). `by=None`: anyone may."""
    if by is None or meta.get("owner", "") == by:
        return
    whose = str(meta.get("person") or "") if str(meta.get("owner", "")).startswith("@") else ""
    raise RunError(f"only {whose or 'the person who started it'} can {doing} "
                   f"{meta.get('label') or meta.get('name') or 'this run'}")


MAX_LABEL = 60  # characters of a run's name as a person types it (the reader takes up to bounded.MAX_TEXT)


def run_label(text: object) -> str:
    """A run name a person typed -> the name kept (spaces collapsed), or RunError (one line):
    what the reader of meta.json would refuse (control characters such as NUL, length) is
    refused here, before it is written."""
    label = " ".join(str(text).split())
    if not label:
        raise RunError("a run's name cannot be empty")
    if any(unicodedata.category(c) in ("Cc", "Cs") for c in label):
        raise RunError("a run's name cannot hold control characters")
    if len(label) > MAX_LABEL:
        raise RunError(f"a run's name has at most {MAX_LABEL} characters")
    return bounded.text(label, "a run's name")


def rename_run(path: str | Path, label: str, *, by: str | None = None) -> None:
    """Give a run a new display name (its folder keeps its own); `by`: see `check_owner`."""
    path = Path(path)
    label = run_label(label)
    meta = read_meta(path)
    check_owner(meta, by, "rename")
    meta["label"] = label
    _write_json(path / "meta.json", meta)


def publish_run(path: str | Path, on: bool = True) -> None:
    """Publish a run to the class (or take it back): every person's pickers offer it first.
    Who may is the dashboard's call (a teacher); the run's files other than meta stay."""
    path = Path(path)
    meta = read_meta(path)
    meta["published"] = time.time() if on else 0.0
    _write_json(path / "meta.json", meta)


def delete_run(path: str | Path, runs_dir: str | Path | None = None, *, by: str | None = None) -> None:
    """Remove one run folder; refuses paths outside `runs_dir`, runs still training and,
    with `by`, another person's run (`check_owner`)."""
    path = Path(path).resolve()
    root = (Path(runs_dir) if runs_dir is not None else default_runs_dir()).resolve()
    if path.parent != root:
        raise RunError(f"{path.name} is not a run folder inside the runs folder")
    info = inspect_run(path)
    if info.status in ACTIVE:
        raise RunError(f"{path.name} is still training; stop it first")
    if by is not None:
        check_owner(info.meta, by, "delete")
    shutil.rmtree(path)


def run_dataset(run: Run, *, mnist_dir: str | None = None) -> Dataset:
    """The run's own data split (same config and seed), for re-evaluation."""
    cfg = copy.deepcopy(run.experiment.data)  # never edit the run's own experiment
    if mnist_dir is not None:
        cfg.mnist_dir = mnist_dir
    return load_dataset(cfg)


def run_from_job(job) -> Run:
    """The in-memory `Run` of an ended job that has a model (for the CLI, tests, benchmark)."""
    if job.model is None or job.data is None:
        raise RunError("this job has no trained model (it failed or never started)")
    h = job.snapshot()
    exp = job.experiment
    meta = {
        "name": job.name, "label": exp.name or exp.model.family, "family": exp.model.family,
        "dataset": exp.data.dataset, "status": h.status, "test_acc": h.final_test_acc,
        "n_params": job.model.n_params, "image_shape": list(job.data.image_shape),
        "created": job.created,
    }
    return Run(None, exp, h, meta, job.model, job.data.normalizer, job.initial_first_layer,
               job.optimizer_state())


def save_run(job, runs_dir: str | Path | None = None, *, label: str = "") -> Path:
    """Write an ended in-memory job (one that trained without a recorder) as a new run folder."""
    if job.model is None or job.data is None:
        raise RunError("this job has no trained model to save (it failed or never started)")
    h = job.snapshot()
    if h.active:
        raise RunError("the job is still running; stop it or wait for it to finish")
    rec = RunRecorder(runs_dir if runs_dir is not None else default_runs_dir(), job.experiment, label=label)
    rec.begin(job.model, job.data, job.initial_first_layer)
    if rec.error or not rec.checkpoint(job.model, h, optimizer=job.optimizer_state(),
                                       snapshots=job.frames()):
        shutil.rmtree(rec.path, ignore_errors=True)
        raise RunError(rec.error)
    return rec.path


__all__ = [
    "ACTIVE",
    "Run",
    "RunInfo",
    "saved_test_acc",
    "check_owner",
    "default_runs_dir",
    "delete_run",
    "inspect_run",
    "list_runs",
    "load_run",
    "publish_run",
    "read_meta",
    "read_snapshots",
    "rename_run",
    "run_dataset",
    "run_label",
    "run_from_job",
    "save_run",
]
