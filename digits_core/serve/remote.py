"""Jobs that train somewhere else (a worker process, a Ray actor): the base the process and
Ray executors share.

The worker side is `RemoteTraining`: a `TrainingJob` on the run folder the server made,
reporting its history (and new embedding frames) when asked. The server side is
`RemoteJob`, the stand-in the runner and the pages watch like a local job: it waits for a
slot in the runner's queue (`runner.JobSlots`), then for its executor to train it, folding
each report into its history. `RemoteExecutor` makes those jobs and judges a silent or
unstoppable worker (`HANG_S`, `STOP_GRACE_S`).
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from digits_core.config import Experiment
from digits_core.store.history import History
from digits_core.store.recorder import RunRecorder
from digits_core.store.runs import load_run
from digits_core.training.jobs import TrainingJob, WatchedJob

PROGRESS_S = 0.25  # seconds between two progress reports of a job training elsewhere
HANG_S = 60.0  # a worker that reports nothing this long is hung: killed and replaced
STOP_GRACE_S = 10.0  # a job still training this long after Stop has its worker killed
INTERRUPTED = "interrupted: {why}; its last checkpoint is kept"

log = logging.getLogger(__name__)


log = logging.getLogger(__name__)


# ------------------------------------------------------------------ the worker side


class RemoteTraining:
    """A job as a worker (a pool process or a Ray actor) trains it: a `TrainingJob` on the
    run folder the server made, and `report()` to tell the server how it goes."""

    def __init__(self, spec: dict, stop=None):
        self.job: TrainingJob | None = None
        self._frames_sent = 0
        self._failed: History | None = None
        try:
            path = Path(spec["path"])
            exp = Experiment.from_dict(spec["experiment"])
            resume = load_run(path) if spec["resume"] else None
            recorder = RunRecorder(path.parent, exp, path=path)  # meta now names this process
            self.job = TrainingJob(exp, recorder=recorder, resume=resume,
                                   extra_epochs=spec["extra_epochs"], stop_event=stop)
            self.job.start()
        except Exception as e:  # told to the server as a failed run, never a dead worker
            self._failed = History(status="failed", message=f"{type(e).__name__}: {e}")

    def wait(self, timeout: float) -> bool:
        return self.job is None or self.job.wait(timeout)

    def stop(self) -> None:
        if self.job is not None:
            self.job.stop()

    def report(self) -> dict:
        """{"history": History.to_dict(), "frames": arrays when new ones exist else None,
        "done": the job has ended and saved its folder, "recorded": this process keeps the
        folder}."""
        if self.job is None:
            return {"history": self._failed.to_dict(), "frames": None, "done": True,
                    "recorded": False}
        done = self.job.wait(0)
        h = self.job.snapshot()
        frames = None
        if h.frames > self._frames_sent or (done and h.frames):
            frames = self.job.frames()
            self._frames_sent = h.frames
        return {"history": h.to_dict(), "frames": frames, "done": done, "recorded": True}

    def pid(self) -> int:
        return os.getpid()


# ------------------------------------------------------------------ the server side


class RemoteJob(WatchedJob):
    """The server's stand-in for a job that trains elsewhere; looks like a `TrainingJob`
    to the runner and the pages. `train(job)` of its executor runs in this job's thread,
    once the job has a slot, and calls `update` with every report."""

    monitor = None  # the embedding frames come in reports (`frames()`)

    def __init__(self, experiment: Experiment, recorder, *, slots, executor,
                 resume: bool = False, extra_epochs: int = 0, history: History | None = None):
        self.experiment = experiment
        self.recorder = recorder  # the server's: the folder's meta until a worker takes it over
        self.recorded = False  # a worker has taken the folder over (its meta names the worker)
        self.path = path = recorder.path
        self.slots = slots
        self.executor = executor
        self.spec = {"experiment": experiment.to_dict(), "path": str(path), "resume": resume,
                     "extra_epochs": extra_epochs}
        self._setup()
        if history is not None:  # continuing: show the old curves while it waits
            self._history = History.from_dict(history.to_dict())
            self._history.status, self._history.final_test_acc = "queued", None
        self._frames: dict[str, np.ndarray] | None = None
        self.stop_at: float | None = None  # time.monotonic() of the Stop
        self.on_stop = None  # set by the executor while it trains the job: forwards a Stop

    @property
    def name(self) -> str:
        return self.path.name

    def _background(self) -> None:
        acquired = False
        try:
            acquired = self.slots.acquire(self)
            if not acquired:
                self._set(status="stopped", message="stopped before it started")
                return
            self.executor.train(self)
        except Exception as e:  # the page shows it; this thread must never die silently
            log.exception("remote job %s", self.name)
            self._set(status="failed", message=f"{type(e).__name__}: {e}")
        finally:
            if acquired:
                self.slots.release(self)
            if self.snapshot().active:  # an executor that returned without an end
                self.interrupt("its worker ended without a result")
            if not self.recorded:  # no worker ever wrote the folder: say how it ended
                h = self.snapshot()
                if h.status == "interrupted":
                    h.status = "failed"
                self.recorder.mark(h)

    def stop(self) -> None:
        if not self._stop.is_set():
            self.stop_at = time.monotonic()
        super().stop()
        forward = self.on_stop
        if forward is not None:
            forward()

    def update(self, report: dict) -> None:
        h = History.from_dict(report["history"])
        with self._lock:
            if self._stop.is_set() and h.active:
                h.status = "stopping"
            self._history = h
            self.recorded = self.recorded or bool(report.get("recorded"))
            if report.get("frames") is not None:
                self._frames = report["frames"]

    def interrupt(self, why: str) -> None:
        """The worker is gone: the run ends here, its folder keeps the last checkpoint."""
        self._set(status="interrupted", message=INTERRUPTED.format(why=why), eta=None)

    def frames(self) -> dict[str, np.ndarray] | None:
        with self._lock:
            return self._frames



class RemoteExecutor:
    """What the process and Ray executors share: their jobs are `RemoteJob`s."""

    def job(self, experiment, recorder, slots, *, resume=None, extra_epochs=0):
        return RemoteJob(experiment, recorder, slots=slots, executor=self,
                         resume=resume is not None, extra_epochs=extra_epochs,
                         history=resume.history if resume is not None else None)

    def _watchdog(self, job: RemoteJob, silent_s: float) -> str | None:
        """Why `job`'s worker must be killed now, or None."""
        if silent_s > self.hang_s:
            return f"its worker sent nothing for {silent_s:.0f} s and was ended"
        if job.stop_at is not None and time.monotonic() - job.stop_at > self.stop_grace:
            return f"its worker did not stop within {self.stop_grace:.0f} s and was ended"
        return None


__all__ = ["HANG_S", "INTERRUPTED", "PROGRESS_S", "STOP_GRACE_S", "RemoteExecutor", "RemoteJob",
           "RemoteTraining"]
