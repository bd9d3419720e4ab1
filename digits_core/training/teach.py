"""Teach a model people's drawings: continue a run (or the ready-made model) on MNIST plus
the collected drawings, into a new run of the person's, as a short job through the runner.

The drawings are few and MNIST is many, so each drawing is repeated until the drawings
make about DRAWING_SHARE of the teaching set (at most MAX_REPEAT times each), and only
MNIST_SUBSET of MNIST's training images come along: enough to hold what the model knows,
few enough for one epoch of seconds. The learning rate is the run's divided by LR_DIVISOR:
the model is nudged, not retrained. The new run's folder starts as a copy of the source
(its weights, normaliser, history; `store.taught` writes it), so the source is never
changed and the Runs page shows where it came from (`meta["taught"]`). `compare` is the before/after the page shows.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from digits_core.analysis.drawing_scores import read_inputs
from digits_core.data.datasets import Dataset
from digits_core.data.mnist import load_mnist
from digits_core.errors import RunError
from digits_core.store import bounded
from digits_core.store.recorder import RunRecorder
from digits_core.store.runs import Run, load_run, saved_test_acc
from digits_core.store.taught import TAUGHT, discard_taught_run, write_taught_run
from digits_core.training.jobs import TrainingJob

MNIST_SUBSET = 6_000  # MNIST training images that come along (stratified, seeded)
DRAWING_SHARE = 0.15  # the drawings' share of the teaching set after repeating them
MAX_REPEAT = 300  # a drawing is repeated at most this many times
LR_DIVISOR = 10.0  # the teaching learning rate is the run's divided by this
EPOCHS = 1
AUGMENT = False  # the drawings are taught as they were drawn (the augmentation blurs a few of them)
MNIST_HELD = 0.001  # MNIST test may drop this much (0.1 points) before the page says so


def repeats(n_drawings: int, n_mnist: int = MNIST_SUBSET) -> int:
    """How many times each drawing goes into the teaching set."""
    if n_drawings == 0:
        return 0
    return int(np.clip(round(DRAWING_SHARE * n_mnist / n_drawings), 1, MAX_REPEAT))


def teaching_data(run: Run, images: np.ndarray, labels: np.ndarray, *, mnist_dir: str | None,
                  mnist_subset: int = MNIST_SUBSET, seed: int = 0) -> Dataset:
    """MNIST's training subset plus the drawings `images (N, 28, 28)` 0..255 and `labels (N,)`
    repeated (`repeats`), with MNIST's test set and the run's own normaliser."""
    if run.experiment.data.dataset != "mnist":
        raise RunError("teaching with drawings needs an MNIST model (drawings are 28x28)")
    if len(images) == 0:
        raise RunError("there are no drawings to teach yet: mark some on the Draw page")
    x_tr, y_tr, x_te, y_te = load_mnist(mnist_dir)
    rng = np.random.default_rng(seed)
    pick = rng.choice(len(y_tr), size=min(mnist_subset, len(y_tr)), replace=False)
    k = repeats(len(images), len(pick))
    drawn = np.clip(np.rint(images), 0, 255).astype(np.uint8)
    x = np.concatenate([x_tr[pick], np.repeat(drawn, k, axis=0)])
    y = np.concatenate([y_tr[pick].astype(np.int64), np.repeat(labels.astype(np.int64), k)])
    return Dataset("mnist", x, y, x_te, y_te.astype(np.int64), run.normalizer)


def new_taught_folder(source: Run, runs_dir: str | Path, *, owner: str, person: str,
                      drawings: int) -> Path:
    """A new run folder holding a copy of `source`'s files, owned by `owner`."""
    if source.path is None:
        raise RunError("this model has no folder to continue from")
    base = str(source.meta.get("label") or source.path.name)
    if source.meta.get("ready_made"):
        base = "ready-made"
    return write_taught_run(
        source.path, runs_dir, base=f"{base.removesuffix('-taught')}-taught",
        meta={"owner": owner, "person": person, "created": time.time(), "published": 0.0,
              "status": "finished"},
        taught={"from": source.label, "drawings": int(drawings),
                "mnist_before": saved_test_acc(source.meta)},
    )


def teach(runner, source: Run, images: np.ndarray, labels: np.ndarray, *, owner: str,
          person: str = "", mnist_dir: str | None = None, mnist_subset: int = MNIST_SUBSET) -> str:
    """Start teaching `source` the drawings, as a new run of `owner`'s trained by `runner`;
    returns the new run's name. Raises RunError, DataError or ConfigError (one line)."""
    data = teaching_data(source, images, labels, mnist_dir=mnist_dir, mnist_subset=mnist_subset)
    path = new_taught_folder(source, runner.runs_dir, owner=owner, person=person, drawings=len(labels))
    try:
        run = load_run(path)
        exp = copy.deepcopy(run.experiment)
        exp.data.mnist_dir = mnist_dir
        exp.train.lr = exp.train.lr / LR_DIVISOR
        exp.train.epochs = len(run.history.epochs) + EPOCHS
        exp.train.live_embedding = False
        exp.train.augment = AUGMENT
        recorder = RunRecorder(runner.runs_dir, exp, path=path)
        job = TrainingJob(exp, data=data, recorder=recorder, resume=run, extra_epochs=EPOCHS)
        return runner.adopt(job, owner)
    except BaseException:
        discard_taught_run(path)
        raise


def taught_info(path: str | Path | None) -> dict | None:
    """What a taught run was taught from ({"from", "drawings", "mnist_before"}), else None."""
    if path is None or not (Path(path) / TAUGHT).is_file():
        return None
    try:
        d = bounded.read_json_object(Path(path) / TAUGHT, 4096)
    except RunError:
        return None
    return {"from": d["from"][:120] if isinstance(d.get("from"), str) else "",
            "drawings": d.get("drawings") if isinstance(d.get("drawings"), int) else 0,
            "mnist_before": d.get("mnist_before") if isinstance(d.get("mnist_before"), float) else None}


@dataclass
class Comparison:
    """Before and after teaching, on the drawings and on MNIST test."""

    drawings_before: float
    drawings_after: float
    mnist_before: float | None
    mnist_after: float | None
    n: int

    @property
    def mnist_dropped(self) -> bool:
        """MNIST test fell by more than MNIST_HELD (0.1 points)."""
        return (self.mnist_before is not None and self.mnist_after is not None
                and self.mnist_before - self.mnist_after > MNIST_HELD + 1e-9)


def compare(before: Run, after: Run, images: np.ndarray, labels: np.ndarray) -> Comparison:
    """Both models on the drawings; MNIST test as each run recorded it (the same 10,000)."""
    acc = (lambda r: float((read_inputs(r, images) == labels).mean())) if len(labels) else (lambda r: 0.0)
    return Comparison(acc(before), acc(after), saved_test_acc(before.meta), saved_test_acc(after.meta),
                      len(labels))


__all__ = [
    "MNIST_HELD",
    "Comparison",
    "compare",
    "new_taught_folder",
    "repeats",
    "taught_info",
    "teach",
    "teaching_data",
]
