"""A race: 2 to 4 models trained side by side on equal terms, watched live, then ranked.

`fair` puts the contestants on one footing: the same data (dataset, split, subset and their
seed; each keeps its own pixel normalisation), the same seed (so the same order of images,
and the same initial weights wherever two models have the same shapes), shuffled full
epochs, and the same finish line: an epoch count, or a time budget after which each is
stopped (a stopped run is still measured on the whole test set). `Race` starts them
together through the runner (`JobRunner.start_group`: its queue, its slots, each on its
own worker of the executor), samples every contestant's test accuracy and loss against
its training time and the images it has seen (the fair axis when one is slower), and
ranks them when they end. A contestant that diverges, fails or loses its worker ends
alone; the others race on, and every run stays a folder of its own.
"""

from __future__ import annotations

import copy
import math
import threading
import time
from dataclasses import dataclass, field

from digits_core.analysis.drawings_by_shape import Inputs, accuracy_on
from digits_core.config import MAX_EPOCHS, DataConfig, Experiment
from digits_core.data.datasets import IMAGE_SHAPE
from digits_core.errors import ConfigError, RunError
from digits_core.nn.shapes import count_params
from digits_core.serve.groups import RunGroup
from digits_core.serve.runner import JobRunner, preflight
from digits_core.store.runs import load_run

MIN_CONTESTANTS, MAX_CONTESTANTS = 2, 4
MAX_BUDGET_S = 3600.0  # a time budget over an hour is not a lesson's race
SAMPLE_S = 0.25  # seconds between two looks at the contestants
LOSS_WINDOW = 10  # steps averaged into one loss sample
ENDED_BADLY = ("diverged", "failed", "interrupted", "broken")


@dataclass(frozen=True)
class Finish:
    """The finish line: `epochs` full passes, or `seconds` of each one's training time."""

    epochs: int | None = 3
    seconds: float | None = None

    def validate(self) -> None:
        if (self.epochs is None) == (self.seconds is None):
            raise ConfigError("a finish line is an epoch count or a time budget, one of them")
        if self.epochs is not None and not 1 <= self.epochs <= MAX_EPOCHS:
            raise ConfigError(f"the finish line must be 1..{MAX_EPOCHS} epochs, got {self.epochs}")
        if self.seconds is not None and not 1 <= self.seconds <= MAX_BUDGET_S:
            raise ConfigError(f"the time budget must be 1..{MAX_BUDGET_S:.0f} seconds, got {self.seconds:g}")

    def __str__(self) -> str:
        if self.epochs is not None:
            return f"{self.epochs} epoch{'s' if self.epochs != 1 else ''}"
        return f"{self.seconds:g} s of training each"


def check_count(n: int, what: str = "contestants") -> None:
    if not MIN_CONTESTANTS <= n <= MAX_CONTESTANTS:
        raise ConfigError(f"a race needs {MIN_CONTESTANTS} to {MAX_CONTESTANTS} {what}; "
                          f"you chose {n}" + (": add another" if n < MIN_CONTESTANTS else ""))


def fair(entries: list[tuple[str, Experiment]], data: DataConfig, finish: Finish,
         seed: int = 0) -> list[tuple[str, Experiment]]:
    """The contestants `entries` ((label, experiment) each) on equal terms, validated: each
    on `data` (keeping its own normalisation) with seed `seed`, shuffled full epochs, no
    early stop, run to `finish`. Labels are made unique. Raises ConfigError (one line,
    naming the contestant) when one is refused."""
    check_count(len(entries))
    finish.validate()
    out, seen = [], set()
    for label, exp in entries:
        base, k = label, 2
        while label in seen:
            label, k = f"{base} ({k})", k + 1
        seen.add(label)
        e = copy.deepcopy(exp)
        norm = e.data.normalization
        e.data = copy.deepcopy(data)
        e.data.normalization = norm
        t = e.train
        t.seed, t.sampling, t.steps_per_epoch, t.stop_at_loss = seed, "shuffle", None, None
        t.epochs = finish.epochs if finish.epochs is not None else MAX_EPOCHS
        t.live_embedding, t.eval_test_every_epoch = False, True
        if t.augment and norm == "standardize":
            t.augment = False  # augmentation needs a uniform background (config refuses both)
        e.name = f"race-{label}"
        try:
            preflight(e)
        except ConfigError as err:
            raise ConfigError(f"{label}: {' '.join(str(err).split())}") from None
        out.append((label, e))
    return out


@dataclass
class Sample:
    seconds: float  # the contestant's own training time so far
    images: int  # images it has trained on (steps x batch size)
    acc: float | None  # its newest test accuracy (the live subset while it trains)
    loss: float | None  # its training loss, the mean of its last LOSS_WINDOW steps


@dataclass
class Contestant:
    label: str
    experiment: Experiment
    params: int
    name: str = ""  # its run's name once started
    samples: list[Sample] = field(default_factory=list)


class Race(RunGroup):
    """A race through `runner`; `start()` it, then read `contestants`, `done`, `leaderboard()`."""

    def __init__(self, runner: JobRunner, entries: list[tuple[str, Experiment]], *,
                 data: DataConfig, finish: Finish, seed: int = 0, sample_s: float = SAMPLE_S):
        self.runner, self.finish, self.every = runner, finish, sample_s
        self.contestants = [Contestant(label, e, count_params(e.model, IMAGE_SHAPE[e.data.dataset]))
                            for label, e in fair(entries, data, finish, seed)]
        self.names: list[str] = []
        self.started: float | None = None
        self._lock = threading.Lock()
        self._models: dict[str, object] = {}  # a finished contestant's run, loaded once

    def start(self, owner: str = "", person: str = "") -> Race:
        self._launch([c.experiment for c in self.contestants], owner, person)
        return self

    def _started(self) -> None:
        for c, name in zip(self.contestants, self.names):
            c.name = name
        self.started = time.time()

    def histories(self) -> list:
        return [self.runner.history(c.name) for c in self.contestants]

    def sample(self) -> None:
        """One look at every contestant; a time budget stops those past it."""
        for c, h in zip(self.contestants, self.histories()):
            if h is None:
                continue
            if self.finish.seconds is not None and h.active and h.elapsed >= self.finish.seconds:
                self.runner.stop(c.name)
            if not h.step:
                continue
            acc = h.newest_test_acc if not h.active else \
                next((a for a in reversed(h.probe_test_acc) if a is not None), h.newest_test_acc)
            tail = [x for x in h.loss[-LOSS_WINDOW:] if math.isfinite(x)]  # NaN is no loss to draw
            s = Sample(h.elapsed, h.step * c.experiment.train.batch_size, acc,
                       sum(tail) / len(tail) if tail else None)
            with self._lock:
                if not c.samples or (s.images, s.acc) != (c.samples[-1].images, c.samples[-1].acc):
                    c.samples.append(s)

    look = sample

    def series(self) -> list[tuple[str, list[Sample]]]:
        with self._lock:
            return [(c.label, list(c.samples)) for c in self.contestants]

    def _drawings_accuracy(self, c: Contestant, h, drawings: Inputs | None) -> tuple[float | None, int]:
        """(accuracy, count) of a contestant that ended well on the drawings of its input
        shape; (None, 0) while it runs, when it ended badly, or with no such drawings."""
        if not drawings or h is None or h.active or h.status in ENDED_BADLY:
            return None, 0
        shape = IMAGE_SHAPE[c.experiment.data.dataset]
        if shape not in drawings:
            return None, 0
        if c.name not in self._models:
            try:
                self._models[c.name] = load_run(self.runner.runs_dir / c.name)
            except RunError:
                return None, 0
        return accuracy_on(self._models[c.name], drawings, shape)

    def leaderboard(self, drawings: Inputs | None = None) -> list[dict]:
        """One row per contestant, best first: those that ended well by test accuracy, then
        the ones still going, then those that ended badly (diverged, failed, interrupted).
        With `drawings` (`drawings_by_shape.visible_inputs`), a contestant that ended well
        gets its accuracy on those of its input shape ("drawings accuracy", "drawings")."""
        rows = []
        for c, h in zip(self.contestants, self.histories()):
            acc = h.newest_test_acc if h is not None else None
            images = h.step * c.experiment.train.batch_size if h is not None else 0
            status = h.status if h is not None else "gone"
            rows.append({
                "contestant": c.label, "run": c.name, "status": status,
                "test accuracy": acc if status not in ("diverged", "failed") else None,
                "parameters": c.params, "seconds": round(h.elapsed, 1) if h is not None else 0.0,
                "images/s": round(images / h.elapsed) if h is not None and h.elapsed > 0 else 0,
                "images seen": images,
                "note": (h.message if status in ENDED_BADLY else "") if h is not None else "",
            })
            rows[-1]["drawings accuracy"], rows[-1]["drawings"] = self._drawings_accuracy(c, h, drawings)
        bad = lambda r: 2 if r["status"] in ENDED_BADLY or r["status"] == "gone" else \
            1 if r["status"] in ("queued", "loading", "running", "stopping") else 0
        rows.sort(key=lambda r: (bad(r), -(r["test accuracy"] or 0.0)))
        for place, r in enumerate(rows, 1):
            r["place"] = place
        return rows


__all__ = ["MAX_CONTESTANTS", "MIN_CONTESTANTS", "Contestant", "Finish", "Race", "Sample",
           "check_count", "fair"]
