"""The one seam between the pages and training: start, observe and stop jobs by run name.

`JobRunner` decides which jobs may run and for whom: before any thread starts, `caps`
refuses a run that would not fit in memory, a person's run over their `per_owner` training
at once or over their quota of kept runs; at most `max_jobs` train at once in the process
(`JobSlots`, first come first served); and a run whose owner's browser tabs are all gone
for `grace` seconds is stopped (and saved).

Every job writes its run folder as it trains, and the pages observe a run through its
recorded history: a running in-process job answers from memory, anything else from its
folder. That is what lets another executor (`executors`: threads of this process, a
pool of worker processes, a Ray cluster) train without the pages changing. The queue is
the runner's whatever the executor: first come first served across owners, and a queued
job can tell its place and an estimated wait (`queue_position`).
"""

from __future__ import annotations

import heapq
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from digits_core.config import Experiment
from digits_core.errors import ConfigError, RunError
from digits_core.serve import caps as limits
from digits_core.serve.caps import preflight
from digits_core.serve.executors import executor_from_env
from digits_core.store.history import History
from digits_core.store.quota import Caps, Usage
from digits_core.store.readers import read_history
from digits_core.store.recorder import RunRecorder
from digits_core.store.runs import (
    delete_run,
    inspect_run,
    load_run,
    publish_run,
    rename_run,
    saved_frames,
)
from digits_core.threads import release_memory
from digits_core.training.jobs import TrainingJob

DEFAULT_GRACE = 30.0  # seconds a person may have no tab before their runs stop (a reload on a busy server takes a while)
DEFAULT_EVERY = 2.0  # seconds between two sweeps of the watchdog thread


NO_CAPS = Caps()  # a runner's default: nobody's runs are capped


def may_change(meta: dict, by: str, doing: str) -> None:
    """The owner rule of a class server: only a run's owner may `doing` it (rename, continue,
    delete); RunError naming who may, otherwise. Anyone may look at any run."""
    if meta.get("owner", "") == by:
        return
    whose = str(meta.get("person") or "") if str(meta.get("owner", "")).startswith("@") else ""
    raise RunError(f"only {whose or 'the person who started it'} can {doing} "
                   f"{meta.get('label') or meta.get('name') or 'this run'}")


class JobSlots:
    """At most `limit` jobs train at once; the rest wait in order (any object with
    `stop_requested`: a `TrainingJob` or an `executors.RemoteJob`)."""

    def __init__(self, limit: int):
        self.limit = limit
        self._cond = threading.Condition()
        self._running: list[TrainingJob] = []
        self._waiting: list[TrainingJob] = []

    def acquire(self, job: TrainingJob) -> bool:
        """Block until `job` may run; False if the job was stopped while waiting."""
        with self._cond:
            self._waiting.append(job)
            try:
                while not job.stop_requested and (
                    len(self._running) >= self.limit or self._waiting[0] is not job
                ):
                    self._cond.wait(0.2)
                if job.stop_requested:
                    return False
                self._running.append(job)
                return True
            finally:
                self._waiting.remove(job)
                self._cond.notify_all()

    def release(self, job: TrainingJob) -> None:
        with self._cond:
            if job in self._running:
                self._running.remove(job)
            self._cond.notify_all()

    def position(self, job: TrainingJob) -> int | None:
        """1-based place in the queue, or None when not waiting."""
        with self._cond:
            return self._waiting.index(job) + 1 if job in self._waiting else None

    def counts(self) -> tuple[int, int]:
        with self._cond:
            return len(self._running), len(self._waiting)

    def running(self) -> list:
        with self._cond:
            return list(self._running)


START_DEDUPE_S = 3.0  # the same experiment started again by the same person within this: one job
KEEP_ENDED_S = 120.0  # an ended job is forgotten this long after it ended (its folder stays)


class JobRunner:
    """Starts, stops and observes training jobs for many people; see the module docstring."""

    def __init__(
        self,
        runs_dir: str | Path,
        *,
        max_jobs: int = 2,
        per_owner: int = 2,
        grace: float = DEFAULT_GRACE,
        clock: Callable[[], float] = time.monotonic,
        executor=None,
        own_runs_only: bool = False,
        caps: Caps = NO_CAPS,
    ):
        """`executor`: an `executors` executor; None = the one `$DIGITLAB_EXECUTOR` names.
        At most `max_jobs` train at once, fewer when the executor has fewer workers.
        `own_runs_only` (a class server): a run can be continued only by its owner.
        `caps`: how many runs and bytes of runs one owner may keep (`quota`)."""
        self.runs_dir = Path(runs_dir)
        self.executor = executor if executor is not None else executor_from_env()
        cap = self.executor.capacity
        self.slots = JobSlots(max_jobs if cap is None else min(max_jobs, cap))
        self.per_owner, self.grace, self._clock = per_owner, grace, clock
        self.own_runs_only = own_runs_only
        self.caps = caps
        self._lock = threading.Lock()
        self._jobs: dict[str, TrainingJob] = {}  # run name -> job, in start order
        self._settled = 0  # jobs seen ended or let go of since memory was last released
        self._owner: dict[str, str] = {}  # run name -> owner
        self._started: dict[str, tuple[float, str]] = {}  # run name -> (when, experiment JSON)
        self._ended: dict[str, float] = {}  # run name -> when it was seen ended
        self._gone_since: dict[str, float] = {}  # owner -> when first seen without a tab

    # -- starting and stopping ---------------------------------------------------------
    def start(self, experiment: Experiment, owner: str = "", person: str = "") -> str:
        """Start `experiment` for `owner` (`person`: their name, for others to read);
        returns the run's name (its folder's name).

        Raises ConfigError (one line) when the experiment is invalid, too large, or the
        owner already has `per_owner` runs training.
        """
        n_params = preflight(experiment)
        key = json.dumps(experiment.to_dict(), sort_keys=True)
        with self._lock:
            self._forget_ended()
            now = self._clock()
            for name, (when, k) in self._started.items():  # a double click is one press...
                if (self._owner.get(name) == owner and k == key and now - when < START_DEDUPE_S
                        and not self._jobs[name].done):  # ...but a run stopped at once may go again
                    return name
            self._check_owner_limit(owner)
            limits.check_quota(self.runs_dir, owner, self.caps, [n_params])
            recorder = RunRecorder(self.runs_dir, experiment, owner=owner, person=person)
            job = self.executor.job(experiment, recorder, self.slots)
            self._add(job, owner, key)
        job.start()
        return job.name

    def start_group(self, experiments: list[Experiment], owner: str = "", person: str = "") -> list[str]:
        """Start `experiments` together (a race, a sweep); returns their run names in order.

        Every one is checked first, so a refused one starts none (ConfigError naming it).
        The group counts as one run toward the owner's limit; its members wait in the same
        queue as everyone's runs, and each trains on its own worker of the executor."""
        n_params = [preflight(exp) for exp in experiments]
        with self._lock:
            self._forget_ended()
            self._check_owner_limit(owner)
            limits.check_quota(self.runs_dir, owner, self.caps, n_params)
            jobs = []
            for exp in experiments:
                recorder = RunRecorder(self.runs_dir, exp, owner=owner, person=person)
                jobs.append(self.executor.job(exp, recorder, self.slots))
                self._add(jobs[-1], owner, json.dumps(exp.to_dict(), sort_keys=True))
        for job in jobs:
            job.start()
        return [job.name for job in jobs]

    def continue_run(self, name: str, epochs: int, owner: str = "") -> str:
        """Train the saved run `name` for `epochs` more epochs in its own folder, with its
        optimiser state; its history grows. Raises RunError or ConfigError."""
        if not 1 <= epochs <= 1000:
            raise ConfigError(f"continue for 1..1000 epochs, got {epochs}")
        with self._lock:
            job = self._jobs.get(name)
            if job is not None and not job.done:
                raise RunError(f"{name} is still training")
        run = load_run(self.runs_dir / name)
        if self.own_runs_only:
            may_change(run.meta, owner, "continue")
        if run.meta.get("status") == "diverged":
            raise RunError(f"{name} diverged: its weights are broken, and more epochs at the same "
                           "learning rate would blow up again. Train a new run with a smaller one.")
        exp = run.experiment
        exp.train.epochs = len(run.history.epochs) + epochs
        preflight(exp)
        with self._lock:
            self._check_owner_limit(owner)
            recorder = RunRecorder(self.runs_dir, exp, path=run.path)
            job = self.executor.job(exp, recorder, self.slots, resume=run, extra_epochs=epochs)
            self._add(job, owner, json.dumps(exp.to_dict(), sort_keys=True))
        job.start()
        return name

    def adopt(self, job, owner: str = "") -> str:
        """Queue and start a `TrainingJob` made elsewhere (`teach`: a run continued on data
        of its own, which travels in memory, so it trains in a thread of this process
        whatever the executor), counted, queued and observed as `start`'s jobs are."""
        with self._lock:
            self._check_owner_limit(owner)
            job.slots = self.slots
            self._add(job, owner, job.name)
        job.start()
        return job.name

    def delete(self, name: str, by: str | None = None) -> None:
        """Delete the run folder `name` (`runs.delete_run`: not while it trains; with `by`, only
        its owner's: `may_change`) and forget its ended job: the pages list a person's runs
        from both, and a job remembered after its folder went kept the run on the Train page
        (and its name taken twice, by the next run given the freed name). Raises RunError."""
        with self._lock:
            job = self._jobs.get(name)
            if job is not None and not job.done:
                raise RunError(f"{name} is still training; stop it first")
            self._check_may_change(name, by, "delete")
            delete_run(self.runs_dir / name, self.runs_dir)
            for d in (self._jobs, self._owner, self._started, self._ended):
                d.pop(name, None)
            self._settled += 1

    def rename(self, name: str, label: str, by: str | None = None) -> None:
        """Give the run `name` a new display name; with `by`, only its owner may
        (`may_change`). Raises RunError."""
        self._check_may_change(name, by, "rename")
        rename_run(self._folder(name), label)

    def publish(self, name: str, on: bool = True, *, teacher: bool) -> None:
        """Publish the run `name` to the class (or take it back), which only a teacher may
        (`serving.is_teacher` decided it when they joined). Raises RunError."""
        if not teacher:
            raise RunError("only a teacher can publish a run to the class")
        publish_run(self._folder(name), on)

    def _folder(self, name: str) -> Path:
        """The folder of run `name`; RunError when `name` leads outside the runs folder."""
        path = self.runs_dir / name
        if path.resolve().parent != self.runs_dir.resolve():
            raise RunError(f"{name} is not a run folder inside the runs folder")
        return path

    def _check_may_change(self, name: str, by: str | None, doing: str) -> None:
        if by is not None:
            may_change(inspect_run(self._folder(name)).meta or {"name": name}, by, doing)

    def stop(self, name: str) -> None:
        job = self.job(name)
        if job is not None:
            job.stop()

    def close(self) -> None:
        """Let the executor go (a process pool's workers end; running jobs are interrupted)."""
        self.executor.close()

    def _add(self, job, owner: str, key: str) -> None:
        self._jobs.pop(job.name, None)
        self._jobs[job.name] = job
        self._owner[job.name] = owner
        self._started[job.name] = (self._clock(), key)
        self._ended.pop(job.name, None)

    def usage(self) -> dict[str, Usage]:
        """What each owner keeps in the runs folder: runs (broken ones too) and their bytes."""
        return limits.usage(self.runs_dir)

    def _check_owner_limit(self, owner: str) -> None:
        busy = sum(1 for n, j in self._jobs.items() if self._owner.get(n) == owner and not j.done)
        limits.check_owner_limit(busy, self.per_owner)

    def _forget_ended(self) -> None:
        now = self._clock()
        for name, job in list(self._jobs.items()):
            if job.done and job.wait(0):
                if name not in self._ended:
                    self._ended[name] = now
                    self._settled += 1
                if now - self._ended[name] > KEEP_ENDED_S:
                    for d in (self._jobs, self._owner, self._started, self._ended):
                        d.pop(name, None)
                    self._settled += 1

    # -- observing --------------------------------------------------------------------
    def job(self, name: str) -> TrainingJob | None:
        """The job of run `name` while this runner remembers it (a `TrainingJob` or an
        `executors.RemoteJob`: both have snapshot, frames, stop, done, wait, experiment)."""
        with self._lock:
            return self._jobs.get(name)

    def busy(self, name: str) -> bool:
        """True while run `name`'s job still works: training, or measuring after a Stop."""
        job = self.job(name)
        return job is not None and not job.wait(0)

    def owned(self, owner: str) -> list[str]:
        """Run names this runner started for `owner`, oldest first (ended ones for a while)."""
        with self._lock:
            self._forget_ended()
            return [n for n in self._jobs if self._owner.get(n) == owner]

    def active(self, owner: str | None = None) -> list[str]:
        with self._lock:
            return [n for n, j in self._jobs.items()
                    if not j.done and (owner is None or self._owner.get(n) == owner)]

    def history(self, name: str) -> History | None:
        """A run's history: live while its job is in memory, else from its folder."""
        job = self.job(name)
        if job is not None:
            return job.snapshot()
        info = inspect_run(self.runs_dir / name)
        try:
            h = read_history(info.path / "history.json")
        except RunError as e:
            h = History(warning=str(e))
        h.status = info.status or "broken"
        if info.status == "interrupted":
            h.message = "interrupted: the server stopped while it trained; its last checkpoint is kept"
        return h

    def frames(self, name: str) -> dict[str, np.ndarray] | None:
        """A run's embedding frames (`monitor.Frames.to_arrays`), live or from its folder."""
        job = self.job(name)
        frames = job.frames() if job is not None else None
        return frames if frames is not None else saved_frames(self.runs_dir / name)

    def counts(self) -> tuple[int, int]:
        """(training, waiting) across everyone."""
        return self.slots.counts()

    def queue_position(self, name: str) -> tuple[int, float | None] | None:
        """(1-based place in the queue, estimated seconds until it starts) for a queued
        run; None when it is not waiting. The wait plays the queue forward: each slot frees
        when its running job's ETA says, and every job ahead then takes as long as the
        running ones do in all (elapsed + ETA, on average). None for the wait until every
        running job has an ETA (its first step)."""
        job = self.job(name)
        pos = self.slots.position(job) if job is not None else None
        if pos is None:
            return None
        running = [j.snapshot() for j in self.slots.running()]
        if any(h.eta is None for h in running):
            return pos, None
        free = [h.eta for h in running] + [0.0] * max(0, self.slots.limit - len(running))
        heapq.heapify(free)
        took = [h.elapsed + h.eta for h in running]
        each = sum(took) / len(took) if took else 0.0
        for _ in range(pos - 1):
            heapq.heappush(free, heapq.heappop(free) + each)
        return pos, free[0] if free else None

    # -- closed tabs ------------------------------------------------------------------
    def sweep(self, is_alive: Callable[[str], bool]) -> list[str]:
        """Stop the runs of owners with no live tab for `grace` seconds; return their names.

        The runs are stopped, not lost: each saves its model as trained so far.
        """
        now = self._clock()
        with self._lock:
            running = [(n, self._owner.get(n, "")) for n, j in self._jobs.items() if not j.done]
            owners = {o for _, o in running}
            alive = {o: bool(is_alive(o)) for o in owners}
            for o, ok in alive.items():
                if ok:
                    self._gone_since.pop(o, None)
                else:
                    self._gone_since.setdefault(o, now)
            expired = {o for o, t in self._gone_since.items() if now - t >= self.grace}
            self._gone_since = {o: t for o, t in self._gone_since.items() if o in owners and o not in expired}
            stopped = [n for n, o in running if o in expired]
            jobs = [self._jobs[n] for n in stopped]
        for job in jobs:
            job.stop()
        self._release_memory()
        return stopped

    def _release_memory(self) -> None:
        """When runs have ended (or been let go of) and none trains, give their memory back:
        a class that has left leaves the server about as big as it was idle."""
        with self._lock:
            self._forget_ended()
            if not self._settled or any(not j.done for j in self._jobs.values()):
                return
            self._settled = 0
        release_memory()

    def watch(self, is_alive: Callable[[str], bool], every: float = DEFAULT_EVERY) -> threading.Thread:
        """Start a daemon thread that sweeps every `every` seconds for the process's life."""

        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.sweep(is_alive)
                except Exception:  # a watchdog thread that died would never stop a job again
                    logging.getLogger(__name__).exception("runner sweep failed")

        thread = threading.Thread(target=loop, name="digitlab-runner-watchdog", daemon=True)
        thread.start()
        return thread


__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_GRACE",
    "JobRunner",
    "JobSlots",
    "may_change",
    "preflight",  # `caps.preflight`, where the pages and the groups have always found it
]
