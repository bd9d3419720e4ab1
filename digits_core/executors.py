"""Where a job trains: threads of this process, a pool of worker processes, or a Ray cluster.

`JobRunner` hands every job to one executor and observes it the same way whatever the
executor: `snapshot()` (a `History`), `frames()`, `stop()`, `done`, `wait()`, `name`,
`experiment`. The run folder is made by the runner before the job is handed over, so a
run has its name (and folder) at once, wherever it will train.

- `ThreadExecutor` (the default): a `jobs.TrainingJob` thread in this process.
- `pool.ProcessExecutor` (`DIGITLAB_EXECUTOR=processes`): a warm pool of worker processes;
  a job trains in one through the same `TrainingJob` + `RunRecorder`, and a worker that
  dies or hangs costs only its own run (see `pool`).
- `RayExecutor` (`DIGITLAB_EXECUTOR=ray`): each job is a Ray actor holding a `TrainingJob`,
  asking for `DIGITLAB_JOB_CPUS` CPUs (1) and a GPU when the experiment's device is cuda;
  the server polls it every `PROGRESS_S` and stops it by a call. The run folders must be
  on storage every node shares (`DIGITLAB_RUNS`). `ray` is imported only here, only then.

In the last two a `RemoteJob` stands in for the job on the server: it waits for a slot in
the runner's queue (`runner.JobSlots`), then for the executor to train it, folding each
report into its history.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

import numpy as np

from .config import Experiment
from .errors import ConfigError
from .jobs import History, TrainingJob, WatchedJob

PROGRESS_S = 0.25  # seconds between two progress reports of a job training elsewhere
HANG_S = 60.0  # a worker that reports nothing this long is hung: killed and replaced
STOP_GRACE_S = 10.0  # a job still training this long after Stop has its worker killed
INTERRUPTED = "interrupted: {why}; its last checkpoint is kept"

log = logging.getLogger(__name__)


def job_cpus() -> int:
    """CPUs one Ray job asks for and trains on (its torch threads): `$DIGITLAB_JOB_CPUS` (1)."""
    return max(1, int(os.environ.get("DIGITLAB_JOB_CPUS", "1")))


# ------------------------------------------------------------------ the worker side


class RemoteTraining:
    """A job as a worker (a pool process or a Ray actor) trains it: a `TrainingJob` on the
    run folder the server made, and `report()` to tell the server how it goes."""

    def __init__(self, spec: dict, stop=None):
        self.job: TrainingJob | None = None
        self._frames_sent = 0
        self._failed: History | None = None
        try:
            from .recorder import RunRecorder
            from .runs import load_run

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



class ThreadExecutor:
    """Jobs train in threads of this process (today's behaviour, the default)."""

    kind = "threads"
    capacity: int | None = None

    def job(self, experiment, recorder, slots, *, resume=None, extra_epochs=0):
        return TrainingJob(experiment, slots=slots, recorder=recorder, resume=resume,
                           extra_epochs=extra_epochs)

    def close(self) -> None:
        pass


class _Remote:
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


class RayExecutor(_Remote):
    """Each job is a Ray actor (`RemoteTraining`) with the CPUs and GPU it asks for."""

    kind = "ray"
    capacity: int | None = None  # the cluster queues by resources; the runner by `max_jobs`

    def __init__(self, address: str | None = None, *, hang_s: float = HANG_S,
                 stop_grace: float = STOP_GRACE_S, **init_kwargs):
        try:
            import ray
        except ImportError:
            raise ConfigError("DIGITLAB_EXECUTOR=ray needs Ray: pip install -r requirements-ray.txt") from None
        import digits_core

        self.ray = ray
        self.hang_s, self.stop_grace = hang_s, stop_grace
        if not ray.is_initialized():
            # digits_core travels to the cluster with each job; torch and numpy must be there.
            env = {"py_modules": [str(Path(digits_core.__file__).parent)]}
            ray.init(address=address, runtime_env=env, **init_kwargs)
        self._actor = ray.remote(RemoteTraining)

    def resources(self, experiment: Experiment) -> dict:
        cpus = job_cpus()
        gpus = 1 if experiment.train.device == "cuda" else 0
        return {"num_cpus": cpus, "num_gpus": gpus,
                "runtime_env": {"env_vars": {"DIGITLAB_THREADS": str(cpus)}}}

    def train(self, job: RemoteJob) -> None:
        ray = self.ray
        actor = self._actor.options(**self.resources(job.experiment)).remote(job.spec)
        job.on_stop = lambda: actor.stop.remote()
        if job.stop_requested:
            actor.stop.remote()
        job._set(message="waiting for the cluster to place it")
        why, ref, started = None, None, False
        try:
            heard = time.monotonic()
            while True:
                ref = ref or actor.report.remote()
                ready, _ = ray.wait([ref], timeout=PROGRESS_S * 2)
                if ready:
                    report, ref, started = ray.get(ref), None, True
                    job.update(report)
                    heard = time.monotonic()
                    if report["done"]:
                        break
                    time.sleep(PROGRESS_S)
                elif not started and job.stop_requested:  # never placed: nothing to save
                    job._set(status="stopped", message="stopped before it started")
                    break
                # Until its actor runs, the job waits in the cluster's queue: not a hang.
                why = self._watchdog(job, time.monotonic() - heard) if started else None
                if why is not None:
                    break
        except ray.exceptions.RayError as e:
            why = f"its Ray worker failed ({type(e).__name__})"
        finally:
            job.on_stop = None
            ray.kill(actor)
        if why is not None:
            job.interrupt(why)

    def close(self) -> None:
        pass  # the cluster (or the local Ray) belongs to whoever started it


EXECUTORS = ("threads", "processes", "ray")


def executor_from_env():
    """The executor `$DIGITLAB_EXECUTOR` names (threads | processes | ray; default threads),
    sized by `$DIGITLAB_WORKERS` (processes) or placed by `$DIGITLAB_RAY_ADDRESS` (ray)."""
    kind = os.environ.get("DIGITLAB_EXECUTOR", "threads").strip().lower() or "threads"
    if kind == "threads":
        return ThreadExecutor()
    if kind == "processes":
        from .pool import ProcessExecutor

        return ProcessExecutor(int(os.environ.get("DIGITLAB_WORKERS", "2")))
    if kind == "ray":
        return RayExecutor(os.environ.get("DIGITLAB_RAY_ADDRESS") or None)
    raise ConfigError(f"DIGITLAB_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {kind!r}")


__all__ = [
    "EXECUTORS",
    "PROGRESS_S",
    "RayExecutor",
    "RemoteJob",
    "RemoteTraining",
    "ThreadExecutor",
    "executor_from_env",
    "job_cpus",
]
