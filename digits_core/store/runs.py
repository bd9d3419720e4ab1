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

from digits_core.config import Experiment
from digits_core.data.datasets import Dataset, Normalizer, load_dataset
from digits_core.errors import DigitLabError, RunError
from digits_core.nn.classifier import Classifier
from digits_core.nn.models import build_model
from digits_core.store import bounded, readers
from digits_core.store.history import ACTIVE, History
from digits_core.store.recorder import REMOTE_STALE_S, process_started, write_json


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


def _meta(path: Path) -> dict:
    return readers.read_meta(path / "meta.json").to_dict()


def _alive(meta: dict) -> bool:
    host = meta.get("host")
    if host and host != socket.gethostname():
        updated = meta.get("updated")
        return isinstance(updated, (int, float)) and time.time() - updated < REMOTE_STALE_S
    pid = meta.get("pid")
    if not isinstance(pid, int) or pid <= 0:
        return False
    started = process_started(pid)
    want = meta.get("pid_started")
    return started is not None and (not isinstance(want, (int, float)) or abs(started - want) < 1.0)


def inspect_run(path: str | Path) -> RunInfo:
    """Validity check of a run folder (every file read through `readers`, cached until the
    folder changes); a run still training, or interrupted, is told apart from a broken one."""
    path = Path(path)
    try:
        meta = _meta(path)
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


def saved_frames(path: str | Path) -> dict[str, np.ndarray] | None:
    """A run's live-embedding frames (`monitor.Frames.to_arrays`), or None when it kept none
    or they cannot be read."""
    file = Path(path) / "snapshots.npz"
    if not file.is_file():
        return None
    try:
        return readers.read_snapshots(file)
    except RunError:
        return None


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


def rename_run(path: str | Path, label: str) -> None:
    """Give a run a new display name (its folder keeps its own). Who may is the runner's
    call (`JobRunner.rename`)."""
    path = Path(path)
    label = run_label(label)
    meta = _meta(path)
    meta["label"] = label
    write_json(path / "meta.json", meta)


def publish_run(path: str | Path, on: bool = True) -> None:
    """Publish a run to the class (or take it back): every person's pickers offer it first.
    Who may is the runner's call (`JobRunner.publish`); the run's files other than meta stay."""
    path = Path(path)
    meta = _meta(path)
    meta["published"] = time.time() if on else 0.0
    write_json(path / "meta.json", meta)


def delete_run(path: str | Path, runs_dir: str | Path | None = None) -> None:
    """Remove one run folder; refuses paths outside `runs_dir` and runs still training. Who
    may is the runner's call (`JobRunner.delete`)."""
    path = Path(path).resolve()
    root = (Path(runs_dir) if runs_dir is not None else default_runs_dir()).resolve()
    if path.parent != root or not path.is_dir():
        raise RunError(f"{path.name} is not a run folder inside the runs folder")
    if inspect_run(path).status in ACTIVE:
        raise RunError(f"{path.name} is still training; stop it first")
    shutil.rmtree(path)


def run_dataset(run: Run, *, mnist_dir: str | None = None) -> Dataset:
    """The run's own data split (same config and seed), for re-evaluation."""
    cfg = copy.deepcopy(run.experiment.data)  # never edit the run's own experiment
    if mnist_dir is not None:
        cfg.mnist_dir = mnist_dir
    return load_dataset(cfg)


__all__ = [
    "Run",
    "RunInfo",
    "default_runs_dir",
    "delete_run",
    "inspect_run",
    "list_runs",
    "load_run",
    "publish_run",
    "rename_run",
    "run_dataset",
    "run_label",
    "saved_frames",
    "saved_test_acc",
]
