"""Training jobs: a run in a background thread that any thread can watch and stop.

`TrainingJob` runs `train.train()` in a thread and folds its events into a lock-guarded
`History` that anyone can snapshot. `JobSlots` caps how many jobs train at once;
`preflight` refuses, before any thread starts, a run that would not fit in memory (a
256-channel CNN on MNIST with batches of 8192 would take the whole server down).

A job's thread outlives the page that started it (that is the point: it survives clicks
and page switches). When the user closes the tab for good, nobody can see or stop that job
any more, so it must stop on its own: `SessionJobs` remembers `(session_id, job)` pairs
and `sweep(is_alive)` stops every running job whose session has been gone for `grace`
seconds. Deciding whether a session is alive is the caller's business (the dashboard asks
the Streamlit runtime), so this module stays free of any UI.
"""

from __future__ import annotations

import copy
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

from .config import Experiment, ModelConfig, conv_shapes
from .data import IMAGE_SHAPE, Dataset, load_dataset
from .errors import ConfigError, DigitLabError
from .models import EVAL_CHUNK, Classifier, build_model, check_size, first_layer_weights
from .train import Done, Epoch, Step, accuracy, train

MEMORY_BUDGET_MB = 2048  # default cap on one run's estimated peak memory; $DIGITLAB_MAX_MEMORY_MB
DEFAULT_GRACE = 10.0  # seconds a session may be gone before its jobs are stopped
DEFAULT_EVERY = 2.0  # seconds between two sweeps of the watchdog thread


def activation_sizes(cfg: ModelConfig, image_shape: tuple[int, int]) -> list[int]:
    """Floats per image of every tensor the forward pass keeps for backward, in order."""
    h, w = image_shape
    sizes = [h * w]
    if cfg.family == "cnn":
        shapes = conv_shapes(cfg.conv, image_shape)
        for b, (c, h, w), (_, ph, pw) in zip(cfg.conv, shapes[0::2], shapes[1::2]):
            sizes += [c * h * w] * (3 if b.batchnorm else 2)  # conv, (BatchNorm), activation
            if b.pool > 1:
                sizes.append(c * ph * pw)
            if b.dropout:
                sizes.append(c * ph * pw)
    for width in cfg.hidden:
        sizes += [width] * (3 if cfg.dropout else 2)  # linear, activation, (dropout)
    return sizes + [10]


def memory_estimate(experiment: Experiment) -> int:
    """Rough peak bytes of one training step or one evaluation chunk, whichever is larger.

    Training keeps every activation of the batch plus its gradient; the weights come four
    times (values, gradients, two Adam moments). Evaluation runs `EVAL_CHUNK` images at a
    time and holds about two layers at once.
    """
    shape = IMAGE_SHAPE[experiment.data.dataset]
    n_params = check_size(experiment.model, shape)
    sizes = activation_sizes(experiment.model, shape)
    train = 4 * (2 * experiment.train.batch_size * sum(sizes) + 4 * n_params)
    evaluate = 4 * (2 * EVAL_CHUNK * max(sizes) + n_params)
    return max(train, evaluate)


def preflight(experiment: Experiment, budget_mb: float | None = None) -> int:
    """Validate `experiment`, refuse it if it would not fit in memory; return its parameter count.

    Raises ConfigError with a one-line reason and what to change.
    """
    experiment.validate()
    n_params = check_size(experiment.model, IMAGE_SHAPE[experiment.data.dataset])
    if budget_mb is None:
        budget_mb = float(os.environ.get("DIGITLAB_MAX_MEMORY_MB", MEMORY_BUDGET_MB))
    need_mb = memory_estimate(experiment) / 2**20
    if need_mb > budget_mb:
        raise ConfigError(
            f"this run would need about {need_mb:,.0f} MB of memory, over the limit of "
            f"{budget_mb:,.0f} MB; use a smaller batch, fewer channels, more pooling or "
            "narrower layers"
        )
    return n_params


class StoppableJob(Protocol):
    """What the registry needs of a job (`TrainingJob` has it)."""

    @property
    def done(self) -> bool: ...

    def stop(self) -> None: ...


class SessionJobs:
    """A thread-safe registry of the jobs each browser session started."""

    def __init__(self, grace: float = DEFAULT_GRACE, clock: Callable[[], float] = time.monotonic):
        self.grace = grace
        self._clock = clock
        self._lock = threading.Lock()
        self._jobs: list[tuple[str, StoppableJob]] = []
        self._gone_since: dict[str, float] = {}  # session id -> when it was first seen gone

    def register(self, session_id: str, job: StoppableJob) -> None:
        with self._lock:
            if not any(j is job for _, j in self._jobs):
                self._jobs.append((session_id, job))

    def sessions(self) -> set[str]:
        with self._lock:
            return {sid for sid, _ in self._jobs}

    def __len__(self) -> int:
        with self._lock:
            return len(self._jobs)

    def sweep(self, is_alive: Callable[[str], bool]) -> list[StoppableJob]:
        """Stop the jobs of sessions gone for at least `grace` seconds; return those jobs.

        Jobs that have ended are forgotten, so the registry never holds a model longer
        than the session does. A session seen alive again before the grace is over keeps
        its jobs.
        """
        now = self._clock()
        with self._lock:
            entries = [(sid, job) for sid, job in self._jobs if not job.done]
            alive = {sid: bool(is_alive(sid)) for sid in {sid for sid, _ in entries}}
            for sid, ok in alive.items():
                if ok:
                    self._gone_since.pop(sid, None)
                else:
                    self._gone_since.setdefault(sid, now)
            expired = {sid for sid, since in self._gone_since.items() if now - since >= self.grace}
            stopped = [job for sid, job in entries if sid in expired]
            self._jobs = [(sid, job) for sid, job in entries if sid not in expired]
            self._gone_since = {
                sid: t for sid, t in self._gone_since.items() if sid in alive and sid not in expired
            }
        for job in stopped:
            job.stop()
        return stopped

    def watch(
        self, is_alive: Callable[[str], bool], every: float = DEFAULT_EVERY
    ) -> threading.Thread:
        """Start a daemon thread that sweeps every `every` seconds for the process's life."""

        def loop() -> None:
            while True:
                time.sleep(every)
                try:
                    self.sweep(is_alive)
                except Exception:  # a watchdog thread that died would never stop a job again
                    logging.getLogger(__name__).exception("session watchdog sweep failed")

        thread = threading.Thread(target=loop, name="digitlab-session-watchdog", daemon=True)
        thread.start()
        return thread


@dataclass
class History:
    """Everything a chart needs, appended as events arrive."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    epochs: list[int] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float | None] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    images_per_s: float = 0.0
    elapsed: float = 0.0
    eta: float | None = None
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    status: str = "queued"  # queued | loading | running | finished | stopped | diverged | failed
    message: str = ""
    final_test_acc: float | None = None

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def active(self) -> bool:
        return self.status in ("queued", "loading", "running")

    def apply(self, ev: Step | Epoch | Done) -> None:
        if isinstance(ev, Step):
            self.steps.append(ev.step)
            self.loss.append(ev.loss)
            self.step, self.epoch, self.total_steps = ev.step, ev.epoch, ev.total_steps
            self.images_per_s, self.elapsed, self.eta = ev.images_per_s, ev.elapsed, ev.eta
            self.status = "running"
        elif isinstance(ev, Epoch):
            self.epochs.append(ev.epoch)
            self.train_acc.append(ev.train_acc)
            self.test_acc.append(ev.test_acc)
            self.epoch_loss.append(ev.train_loss)
            self.elapsed = ev.elapsed
        else:
            self.status, self.message = ev.status, ev.message
            self.final_test_acc, self.elapsed, self.eta = ev.test_acc, ev.elapsed, 0.0

    def to_dict(self) -> dict:
        return {k: copy.copy(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        h = cls()
        for k, v in d.items():
            if hasattr(h, k):
                setattr(h, k, v)
        return h


class JobSlots:
    """At most `limit` jobs train at once in this process; the rest wait in order."""

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


class TrainingJob:
    """One training run in a background thread: start, watch (`snapshot`), stop.

    The thread loads the data, builds the model and consumes `train()`; it never touches
    any UI. `stop()` ends the run within one batch and keeps the model as trained so far.
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        data: Dataset | None = None,
        slots: JobSlots | None = None,
        on_event=None,
        on_done=None,
    ):
        experiment.validate()
        self.experiment = experiment
        self.data = data
        self.model: Classifier | None = None
        self.initial_first_layer: np.ndarray | None = None
        self.slots = slots
        self.on_event = on_event  # called in the job's thread with every event
        self.on_done = on_done  # called in the job's thread when it ends, however it ends
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._history = History()
        self._thread: threading.Thread | None = None
        self.created = time.time()
        self.id = f"{int(self.created * 1000):x}"

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def start(self) -> TrainingJob:
        if self._thread is not None:
            raise RuntimeError("a job can only be started once")
        self._thread = threading.Thread(target=self._background, name=f"train-{self.id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job ends; True if it did within `timeout`."""
        if self._thread is None or self._thread is threading.current_thread():
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> History:
        """A consistent copy of the history, safe to read from any thread."""
        with self._lock:
            h = History.from_dict(self._history.to_dict())
        if h.status == "queued" and self.slots is not None:
            pos = self.slots.position(self)
            if pos is not None:
                h.message = f"waiting for a free training slot ({pos} in queue)"
        return h

    @property
    def done(self) -> bool:
        return not self.snapshot().active

    def _set(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self._history, k, v)

    def _background(self) -> None:
        lower_thread_priority()
        self._run()

    def _run(self) -> None:
        acquired = False
        try:
            if self.slots is not None:
                acquired = self.slots.acquire(self)
                if not acquired:
                    self._set(status="stopped", message="stopped before it started")
                    return
            self._set(status="loading", message="loading data and building the model")
            exp = self.experiment
            if self.data is None:
                self.data = load_dataset(exp.data)
            self.model = build_model(
                exp.model, self.data.image_shape, seed=exp.train.seed, device=exp.train.device
            )
            self.initial_first_layer = first_layer_weights(self.model)
            self._set(status="running", message="training")
            for ev in train(self.model, self.data, exp.train, stop=self._stop):
                with self._lock:
                    self._history.apply(ev)
                if self.on_event is not None:
                    self.on_event(ev)
                if isinstance(ev, Done) and ev.status == "stopped":
                    # Measured after the UI already shows "stopped": a Stop never waits for it.
                    acc = accuracy(self.model, self.data.x_test, self.data.labels_test)
                    self._set(final_test_acc=acc)
        except DigitLabError as e:
            self._set(status="failed", message=str(e))
        except MemoryError:
            self._set(status="failed", message="out of memory: try a smaller model, batch or subset")
        except Exception as e:  # the UI shows it; the thread must never die silently
            self._set(status="failed", message=f"{type(e).__name__}: {e}")
        finally:
            if acquired:
                self.slots.release(self)
            if self.on_done is not None:
                self.on_done(self)


def lower_thread_priority() -> None:
    """Make the calling thread (and the torch workers it will start) yield to interactive
    work: a server answering clicks and canvas predictions must not wait for a trainer.
    Niceness is per thread on Linux; `$DIGITLAB_TRAIN_NICE` (default 10, 0 = off)."""
    nice = int(os.environ.get("DIGITLAB_TRAIN_NICE", "10"))
    if nice <= 0 or not hasattr(os, "setpriority"):
        return
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        pass  # not permitted here: train at normal priority


def run_experiment(experiment: Experiment, *, data: Dataset | None = None, on_event=None) -> TrainingJob:
    """Train synchronously in the calling thread (CLI, tests, benchmark); returns the ended job."""
    job = TrainingJob(experiment, data=data, on_event=on_event)
    job._thread = threading.current_thread()
    job._run()
    return job


__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_GRACE",
    "MEMORY_BUDGET_MB",
    "History",
    "JobSlots",
    "SessionJobs",
    "StoppableJob",
    "TrainingJob",
    "activation_sizes",
    "lower_thread_priority",
    "memory_estimate",
    "preflight",
    "run_experiment",
]
