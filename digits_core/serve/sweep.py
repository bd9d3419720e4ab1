"""A small hyperparameter sweep: one or two settings over a grid or a random set, a few seeds,
at most `MAX_RUNS` ordinary runs spread over the runner's workers, hopeless runs stopped
early by successive halving, and the best configuration found.

Every point is an ordinary run (a folder, live, stoppable), started together through
`JobRunner.start_group`, so a sweep waits in the same queue as everyone's runs and each run
trains on its own worker of the executor (threads, processes or a Ray cluster).

Successive halving, asynchronous (as ASHA does it): at each rung (a quarter and half of the
epochs) a run's test accuracy is compared with every run of the sweep that reached the same
epoch; one in the worse half of at least `HALVING_MIN` is stopped. Stopped runs keep their
folders and their accuracy so far; the results mark them.
"""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field

import numpy as np

from digits_core.config import Experiment
from digits_core.errors import ConfigError
from digits_core.serve.groups import RunGroup
from digits_core.serve.runner import JobRunner, preflight

MAX_RUNS = 16  # a sweep that fits a lesson
MAX_SEEDS = 4
HALVING_MIN = 3  # runs that must have reached a rung before one is judged against them
TICK_S = 0.5

# A sweepable setting: name -> (part, field, label, log scale, integer)
PARAMS: dict[str, tuple[str, str, str, bool, bool]] = {
    "lr": ("train", "lr", "learning rate", True, False),
    "width": ("model", "hidden", "hidden width", True, True),
    "batch_size": ("train", "batch_size", "batch size", True, True),
    "dropout": ("model", "dropout", "dropout", False, False),
    "l2": ("train", "l2", "L2 penalty", True, False),
}


@dataclass
class Axis:
    param: str  # a PARAMS name
    values: list[float]  # grid values, or (random) the low and high of the range


@dataclass
class SweepSpec:
    base: Experiment  # everything the sweep does not vary
    axes: list[Axis]  # one or two
    seeds: int = 1  # runs of each point with seeds 0, 1, ... (error bars from them)
    random: int = 0  # 0: the grid of the axes' values; n: n random points in their ranges
    halving: bool = True
    sample_seed: int = 0  # seeds the random points


def parse_values(text: str, param: str) -> list[float]:
    """'0.001, 0.01' -> [0.001, 0.01]; ConfigError (one line) naming the setting."""
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise ConfigError(f"{label(param)}: numbers separated by commas, e.g. '0.001, 0.01'") from None
    if not values or not all(math.isfinite(v) for v in values):
        raise ConfigError(f"{label(param)}: give one or more numbers")
    return values


def label(param: str) -> str:
    return PARAMS[param][2]


def _check(spec: SweepSpec) -> None:
    if not 1 <= len(spec.axes) <= 2:
        raise ConfigError(f"a sweep varies 1 or 2 settings, got {len(spec.axes)}")
    names = [a.param for a in spec.axes]
    for n in names:
        if n not in PARAMS:
            raise ConfigError(f"no sweepable setting {n!r}; choose from {', '.join(PARAMS)}")
    if len(set(names)) != len(names):
        raise ConfigError("the two settings of a sweep must differ")
    if not 1 <= spec.seeds <= MAX_SEEDS:
        raise ConfigError(f"seeds per point must be 1..{MAX_SEEDS}, got {spec.seeds}")
    for a in spec.axes:
        if not a.values or any(not isinstance(v, (int, float)) or not math.isfinite(v) for v in a.values):
            raise ConfigError(f"{label(a.param)}: give one or more numbers")
        if spec.random and (len(a.values) != 2 or not a.values[0] < a.values[1]):
            raise ConfigError(f"{label(a.param)}: a random set needs a range, low < high")


def points(spec: SweepSpec) -> list[dict[str, float]]:
    """Every run of the sweep as {param: value, ..., "seed": s}; ConfigError (one line) past
    MAX_RUNS."""
    _check(spec)
    if spec.random:
        rng = np.random.default_rng(spec.sample_seed)
        combos = []
        for _ in range(spec.random):
            combo = []
            for a in spec.axes:
                lo, hi = a.values
                log, whole = PARAMS[a.param][3], PARAMS[a.param][4]
                v = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if log and lo > 0 else float(rng.uniform(lo, hi))
                combo.append(round(v) if whole else float(f"{v:.3g}"))
            combos.append(tuple(combo))
        what = f"{spec.random} random points"
    else:
        combos = list(itertools.product(*[list(dict.fromkeys(a.values)) for a in spec.axes]))
        what = " x ".join(f"{len(dict.fromkeys(a.values))} {label(a.param)}s" for a in spec.axes)
    n = len(combos) * spec.seeds
    if n > MAX_RUNS:
        raise ConfigError(f"a sweep runs at most {MAX_RUNS} runs; this one asks for {n} ({what}"
                          f"{f' x {spec.seeds} seeds' if spec.seeds > 1 else ''}): use fewer values or seeds")
    return [dict(zip([a.param for a in spec.axes], combo)) | {"seed": s}
            for combo in combos for s in range(spec.seeds)]


def configure(base: Experiment, point: dict[str, float]) -> Experiment:
    """`base` with the point's settings (a width sets every hidden layer) and seed."""
    e = copy.deepcopy(base)
    for name, v in point.items():
        if name == "seed":
            e.train.seed = int(v)
            continue
        part, fld, _, _, whole = PARAMS[name]
        v = round(v) if whole else float(v)
        if name == "width":
            v = [v] * max(1, len(e.model.hidden))
        setattr(getattr(e, part), fld, v)
    e.train.eval_test_every_epoch, e.train.live_embedding = True, False
    return e


def rungs(epochs: int) -> list[int]:
    """The epochs at which successive halving judges: a quarter and half of the run."""
    return sorted({r for r in (epochs // 4, epochs // 2) if 1 <= r < epochs})


def worse_half(acc: float, others: list[float]) -> bool:
    """Is `acc` in the worse half of itself and `others` (judged only with HALVING_MIN in all)?"""
    everyone = sorted([*others, acc], reverse=True)
    if len(everyone) < HALVING_MIN:
        return False
    return acc < everyone[(len(everyone) + 1) // 2 - 1]


@dataclass
class Result:
    point: dict[str, float]
    name: str
    status: str
    acc: float | None  # final (or stopped-at) test accuracy
    halted: bool  # stopped by successive halving


@dataclass
class Sweep(RunGroup):
    runner: JobRunner
    spec: SweepSpec
    tick_s: float = TICK_S
    points: list[dict] = field(init=False)
    experiments: list[Experiment] = field(init=False)
    names: list[str] = field(default_factory=list)
    halted: dict[str, int] = field(default_factory=dict)  # run -> the rung it was stopped at

    def __post_init__(self):
        self.points = points(self.spec)
        self.experiments = [configure(self.spec.base, p) for p in self.points]
        for e, p in zip(self.experiments, self.points):
            e.name = "sweep-" + "-".join(f"{k}{v:g}" for k, v in p.items() if k != "seed")
            try:
                preflight(e)
            except ConfigError as err:
                raise ConfigError(f"{e.name}: {' '.join(str(err).split())}") from None
        self.rungs = rungs(self.spec.base.train.epochs) if self.spec.halving else []
        self._judged: set[tuple[str, int]] = set()
        self.every = self.tick_s

    def start(self, owner: str = "", person: str = "") -> Sweep:
        self._launch(self.experiments, owner, person)
        return self

    def tick(self) -> None:
        """Judge every run that reached a rung not judged yet (successive halving)."""
        hs = {n: self.runner.history(n) for n in self.names}
        for r in self.rungs:
            reached = {n: h.test_acc[r - 1] for n, h in hs.items()
                       if h is not None and len(h.test_acc) >= r and h.test_acc[r - 1] is not None}
            for n, acc in reached.items():
                if (n, r) in self._judged or n in self.halted:
                    continue
                others = [a for m, a in reached.items() if m != n]
                self._judged.add((n, r))
                if hs[n].active and worse_half(acc, others):
                    self.halted[n] = r
                    self.runner.stop(n)

    look = tick

    def results(self) -> list[Result]:
        out = []
        for p, n in zip(self.points, self.names):
            h = self.runner.history(n)
            ok = h is not None and h.status not in ("diverged", "failed")
            out.append(Result(p, n, h.status if h is not None else "gone",
                              h.newest_test_acc if ok else None, n in self.halted))
        return out

    def halving_line(self) -> str:
        if not self.rungs:
            return "No early stopping: the runs are too short to judge before they end."
        at = " and ".join(map(str, self.rungs))
        return (f"Successive halving: at epoch{'s' if len(self.rungs) > 1 else ''} {at}, a run in the "
                f"worse half of those that got there is stopped ({len(self.halted)} stopped so far).")

    def best(self) -> Experiment | None:
        """The configuration with the best mean test accuracy over its seeds (runs stopped by
        halving count with the accuracy they had), seed 0; None before any has one."""
        means = summary(self.results(), [a.param for a in self.spec.axes])
        if not means:
            return None
        point = max(means, key=lambda m: m["mean"])
        e = configure(self.spec.base, {k: point[k] for k in self.axes()} | {"seed": 0})
        e.name = "custom"
        return e

    def axes(self) -> list[str]:
        return [a.param for a in self.spec.axes]


def summary(results: list[Result], axes: list[str]) -> list[dict]:
    """One row per point (its settings, the mean and standard deviation of its seeds' test
    accuracies, how many had one), in the sweep's order; points with none are left out."""
    groups: dict[tuple, list[float]] = {}
    for r in results:
        key = tuple(r.point[a] for a in axes)
        groups.setdefault(key, [])
        if r.acc is not None:
            groups[key].append(r.acc)
    return [dict(zip(axes, key)) | {"mean": float(np.mean(v)), "std": float(np.std(v)), "n": len(v)}
            for key, v in groups.items() if v]


def grid(results: list[Result], axes: list[str]) -> tuple[list[float], list[float], np.ndarray]:
    """For two axes: (x values, y values, mean accuracy (len(y), len(x)), NaN where none)."""
    rows = summary(results, axes)
    xs = sorted({r.point[axes[0]] for r in results})
    ys = sorted({r.point[axes[1]] for r in results})
    z = np.full((len(ys), len(xs)), np.nan)
    for row in rows:
        z[ys.index(row[axes[1]]), xs.index(row[axes[0]])] = row["mean"]
    return xs, ys, z


__all__ = ["HALVING_MIN", "MAX_RUNS", "PARAMS", "Axis", "Result", "Sweep", "SweepSpec",
           "configure", "grid", "label", "parse_values", "points", "rungs", "summary", "worse_half"]
