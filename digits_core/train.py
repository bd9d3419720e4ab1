"""Training as a generator of events, and as a background job that any thread can watch.

`train()` yields `Step`, `Epoch` and finally `Done` events and never prints. The CLI's
progress bar, the dashboard's live charts and the tests all consume these same events;
`TrainingJob` runs `train()` in a thread and folds the events into a lock-guarded
`History` that anyone can snapshot.
"""

from __future__ import annotations

import copy
import math
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np

from .config import Experiment, TrainConfig
from .data import Dataset, load_dataset
from .errors import ConfigError, DigitLabError
from .models import Classifier, build_model

DIVERGENCE_FACTOR = 20.0  # a batch loss this many times the loss at initialisation: blown up


@dataclass
class Step:
    step: int  # global step, 1-based
    epoch: int  # 1-based epoch the step belongs to
    loss: float  # this batch's training loss
    images_per_s: float  # throughput over the last few steps
    elapsed: float  # seconds of training so far
    eta: float  # estimated seconds to the end of the run
    total_steps: int


@dataclass
class Epoch:
    epoch: int  # 1-based
    train_acc: float  # running accuracy on this epoch's training batches
    test_acc: float | None  # accuracy on the whole test set, if measured
    train_loss: float  # mean training loss over the epoch
    elapsed: float


@dataclass
class Done:
    status: str  # finished | stopped | diverged | failed
    message: str  # one line for a person
    test_acc: float | None
    elapsed: float


def lr_at(tc: TrainConfig, step: int, total: int) -> float:
    """Learning rate for 0-based `step` of `total`: constant, or a one-cycle warm-up/cosine."""
    if tc.lr_schedule == "constant":
        return tc.lr
    warm = max(1, int(0.15 * total))
    if step < warm:
        return tc.lr * (0.1 + 0.9 * step / warm)
    t = (step - warm) / max(1, total - warm)
    return tc.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def batch_order(n: int, tc: TrainConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays for one epoch of batches, as `tc.sampling` says."""
    bs = min(tc.batch_size, n)
    steps = tc.steps_per_epoch or math.ceil(n / bs)
    if tc.sampling == "replacement":
        for _ in range(steps):
            yield rng.integers(0, n, bs)
        return
    order = np.arange(n) if tc.sampling == "sequential" else rng.permutation(n)
    for s in range(steps):
        start = (s * bs) % n
        idx = order[start : start + bs]
        if len(idx) < bs and tc.steps_per_epoch:
            idx = np.concatenate([idx, order[: bs - len(idx)]])
        yield idx


def initial_loss(model: Classifier, data: Dataset, tc: TrainConfig) -> float:
    """The loss of one batch at initialisation, measured on a fixed probe of training images:
    the yardstick divergence is judged against."""
    from .numpy_mlp import LOSSES

    n = min(512, len(data.labels_train))
    logits = model.forward(data.x_train[:n]).astype(np.float64)
    value, _ = LOSSES[tc.loss](logits, data.labels_train[:n], "mean")
    if tc.loss_reduction == "sum":
        value *= min(tc.batch_size, len(data.labels_train)) * (10 if tc.loss == "mse-softmax" else 1)
    return max(float(value), 1e-6)


def accuracy(model: Classifier, x: np.ndarray, y: np.ndarray) -> float:
    return float((model.forward(x).argmax(1) == y).mean())


def train(
    model: Classifier,
    data: Dataset,
    tc: TrainConfig,
    *,
    stop: threading.Event | None = None,
) -> Iterator[Step | Epoch | Done]:
    """Train `model` on `data`; yields events. Setting `stop` ends it within one batch."""
    import torch

    tc.validate()
    stop = stop or threading.Event()
    rng = np.random.default_rng(tc.seed)
    gen = torch.Generator().manual_seed(tc.seed)
    torch.manual_seed(tc.seed)  # torch dropout draws from the global generator
    model.begin_training(tc)
    x, y = model.to_backend(data.x_train), model.labels_to_backend(data.labels_train)
    n = len(data.labels_train)
    steps_per_epoch = tc.steps_per_epoch or math.ceil(n / min(tc.batch_size, n))
    total = tc.epochs * steps_per_epoch
    start_loss = initial_loss(model, data, tc)
    t0 = time.perf_counter()
    step, test_acc = 0, None
    window: list[tuple[float, int]] = []
    for epoch in range(1, tc.epochs + 1):
        losses, correct, seen = [], 0, 0
        for idx in batch_order(n, tc, rng):
            if stop.is_set():
                yield _done("stopped", f"stopped by the user after {step} steps", model, data, t0)
                return
            xb, yb = model.take(x, idx), model.take(y, idx)
            if tc.augment:
                xb = model.augment_input(xb, gen, tc.augment_strength, labels=yb)
            loss, ok = model.train_step(xb, yb, lr_at(tc, step, total))
            step += 1
            if not math.isfinite(loss):
                yield _done("diverged", _diverged_msg(f"the loss became {loss}", step, tc), model, data, t0, eval_test=False)
                return
            if loss > DIVERGENCE_FACTOR * start_loss and tc.batch_size >= 8:
                what = f"the loss exploded to {loss:.3g} (it started at {start_loss:.3g})"
                yield _done("diverged", _diverged_msg(what, step, tc), model, data, t0, eval_test=False)
                return
            losses.append(loss)
            correct += ok
            seen += len(idx)
            now = time.perf_counter()
            window.append((now, len(idx)))
            if len(window) > 20:
                window.pop(0)
            span = now - window[0][0]
            ips = sum(k for _, k in window[1:]) / span if span > 0 else 0.0
            elapsed = now - t0
            yield Step(step, epoch, loss, ips, elapsed, elapsed / step * (total - step), total)
        train_loss = float(np.mean(losses))
        if train_loss > 2 * start_loss:
            what = f"the epoch's mean loss {train_loss:.3g} is far above where it started ({start_loss:.3g})"
            yield _done("diverged", _diverged_msg(what, step, tc), model, data, t0)
            return
        if tc.eval_test_every_epoch or epoch == tc.epochs:
            test_acc = accuracy(model, data.x_test, data.labels_test)
        yield Epoch(epoch, correct / max(seen, 1), test_acc, train_loss, time.perf_counter() - t0)
        if tc.stop_at_loss is not None and train_loss < tc.stop_at_loss:
            yield _done(
                "finished",
                f"reached the target loss {tc.stop_at_loss} after {epoch} epochs",
                model, data, t0, test_acc,
            )
            return
    yield _done("finished", f"finished {tc.epochs} epochs", model, data, t0, test_acc)


def _diverged_msg(what: str, step: int, tc: TrainConfig) -> str:
    return (
        f"training diverged: {what} at step {step}. The learning rate ({tc.lr:g}) is probably "
        "too high for this model; try a value 10x smaller."
    )


def _done(status, message, model, data, t0, test_acc=None, eval_test=True) -> Done:
    if test_acc is None and eval_test:
        test_acc = accuracy(model, data.x_test, data.labels_test)
    return Done(status, message, test_acc, time.perf_counter() - t0)


# ------------------------------------------------------------------ the job


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
            self.initial_first_layer = self.model.first_layer_weights()
            self._set(status="running", message="training")
            for ev in train(self.model, self.data, exp.train, stop=self._stop):
                with self._lock:
                    self._history.apply(ev)
                if self.on_event is not None:
                    self.on_event(ev)
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
    "Step",
    "Epoch",
    "Done",
    "History",
    "JobSlots",
    "TrainingJob",
    "train",
    "run_experiment",
    "lr_at",
    "batch_order",
    "ConfigError",
]
