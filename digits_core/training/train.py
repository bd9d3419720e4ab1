"""Training as a generator of events.

`train()` yields `Start`, then `Step`, `Epoch` and finally `Done` events and never prints. The CLI's
progress bar, the dashboard's live charts, the benchmark and the tests all consume these
same events; `jobs.TrainingJob` runs it in a background thread. The model says what is
trained (`models`), the learner how (`learners`).
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from digits_core.config import SMOOTHING_UNTIL, TrainConfig
from digits_core.data.datasets import Dataset
from digits_core.nn.classifier import EVAL_CHUNK, Classifier
from digits_core.training.learners import Learner, make_learner

GUESS_LEVEL = 0.2  # a finished run under this test accuracy (ten digits: a guess is 10 %) says so
DIVERGENCE_FACTOR = 20.0  # a batch loss this many times the loss at initialisation: blown up
THROUGHPUT_WINDOW = 20  # steps the images/s figure is averaged over


@dataclass
class Start:
    step: int  # the global step it starts after (0, or a continued run's steps so far)
    loss: float  # the loss before this part's first update, which divergence is judged against


@dataclass
class Step:
    step: int  # global step, 1-based
    epoch: int  # 1-based epoch the step belongs to
    loss: float  # this batch's training loss
    train_acc: float  # running accuracy on this epoch's training batches so far
    images_per_s: float  # throughput over the last few steps
    elapsed: float  # seconds of training so far
    eta: float  # estimated seconds to the end of the run
    total_steps: int
    steps_per_epoch: int


@dataclass
class Epoch:
    epoch: int  # 1-based
    train_acc: float  # running accuracy on this epoch's training batches
    test_acc: float | None  # accuracy on the whole test set, if measured
    train_loss: float  # mean training loss over the epoch
    elapsed: float


@dataclass
class Done:
    status: str  # finished | stopped | diverged
    message: str  # one line for a person
    test_acc: float | None  # None when stopped (the job measures it afterwards) or diverged
    elapsed: float


def lr_at(tc: TrainConfig, step: int, total: int) -> float:
    """Learning rate for 0-based `step` of `total`: constant, or a one-cycle warm-up/cosine."""
    if tc.lr_schedule == "constant":
        return tc.lr
    warm = max(1, int(tc.warmup * total))
    if step < warm:
        return tc.lr * (0.1 + 0.9 * step / warm)
    t = (step - warm) / max(1, total - warm)
    return tc.lr * (0.02 + 0.98 * 0.5 * (1 + math.cos(math.pi * t)))


def smoothing_at(tc: TrainConfig, step: int, total: int) -> float:
    """Label smoothing for 0-based `step` of `total`: `tc.label_smoothing` at the start,
    falling linearly to 0 at SMOOTHING_UNTIL of the run. Soft targets early regularise (the
    default CNN: 99.31 -> 99.44 % after 3 epochs, mean of 3 seeds); hard ones at the end
    leave a model whose probabilities mean what they say (the Draw page shows them, and a
    reading sure of its first view stops there), where a constant 0.1 would cap them near
    0.9."""
    if not tc.label_smoothing:
        return 0.0
    return tc.label_smoothing * max(0.0, 1.0 - step / max(1.0, SMOOTHING_UNTIL * total))


def steps_per_epoch(n: int, tc: TrainConfig) -> int:
    return tc.steps_per_epoch or math.ceil(n / min(tc.batch_size, n))


def batch_order(n: int, tc: TrainConfig, rng: np.random.Generator) -> Iterator[np.ndarray]:
    """Index arrays for one epoch of batches, as `tc.sampling` says."""
    bs = min(tc.batch_size, n)
    steps = steps_per_epoch(n, tc)
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
    from digits_core.nn.numpy_mlp import LOSSES

    n = min(512, len(data.labels_train))
    logits = model.forward(data.x_train[:n]).astype(np.float64)
    value, _ = LOSSES[tc.loss](logits, data.labels_train[:n], "mean")
    if tc.loss_reduction == "sum":
        value *= min(tc.batch_size, len(data.labels_train)) * (10 if tc.loss == "mse-softmax" else 1)
    return max(float(value), 1e-6)


def accuracy(
    model: Classifier, x: np.ndarray, y: np.ndarray, stop: threading.Event | None = None
) -> float | None:
    """Share of `x (N, H, W)` whose argmax is `y (N,)`; None if `stop` was set midway."""
    correct = 0
    for i in range(0, len(y), EVAL_CHUNK):
        if stop is not None and stop.is_set():
            return None
        correct += int((model.forward(x[i : i + EVAL_CHUNK]).argmax(1) == y[i : i + EVAL_CHUNK]).sum())
    return correct / max(len(y), 1)


class Throughput:
    """Images per second over the last `THROUGHPUT_WINDOW` steps."""

    def __init__(self):
        self.window: deque[tuple[float, int]] = deque()
        self.images = 0  # images of the steps in the window after its first

    def add(self, now: float, images: int) -> float:
        if self.window:
            self.images += images
        self.window.append((now, images))
        if len(self.window) > THROUGHPUT_WINDOW + 1:
            self.window.popleft()
            self.images -= self.window[0][1]
        span = now - self.window[0][0]
        return self.images / span if span > 0 else 0.0


class Divergence:
    """Judges a run blown up: a non-finite loss, a batch loss far above the loss at
    initialisation, or an epoch whose mean loss went well above where it started."""

    def __init__(self, start_loss: float, tc: TrainConfig):
        self.start, self.tc = start_loss, tc

    def after_step(self, loss: float) -> str | None:
        if not math.isfinite(loss):
            return f"the loss became {loss}"
        if loss > DIVERGENCE_FACTOR * self.start and self.tc.batch_size >= 8:
            return f"the loss exploded to {loss:.3g} (it started at {self.start:.3g})"
        return None

    def after_epoch(self, mean_loss: float) -> str | None:
        if mean_loss > 2 * self.start:
            return f"the epoch's mean loss {mean_loss:.3g} is far above where it started ({self.start:.3g})"
        return None

    def message(self, what: str, step: int) -> str:
        return (
            f"training diverged: {what} at step {step}. The learning rate ({self.tc.lr:g}) is "
            "probably too high for this model; try a value 10x smaller."
        )


def train(
    model: Classifier,
    data: Dataset,
    tc: TrainConfig,
    *,
    learner: Learner | None = None,
    stop: threading.Event | None = None,
    step_offset: int = 0,
    epoch_offset: int = 0,
    start_loss: float | None = None,
) -> Iterator[Start | Step | Epoch | Done]:
    """Train `model` on `data` for `tc.epochs` epochs; yields events.

    Setting `stop` ends it within one batch (or one evaluation chunk): the last event is
    then `Done("stopped", ..., test_acc=None)`, and measuring the model is the caller's
    choice. To continue a run, pass the steps and epochs it already trained as offsets:
    events count on from there, the learning-rate schedule spans the new epochs only,
    and the batch order differs from the first part's. Divergence is judged against
    `start_loss`, the loss at the very start (of the first part, for a continued run: a
    trained model's low loss would make one hard batch look like an explosion).
    """
    tc.validate()
    stop = stop or threading.Event()
    learner = learner or make_learner(model, tc)
    rng = np.random.default_rng(tc.seed if epoch_offset == 0 else [tc.seed, epoch_offset])
    x, y = learner.prepare(data.x_train, data.labels_train)
    n = len(data.labels_train)
    per_epoch = steps_per_epoch(n, tc)
    total = tc.epochs * per_epoch
    divergence = Divergence(start_loss or initial_loss(model, data, tc), tc)
    yield Start(step_offset, divergence.start)
    speed = Throughput()
    t0 = time.perf_counter()
    step = 0
    test_acc = None

    def done(status: str, message: str, acc: float | None = None) -> Done:
        return Done(status, message, acc, time.perf_counter() - t0)

    last = epoch_offset + tc.epochs
    for epoch in range(epoch_offset + 1, last + 1):
        loss_sum, correct, seen = 0.0, 0, 0
        for idx in batch_order(n, tc, rng):
            if stop.is_set():
                yield done("stopped", f"stopped by the user after {plural(step_offset + step, 'step')}")
                return
            xb, yb = learner.take(x, idx), learner.take(y, idx)
            if tc.augment:
                xb = learner.augment(xb, yb, idx, tc.augment_strength)
            loss, ok = learner.step(xb, yb, lr_at(tc, step, total), smoothing_at(tc, step, total))
            step += 1
            blown = divergence.after_step(loss)
            if blown and not math.isfinite(loss):  # a NaN or infinite loss is not drawn
                yield done("diverged", divergence.message(blown, step_offset + step))
                return
            loss_sum, correct, seen = loss_sum + loss, correct + ok, seen + len(idx)
            now = time.perf_counter()
            ips = speed.add(now, len(idx))
            elapsed = now - t0
            eta = elapsed / step * (total - step)
            yield Step(step_offset + step, epoch, loss, correct / seen, ips, elapsed, eta,
                       step_offset + total, per_epoch)
            if blown:  # the step that exploded is on the loss chart, as the message says
                yield done("diverged", divergence.message(blown, step_offset + step))
                return
        train_loss = loss_sum / per_epoch
        blown = divergence.after_epoch(train_loss)
        if blown:
            yield done("diverged", divergence.message(blown, step_offset + step))
            return
        if tc.eval_test_every_epoch or epoch == last:
            test_acc = accuracy(model, data.x_test, data.labels_test, stop)
            if test_acc is None:
                yield done("stopped", f"stopped by the user after {plural(step_offset + step, 'step')}")
                return
        yield Epoch(epoch, correct / max(seen, 1), test_acc, train_loss, time.perf_counter() - t0)
        if tc.stop_at_loss is not None and train_loss < tc.stop_at_loss:
            yield done("finished", f"reached the target loss {tc.stop_at_loss} after {epoch} epochs", test_acc)
            return
    message = f"finished {plural(last, 'epoch')}"
    if test_acc is not None and test_acc < GUESS_LEVEL:
        message += (f", but it reads the test set little better than a guess ({test_acc:.1%}): with "
                    f"a loss that jumped about, try a learning rate 10x smaller than {tc.lr:g}; with "
                    "one that fell slowly, more epochs or a larger rate")
    yield done("finished", message, test_acc)


def plural(n: int, word: str) -> str:
    """'1 epoch', '3 epochs', '12,000 steps'."""
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


__all__ = [
    "GUESS_LEVEL",
    "Done",
    "Epoch",
    "Start",
    "Step",
    "accuracy",
    "batch_order",
    "initial_loss",
    "lr_at",
    "smoothing_at",
    "steps_per_epoch",
    "train",
]
