"""Writing a run folder as a job trains: the one writer the dashboard, the CLI and the
worker processes share.

The folder exists from the first step (`experiment.json` and `meta.json` at once); a
checkpoint (weights, optimiser state, embedding frames, history, then meta) follows at
every epoch end, at least every `CHECKPOINT_SECONDS` and when the job ends. Every file is
written under a temporary name and renamed into place, `meta.json` last. Reading, listing
and deleting runs is `runs`'.
"""

from __future__ import annotations

import json
import os
import re
import socket
import threading
import time
from pathlib import Path

import numpy as np

from digits_core.config import Experiment
from digits_core.data.datasets import IMAGE_SHAPE, Dataset
from digits_core.errors import RunError, short_reason
from digits_core.nn.classifier import Classifier
from digits_core.nn.models import save_weights, weights_file
from digits_core.store import readers

FORMAT_VERSION = 2
CHECKPOINT_SECONDS = 15.0  # a running job writes a checkpoint at least this often
# A run trained on another machine (a cluster worker) is alive while its meta is this fresh:
# its pid means nothing here, and a live run rewrites its meta every CHECKPOINT_SECONDS.
REMOTE_STALE_S = 4 * CHECKPOINT_SECONDS


# ------------------------------------------------------------------ names


def slug(text: str) -> str:
    """A safe folder-name stem: letters, digits, '.', '_' and '-' (at most 40)."""
    s = re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.")[:40]
    return s or "run"


def new_run_folder(runs_dir: Path, base: str) -> Path:
    """Create and return `runs_dir/<base>-<k>` for the smallest free k >= 1.

    `os.mkdir` is atomic, so two sessions starting at the same moment never share a folder.
    """
    runs_dir.mkdir(parents=True, exist_ok=True)
    stem = slug(base)
    taken = {p.name for p in runs_dir.iterdir()}
    k = 1
    while True:
        name = f"{stem}-{k}"
        if name not in taken:
            try:
                (runs_dir / name).mkdir()
                return runs_dir / name
            except FileExistsError:
                pass
        k += 1


# ------------------------------------------------------------------ writing


def _write_atomic(path: Path, write) -> None:
    """Write `path` through `write(tmp_path)` and rename it into place."""
    tmp = path.with_name(f".{path.stem}.tmp{path.suffix}")  # same suffix: savers key on it
    try:
        write(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _write_all(files: list[tuple[Path, object]]) -> None:
    """Write every (path, write(tmp_path)) under a temporary name first, then rename them
    into place in order: a write that fails (a full disk) leaves every old file as it was."""
    tmps = [(path, path.with_name(f".{path.stem}.tmp{path.suffix}")) for path, _ in files]
    try:
        for (_, write), (_, tmp) in zip(files, tmps):
            write(tmp)
    except BaseException:
        for _, tmp in tmps:
            tmp.unlink(missing_ok=True)
        raise
    for path, tmp in tmps:
        os.replace(tmp, path)


def _json_writer(obj):
    return lambda p: p.write_text(json.dumps(obj))


def _npz_writer(arrays: dict[str, np.ndarray]):
    def write(p: Path) -> None:
        with open(p, "wb") as f:
            np.savez(f, **arrays)

    return write


def write_json(path: Path, obj) -> None:
    """Write `obj` as JSON to `path` under a temporary name, renamed into place."""
    _write_atomic(path, _json_writer(obj))


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    _write_atomic(path, _npz_writer(arrays))


def _save_npy(path: Path, array: np.ndarray) -> None:
    with open(path, "wb") as f:
        np.save(f, array, allow_pickle=False)


def process_started(pid: int) -> float | None:
    """The start time of live process `pid`, or None. A zombie (ended, not yet reaped: a Ray
    worker whose node was removed, left to a parent that never reaps) trains nothing."""
    try:
        import psutil

        p = psutil.Process(pid)
        return None if p.status() == psutil.STATUS_ZOMBIE else p.create_time()
    except Exception:
        return None


class _Writer:
    """One daemon thread that runs the latest job handed to it; a job handed over while
    another waits replaces the waiting one (only the newest checkpoint is worth writing).
    `close` lets the thread end once the jobs are written."""

    def __init__(self, name: str):
        self._cond = threading.Condition()
        self._job = None
        self._busy = self._closed = False
        threading.Thread(target=self._loop, name=name, daemon=True).start()

    def put(self, job) -> None:
        with self._cond:
            self._job = job
            self._cond.notify_all()

    def wait(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._job is None and not self._busy)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def _loop(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._job is not None or self._closed)
                if self._job is None:
                    return
                job, self._job, self._busy = self._job, None, True
            try:
                job()
            finally:
                with self._cond:
                    self._busy = False
                    self._cond.notify_all()


class RunRecorder:
    """Writes one run folder as a job trains: created at the start, a checkpoint at every
    epoch end, every `CHECKPOINT_SECONDS` and when the job ends.

    A failed write (a full disk, a read-only folder) never stops training: `error` holds a
    one-line reason, the model stays in memory, and the next checkpoint tries again.
    """

    def __init__(
        self,
        runs_dir: str | Path,
        experiment: Experiment,
        *,
        owner: str = "",
        person: str = "",
        label: str = "",
        path: Path | None = None,
    ):
        self.experiment = experiment
        if path is None:
            base = experiment.name.removesuffix(" (edited)") or experiment.model.family
            try:
                path = new_run_folder(Path(runs_dir), base)
            except OSError as e:  # a read-only or full runs folder: nothing starts, one line says why
                raise RunError(f"cannot make a run folder in {Path(runs_dir).name or runs_dir} "
                               f"({e.strerror or type(e).__name__})") from None
            self.meta: dict = {
                "format": FORMAT_VERSION,
                "name": path.name,
                "label": label or path.name,
                "owner": owner,
                "person": person,
                "created": time.time(),
            }
        else:  # continuing a run: keep its name, label, owner and creation time
            self.meta = readers.read_meta(path / "meta.json").to_dict()
        self.path = path
        self.error = ""
        self._last = 0.0
        self._background: _Writer | None = None  # started by the first background checkpoint
        self.meta.update(status="queued", pid=os.getpid(), pid_started=process_started(os.getpid()),
                         host=socket.gethostname(), updated=time.time(),
                         weights=weights_file(experiment.model.family),
                         image_shape=list(IMAGE_SHAPE[experiment.data.dataset]),
                         family=experiment.model.family, dataset=experiment.data.dataset)
        self._guard(lambda: (write_json(self.path / "experiment.json", experiment.to_dict()),
                             write_json(self.path / "meta.json", self.meta)))

    def begin(self, model: Classifier, data: Dataset, first_layer_before: np.ndarray | None) -> None:
        """The files known before the first step: experiment, normaliser, initial weights."""
        exp = self.experiment
        self.meta.update(
            family=exp.model.family,
            dataset=exp.data.dataset,
            n_params=model.n_params,
            image_shape=list(data.image_shape),
            status="running",
            updated=time.time(),
        )
        self._guard(lambda: self._begin(data, first_layer_before))
        self._last = time.monotonic()

    def _begin(self, data: Dataset, first_layer_before) -> None:
        write_json(self.path / "experiment.json", self.experiment.to_dict())
        _write_npz(self.path / "normalizer.npz", data.normalizer.to_arrays())
        if first_layer_before is not None and not (self.path / "first_layer_before.npy").exists():
            _write_atomic(self.path / "first_layer_before.npy", lambda p: _save_npy(p, first_layer_before))
        write_json(self.path / "meta.json", self.meta)

    def due(self, gap: float = CHECKPOINT_SECONDS) -> bool:
        """True when the last checkpoint is at least `gap` seconds old."""
        return time.monotonic() - self._last >= gap

    def checkpoint(
        self,
        model: Classifier,
        history,
        *,
        optimizer: dict[str, np.ndarray] | None = None,
        snapshots: dict[str, np.ndarray] | None = None,
        background: bool = False,
    ) -> bool:
        """Write history, optimiser state, snapshots, weights, then meta. True if it worked.

        `background`: hand the writing to the recorder's writer thread and return at once
        (True), so that a training step never waits for a disk; the caller pays only for
        copying the weights. A checkpoint still waiting when the next one comes is replaced
        by it. A checkpoint in the foreground first waits for the writer (`flush`), so the
        files end as the last one says. `history` and `snapshots` must not change afterwards
        (a job passes copies).
        """
        self._last = time.monotonic()
        h = history
        self.meta.update(
            status=h.status,
            message=h.message,
            test_acc=h.final_test_acc,
            last_test_acc=next((a for a in reversed(h.test_acc) if a is not None), None),
            epochs_done=len(h.epochs),
            steps_done=h.step,
            threads=h.threads,
            elapsed=h.elapsed,
            updated=time.time(),
        )
        state = model.state_dict()  # copies: training goes on while the writer writes
        optimizer = {k: np.array(v) for k, v in (optimizer or {}).items()}
        meta = dict(self.meta)

        def write() -> None:
            # All or nothing: every file is written before any replaces its old self, and
            # the weights rename after the history, meta last (a folder killed between two
            # renames that has weights also has the history beside them).
            files = [(self.path / "history.json", _json_writer(h.to_dict()))]
            if optimizer:
                files.append((self.path / "optimizer.npz", _npz_writer(optimizer)))
            if snapshots:
                files.append((self.path / "snapshots.npz", _npz_writer(snapshots)))
            files.append((self.path / weights_file(self.experiment.model.family),
                          lambda p: save_weights(state, p)))
            files.append((self.path / "meta.json", _json_writer(meta)))
            _write_all(files)

        if background:
            self._writer().put(lambda: self._guard(write, everything=True))
            return True
        self.flush()
        return self._guard(write)

    def flush(self) -> None:
        """Wait until the writer thread has written every checkpoint handed to it, and let
        it end (the next background checkpoint starts another)."""
        if self._background is not None:
            self._background.wait()
            self._background.close()
            self._background = None

    def _writer(self) -> _Writer:
        if self._background is None:
            self._background = _Writer(f"checkpoints-{self.path.name}")
        return self._background

    def mark(self, history) -> bool:
        """Record a status change (queued, failed) without a checkpoint."""
        self.meta.update(status=history.status, message=history.message, updated=time.time())
        return self._guard(lambda: write_json(self.path / "meta.json", self.meta))

    def _guard(self, write, *, everything: bool = False) -> bool:
        """Run `write`; a failed write becomes `error`. `everything`: any exception does (the
        writer thread has no caller to raise to), not only an OSError."""
        try:
            write()
        except Exception as e:
            if not (everything or isinstance(e, OSError)):
                raise
            self.error = (f"could not save the run to {self.path.name} ({short_reason(e)}); "
                          "it stays in memory")
            return False
        self.error = ""
        return True


__all__ = ["CHECKPOINT_SECONDS", "FORMAT_VERSION", "REMOTE_STALE_S", "RunRecorder", "new_run_folder",
           "process_started", "slug", "write_json"]
