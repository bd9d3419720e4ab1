"""A sweep: its points (at most 16, the 17th refused in one line), ordinary runs through the
runner, its results (heat-map grid, mean and spread over seeds, the best configuration) and
successive halving of hopeless runs."""

import numpy as np
import pytest

from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.errors import ConfigError
from digits_core.serve.executors import ThreadExecutor
from digits_core.serve.runner import JobRunner
from digits_core.serve.sweep import (
    Axis,
    Result,
    Sweep,
    SweepSpec,
    configure,
    grid,
    points,
    rungs,
    summary,
    worse_half,
)
from digits_core.store.runs import inspect_run


def base(epochs=3, hidden=(16,)) -> Experiment:
    return Experiment(DataConfig(dataset="digits"), ModelConfig(family="numpy-mlp", hidden=list(hidden)),
                      TrainConfig(epochs=epochs, batch_size=32), name="custom")


def test_seventeen_runs_are_refused_in_one_line_and_sixteen_are_not():
    lrs = [10.0 ** -k for k in range(1, 5)]
    assert len(points(SweepSpec(base(), [Axis("lr", lrs), Axis("width", [8, 16, 32, 64])]))) == 16
    for spec in (SweepSpec(base(), [Axis("lr", [0.001 * k for k in range(1, 18)])]),
                 SweepSpec(base(), [Axis("lr", lrs[:3]), Axis("width", [8, 16, 32])], seeds=2),
                 SweepSpec(base(), [Axis("lr", [0.001, 0.1])], random=17)):
        with pytest.raises(ConfigError, match="at most 16 runs; this one asks for 1[78]") as e:
            points(spec)
        assert "\n" not in str(e.value)


def test_points_are_the_grid_times_the_seeds_or_random_ones_in_range():
    pts = points(SweepSpec(base(), [Axis("lr", [0.01, 0.1]), Axis("width", [8, 32])], seeds=2))
    assert len(pts) == 8 and {(p["lr"], p["width"]) for p in pts} == {(0.01, 8), (0.01, 32), (0.1, 8), (0.1, 32)}
    assert sorted({p["seed"] for p in pts}) == [0, 1]
    rnd = SweepSpec(base(), [Axis("lr", [1e-4, 1e-1]), Axis("width", [4, 64])], random=6, sample_seed=3)
    a, b = points(rnd), points(rnd)
    assert a == b and len(a) == 6  # the same points every time
    assert all(1e-4 <= p["lr"] <= 1e-1 and 4 <= p["width"] <= 64 and p["width"] == int(p["width"]) for p in a)
    for bad in ([], [Axis("lr", [0.1]), Axis("lr", [0.2])], [Axis("momentum", [0.5])]):
        with pytest.raises(ConfigError):
            points(SweepSpec(base(), bad))


def test_a_point_sets_its_settings_and_a_width_every_hidden_layer():
    e = configure(base(hidden=(64, 32)), {"width": 8, "lr": 0.3, "seed": 2})
    assert e.model.hidden == [8, 8] and e.train.lr == 0.3 and e.train.seed == 2
    assert base().train.lr == TrainConfig().lr  # the base is untouched


def test_the_worse_half_is_judged_among_three_or_more():
    assert worse_half(0.2, [0.9, 0.8]) and not worse_half(0.8, [0.9, 0.2])
    assert not worse_half(0.1, [0.9])  # two are not enough to judge
    assert worse_half(0.5, [0.9, 0.8, 0.7]) and not worse_half(0.8, [0.9, 0.7, 0.5])
    assert rungs(8) == [2, 4] and rungs(2) == [1] and rungs(1) == []


def test_results_summarise_seeds_into_a_grid_and_the_best_point():
    r = lambda lr, w, s, acc: Result({"lr": lr, "width": w, "seed": s}, f"r{lr}{w}{s}", "finished", acc, False)
    results = [r(0.1, 8, 0, 0.8), r(0.1, 8, 1, 0.9), r(0.01, 8, 0, 0.95), r(0.01, 8, 1, None),
               r(0.1, 32, 0, 0.5)]
    rows = summary(results, ["lr", "width"])
    first = next(x for x in rows if x["lr"] == 0.1 and x["width"] == 8)
    assert first["mean"] == pytest.approx(0.85) and first["std"] == pytest.approx(0.05) and first["n"] == 2
    xs, ys, z = grid(results, ["lr", "width"])
    assert xs == [0.01, 0.1] and ys == [8, 32]
    assert z[0, 0] == pytest.approx(0.95) and np.isnan(z[1, 0]) and z[1, 1] == pytest.approx(0.5)


def test_a_sweep_is_ordinary_runs_and_finds_the_best(tmp_path):
    runner = JobRunner(tmp_path, executor=ThreadExecutor(), max_jobs=2)
    sweep = Sweep(runner, SweepSpec(base(), [Axis("lr", [1e-5, 0.01]), Axis("width", [4, 32])],
                                    halving=False), tick_s=0.05).start(owner="ann")
    assert sweep.wait(120)
    results = sweep.results()
    assert len(results) == 4 and all(r.status == "finished" for r in results)
    assert [inspect_run(tmp_path / r.name).status for r in results] == ["finished"] * 4
    best = max(results, key=lambda r: r.acc)
    got = sweep.best()
    assert got.train.lr == best.point["lr"] and got.model.hidden == [best.point["width"]]
    assert got.train.lr == 0.01  # a hundred-thousandth learns nothing in three epochs


def test_successive_halving_stops_the_hopeless_runs_and_says_so(tmp_path):
    runner = JobRunner(tmp_path, executor=ThreadExecutor(), max_jobs=2)
    # the good ones first: they set the bar the hopeless ones are judged against at epoch 30
    sweep = Sweep(runner, SweepSpec(base(epochs=120), [Axis("lr", [0.01, 0.02, 1e-7, 2e-7])]),
                  tick_s=0.02).start()
    assert sweep.wait(300)
    by_lr = {r.point["lr"]: r for r in sweep.results()}
    assert not by_lr[0.01].halted and by_lr[0.01].status == "finished"
    assert by_lr[1e-7].halted and by_lr[1e-7].status == "stopped" and by_lr[1e-7].acc is not None
    assert inspect_run(tmp_path / by_lr[1e-7].name).ok  # a stopped run keeps its folder
    assert "at epochs 30 and 60" in sweep.halving_line() and f"{len(sweep.halted)} stopped" in sweep.halving_line()
