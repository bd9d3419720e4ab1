"""Starting training jobs safely: a memory preflight, and stopping the jobs of closed tabs.

`preflight(experiment)` refuses, before any thread starts, a run whose model or batch would
not fit in memory (a 256-channel CNN on MNIST with batches of 8192 would take the whole
server down); it returns the parameter count for the UI.


A job's thread outlives the page that started it (that is the point: it survives clicks
and page switches). When the user closes the tab, nobody can see or stop that job any
more, so it must stop on its own. `SessionJobs` remembers `(session_id, job)` pairs and
`sweep(is_alive)` stops every running job whose session has been gone for `grace`
seconds. The grace period lets a session that drops and reconnects (a network blip, a
laptop lid) keep its job. Deciding whether a session is alive is the caller's business
(the dashboard asks the Streamlit runtime), so this module stays free of any UI.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable
from typing import Protocol

from .config import Experiment, ModelConfig
from .data import IMAGE_SHAPE
from .errors import ConfigError
from .models import EVAL_CHUNK, check_size

MEMORY_BUDGET_MB = 2048  # default cap on one run's estimated peak memory; $DIGITLAB_MAX_MEMORY_MB
DEFAULT_GRACE = 10.0  # seconds a session may be gone before its jobs are stopped
DEFAULT_EVERY = 2.0  # seconds between two sweeps of the watchdog thread


def activation_sizes(cfg: ModelConfig, image_shape: tuple[int, int]) -> list[int]:
    """Floats per image of every tensor the forward pass keeps for backward, in order."""
    h, w = image_shape
    sizes = [h * w]
    if cfg.family == "cnn":
        for b in cfg.conv:
            h, w = h + 2 * b.padding - b.kernel + 1, w + 2 * b.padding - b.kernel + 1
            full = b.channels * h * w
            sizes += [full] * (3 if b.batchnorm else 2)  # conv, (BatchNorm), activation
            h, w = h // b.pool, w // b.pool
            if b.pool > 1:
                sizes.append(b.channels * h * w)
            if b.dropout:
                sizes.append(b.channels * h * w)
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


__all__ = [
    "DEFAULT_EVERY",
    "DEFAULT_GRACE",
    "MEMORY_BUDGET_MB",
    "SessionJobs",
    "StoppableJob",
    "activation_sizes",
    "memory_estimate",
    "preflight",
]
