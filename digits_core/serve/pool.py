"""The local worker-process pool behind `DIGITLAB_EXECUTOR=processes` (see `executors`).

`DIGITLAB_WORKERS` (2) spawned processes, started once with torch imported and warmed. A
job trains in a worker through the same `TrainingJob` + `RunRecorder` as in a thread, so
its folder's meta names the worker's pid and a worker that dies leaves its one run
"interrupted". The worker reports the job's history (and new embedding frames) every
`PROGRESS_S` over its pipe; Stop sets the worker's shared Event, which the batch loop
reads. A worker silent for `hang_s`, or still training `stop_grace` seconds after a Stop,
is killed and replaced. So is a worker that dies or stays silent while it starts, up to
`START_RETRIES` times in a row: a machine that cannot start one at all gets a clear message
at Start, not a pool that respawns forever.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import threading
import time

from digits_core.errors import ConfigError, RunError
from digits_core.serve.remote import (
    HANG_S,
    PROGRESS_S,
    STOP_GRACE_S,
    RemoteExecutor,
    RemoteJob,
    RemoteTraining,
)
from digits_core.serve.warmup import warm_up
from digits_core.threads import lower_thread_priority, release_memory

READY_S = 180.0  # a new worker must import torch and report ready within this

log = logging.getLogger(__name__)


def _worker_main(conn, stop, env: dict[str, str]) -> None:
    """A pool worker: warm up, then train one job spec at a time until told to end. All of
    it is training work, so all of it yields to the server's pages (its import of torch
    at start too, which comes while the server draws its first page)."""
    os.environ.update(env)
    lower_thread_priority()
    warm_up()
    conn.send(("ready", os.getpid()))
    while True:
        try:
            spec = conn.recv()
        except (EOFError, OSError):
            return
        if spec is None:
            return
        training = RemoteTraining(spec, stop)
        while True:
            ended = training.wait(PROGRESS_S)
            conn.send(("report", training.report()))
            if ended:
                break
        del training
        release_memory()  # a worker lives for many runs: each one's memory goes back




_spawning = threading.Lock()


class _no_main_module:
    """A spawned process imports its parent's `__main__` first. Under `streamlit run` that is
    the app script itself: a worker would start a dashboard (and a pool of its own). The
    worker's code lives in this package, so it is spawned with a bare `__main__`."""

    def __enter__(self):
        import sys
        import types

        _spawning.acquire()
        self.main = sys.modules.get("__main__")
        sys.modules["__main__"] = types.ModuleType("__main__")

    def __exit__(self, *exc):
        import sys

        sys.modules["__main__"] = self.main
        _spawning.release()


class _Worker:
    def __init__(self, ctx, env: dict[str, str]):
        self.conn, child = ctx.Pipe()
        self.stop = ctx.Event()
        self.process = ctx.Process(target=_worker_main, args=(child, self.stop, env), daemon=True,
                                   name="digitlab-worker")
        with _no_main_module():
            self.process.start()
        child.close()
        self.job: RemoteJob | None = None

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def kill(self) -> None:
        self.process.kill()
        self.process.join(10)
        self.conn.close()


class ProcessExecutor(RemoteExecutor):
    """A warm pool of `workers` spawned processes; one job at a time in each."""

    kind = "processes"
    START_RETRIES = 3  # replacements in a row for workers that never reported ready

    def __init__(self, workers: int = 2, *, hang_s: float = HANG_S,
                 stop_grace: float = STOP_GRACE_S, context: str = "spawn"):
        if workers < 1:
            raise ConfigError(f"a process pool needs at least 1 worker, got {workers}")
        self.capacity = workers
        self.hang_s, self.stop_grace = hang_s, stop_grace
        self._ctx = multiprocessing.get_context(context)
        # Unset, each worker's run takes the cores no other process is using (ThreadShare).
        threads = os.environ.get("DIGITLAB_THREADS")
        self._env = {"DIGITLAB_THREADS": threads} if threads else {}
        self._cond = threading.Condition()
        self._workers: list[_Worker] = []
        self._idle: list[_Worker] = []
        self._closed = False
        self._start_failures = 0  # in a row; a worker that reports ready resets it
        for _ in range(workers):
            self._spawn()

    # -- the pool -------------------------------------------------------------------
    def _spawn(self) -> None:
        w = _Worker(self._ctx, self._env)
        with self._cond:
            self._workers.append(w)
        threading.Thread(target=self._await_ready, args=(w,), daemon=True,
                         name="digitlab-worker-ready").start()

    def _await_ready(self, w: _Worker) -> None:
        try:
            if not w.conn.poll(READY_S):
                raise RunError(f"no word within {READY_S:.0f} s")
            w.conn.recv()
        except Exception as e:
            if isinstance(e, (EOFError, OSError)):
                w.process.join(1)
                e = RunError(f"it ended before it was ready (exit code {w.process.exitcode})")
            self._start_failed(w, e)
            return
        with self._cond:
            if self._closed or w not in self._workers:
                return
            self._start_failures = 0
            self._idle.append(w)
            self._cond.notify_all()

    def _start_failed(self, w: _Worker, why: Exception) -> None:
        """Drop a worker that never became ready and start another in its place, unless
        `START_RETRIES` replacements in a row failed too: then the pool stays smaller."""
        with self._cond:
            self._start_failures += 1
            retry = not self._closed and self._start_failures <= self.START_RETRIES
        log.error("a training worker (pid %s) failed to start: %s%s", w.pid, why,
                  "; starting another" if retry else "; giving up on it")
        self._drop(w)
        if retry:
            self._spawn()

    @property
    def start_failures_exhausted(self) -> bool:
        """True once workers failed to start `START_RETRIES` + 1 times in a row."""
        with self._cond:
            return self._start_failures > self.START_RETRIES

    def _drop(self, w: _Worker) -> None:
        with self._cond:
            for pool in (self._workers, self._idle):
                if w in pool:
                    pool.remove(w)
            self._cond.notify_all()
        w.kill()

    def _acquire(self, job: RemoteJob) -> _Worker | None:
        with self._cond:
            while not self._idle and not job.stop_requested:
                if not self._workers or self._closed:
                    raise RunError(
                        f"no training worker could start ({self._start_failures} tries in a row "
                        "failed; the server's log says why)" if self._start_failures
                        else "no training worker is running")
                self._cond.wait(0.2)
            if job.stop_requested:
                return None
            w = self._idle.pop(0)
            w.job = job
            return w

    def _release(self, w: _Worker) -> None:
        with self._cond:
            w.job = None
            if w in self._workers and not self._closed:
                self._idle.append(w)
            self._cond.notify_all()

    def pids(self) -> list[int]:
        """The worker processes' ids (started ones, idle or busy)."""
        with self._cond:
            return [w.pid for w in self._workers if w.pid is not None]

    def worker_pid(self, name: str) -> int | None:
        """The pid of the worker training run `name`, or None."""
        with self._cond:
            return next((w.pid for w in self._workers if w.job is not None and w.job.name == name), None)

    def close(self) -> None:
        with self._cond:
            self._closed = True
            workers, self._workers, self._idle = list(self._workers), [], []
            self._cond.notify_all()
        for w in workers:
            if w.job is None:
                try:
                    w.conn.send(None)
                except OSError:
                    pass
            w.process.join(2)
            if w.process.is_alive():
                w.kill()

    # -- one job --------------------------------------------------------------------
    def train(self, job: RemoteJob) -> None:
        w = self._acquire(job)
        if w is None:
            job._set(status="stopped", message="stopped before it started")
            return
        w.stop.clear()
        job.on_stop = w.stop.set
        try:
            w.conn.send(job.spec)
            if job.stop_requested:
                w.stop.set()
            why = self._follow(job, w)
        except (OSError, EOFError):
            why = "its worker process died"
        finally:
            job.on_stop = None
        if why is None:
            self._release(w)
            return
        job.interrupt(why)
        self._drop(w)
        if not self._closed:
            self._spawn()

    def _follow(self, job: RemoteJob, w: _Worker) -> str | None:
        """Fold the worker's reports into `job` until it is done (None) or the worker is
        gone or must go (why)."""
        heard = time.monotonic()
        while True:
            if w.conn.poll(PROGRESS_S * 2):
                _, report = w.conn.recv()
                job.update(report)
                heard = time.monotonic()
                if report["done"]:
                    return None
            elif not w.process.is_alive():
                return f"its worker process ended (exit code {w.process.exitcode})"
            why = self._watchdog(job, time.monotonic() - heard)
            if why is not None:
                return why


__all__ = ["ProcessExecutor", "READY_S"]
