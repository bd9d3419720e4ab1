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

In the last two a `remote.RemoteJob` stands in for the job on the server (see `remote`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from digits_core.config import Experiment
from digits_core.errors import ConfigError
from digits_core.serve import remote
from digits_core.serve.pool import ProcessExecutor
from digits_core.training.jobs import TrainingJob

ENGINE = Path(__file__).resolve().parents[1]  # the digits_core folder, shipped to a Ray cluster


def job_cpus() -> int:
    """CPUs one Ray job asks for and trains on (its torch threads): `$DIGITLAB_JOB_CPUS` (1)."""
    return max(1, int(os.environ.get("DIGITLAB_JOB_CPUS", "1")))


class ThreadExecutor:
    """Jobs train in threads of this process (today's behaviour, the default)."""

    kind = "threads"
    capacity: int | None = None

    def job(self, experiment, recorder, slots, *, resume=None, extra_epochs=0):
        return TrainingJob(experiment, slots=slots, recorder=recorder, resume=resume,
                           extra_epochs=extra_epochs)

    def close(self) -> None:
        pass


class RayExecutor(remote.RemoteExecutor):
    """Each job is a Ray actor (`RemoteTraining`) with the CPUs and GPU it asks for."""

    kind = "ray"
    capacity: int | None = None  # the cluster queues by resources; the runner by `max_jobs`

    def __init__(self, address: str | None = None, *, hang_s: float = remote.HANG_S,
                 stop_grace: float = remote.STOP_GRACE_S, **init_kwargs):
        try:
            import ray
        except ImportError:
            raise ConfigError("DIGITLAB_EXECUTOR=ray needs Ray: pip install -r requirements-ray.txt") from None
        self.ray = ray
        self.hang_s, self.stop_grace = hang_s, stop_grace
        if not ray.is_initialized():
            # digits_core travels to the cluster with each job; torch and numpy must be there.
            env = {"py_modules": [str(ENGINE)]}
            ray.init(address=address, runtime_env=env, **init_kwargs)
        self._actor = ray.remote(remote.RemoteTraining)

    def resources(self, experiment: Experiment) -> dict:
        cpus = job_cpus()
        gpus = 1 if experiment.train.device == "cuda" else 0
        return {"num_cpus": cpus, "num_gpus": gpus,
                "runtime_env": {"env_vars": {"DIGITLAB_THREADS": str(cpus)}}}

    def train(self, job: remote.RemoteJob) -> None:
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
                ready, _ = ray.wait([ref], timeout=remote.PROGRESS_S * 2)
                if ready:
                    report, ref, started = ray.get(ref), None, True
                    job.update(report)
                    heard = time.monotonic()
                    if report["done"]:
                        break
                    time.sleep(remote.PROGRESS_S)
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
        return ProcessExecutor(int(os.environ.get("DIGITLAB_WORKERS", "2")))
    if kind == "ray":
        return RayExecutor(os.environ.get("DIGITLAB_RAY_ADDRESS") or None)
    raise ConfigError(f"DIGITLAB_EXECUTOR must be one of {', '.join(EXECUTORS)}, got {kind!r}")


__all__ = [
    "EXECUTORS",
    "RayExecutor",
    "ThreadExecutor",
    "executor_from_env",
    "job_cpus",
]
