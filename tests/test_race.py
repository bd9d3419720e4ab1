"""A race: contestants on equal terms through the runner, sampled live, ranked at the end;
bad input (a race of one, a contestant that diverges, a worker killed mid-race) says so
and loses nothing."""

import os
import signal

import numpy as np
import pytest
from waiting import wait_for

from digits_core.analysis.drawing_scores import score_drawings
from digits_core.analysis.drawings_by_shape import visible_inputs
from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.data.datasets import IMAGE_SHAPE
from digits_core.errors import ConfigError
from digits_core.nn.models import build_model
from digits_core.presets import ALL
from digits_core.serve.executors import ThreadExecutor
from digits_core.serve.pool import ProcessExecutor
from digits_core.serve.race import Finish, Race, fair
from digits_core.serve.runner import JobRunner
from digits_core.store import drawings as dr
from digits_core.store.runs import inspect_run, load_run
from digits_core.training.train import batch_order

DIGITS = DataConfig(dataset="digits")


def mlp(width=16, lr=0.01, seed=0, **kw) -> Experiment:
    kw.setdefault("epochs", 10)
    return Experiment(DIGITS, ModelConfig(family="numpy-mlp", hidden=[width]),
                      TrainConfig(lr=lr, seed=seed, batch_size=32, **kw), name="m")


def test_a_race_of_one_or_of_five_is_refused_in_one_line():
    for n in (0, 1, 5):
        with pytest.raises(ConfigError, match=f"2 to 4 contestants; you chose {n}") as e:
            fair([("a", mlp())] * n, DIGITS, Finish(3))
        assert "\n" not in str(e.value)


def test_a_contestant_that_cannot_run_on_the_race_data_is_named():
    with pytest.raises(ConfigError, match="^default-cnn: .*shrink") as e:  # unpadded, for 28x28
        fair([("fast", ALL["fast"].build()), ("default-cnn", ALL["default-cnn"].build())], DIGITS, Finish(1))
    assert "\n" not in str(e.value)


def test_contestants_get_the_same_data_seed_order_and_initial_weights():
    a, b = mlp(seed=7, lr=0.1), mlp(seed=123)
    a.data = DataConfig(dataset="digits", test_fraction=0.5, seed=9)  # another split: overruled
    entries = fair([("a", a), ("b", b), ("S1a", ALL["S1a"].build())], DIGITS, Finish(2), seed=4)
    (_, ea), (_, eb), (_, s1a) = entries
    assert ea.data == eb.data == DIGITS and s1a.data.normalization == "raw"  # its own pixels
    assert ea.train.seed == eb.train.seed == s1a.train.seed == 4
    assert s1a.train.sampling == "shuffle" and s1a.train.steps_per_epoch is None
    assert {ea.train.epochs, eb.train.epochs, s1a.train.epochs} == {2}
    wa = build_model(ea.model, IMAGE_SHAPE["digits"], seed=ea.train.seed).state_dict()
    wb = build_model(eb.model, IMAGE_SHAPE["digits"], seed=eb.train.seed).state_dict()
    assert all(np.array_equal(wa[k], wb[k]) for k in wa)  # same shapes: same initial weights
    first = lambda t: next(batch_order(1000, t, np.random.default_rng(t.seed)))
    assert np.array_equal(first(ea.train), first(eb.train))  # the same first batch
    assert [label for label, _ in fair([("x", a), ("x", b)], DIGITS, Finish(1))] == ["x", "x (2)"]


def test_a_race_runs_to_its_finish_line_and_ranks_by_accuracy(tmp_path):
    runner = JobRunner(tmp_path, executor=ThreadExecutor())
    race = Race(runner, [("narrow", mlp(4)), ("wide", mlp(64))], data=DIGITS, finish=Finish(2),
                sample_s=0.05).start(owner="ann")
    assert race.wait(120)
    rows = race.leaderboard()
    assert [r["status"] for r in rows] == ["finished", "finished"]
    assert rows[0]["test accuracy"] >= rows[1]["test accuracy"] and [r["place"] for r in rows] == [1, 2]
    n_train = len(runner.history(race.names[0]).steps) * 32
    for label, samples in race.series():
        images = [s.images for s in samples]
        assert images == sorted(images) and images[-1] >= n_train - 32  # up to the finish line
        assert samples[-1].acc == next(r["test accuracy"] for r in rows if r["contestant"] == label)
    for name in race.names:
        assert inspect_run(tmp_path / name).status == "finished"  # each an ordinary run


def test_a_time_budget_stops_every_contestant_and_measures_it(tmp_path):
    runner = JobRunner(tmp_path, executor=ThreadExecutor())
    race = Race(runner, [("a", mlp(8)), ("b", mlp(32))], data=DIGITS, finish=Finish(None, 1.0),
                sample_s=0.05).start()
    assert race.wait(120)
    for r in race.leaderboard():
        assert r["status"] == "stopped" and r["seconds"] >= 1.0 and r["test accuracy"] is not None


def test_a_contestant_that_diverges_ends_alone_and_comes_last(tmp_path):
    runner = JobRunner(tmp_path, executor=ThreadExecutor())
    wild = mlp(16, lr=100.0, optimizer="sgd")
    race = Race(runner, [("wild", wild), ("calm", mlp(16))], data=DIGITS, finish=Finish(3),
                sample_s=0.05).start()
    assert race.wait(120)
    last = race.leaderboard()[-1]
    assert last["contestant"] == "wild" and last["status"] == "diverged"
    assert last["test accuracy"] is None and last["note"]  # the run's own message says why
    assert race.leaderboard()[0]["status"] == "finished"


def test_a_worker_killed_mid_race_interrupts_only_its_contestant(tmp_path):
    pool = ProcessExecutor(2)
    try:
        runner = JobRunner(tmp_path, executor=pool)
        race = Race(runner, [("doomed", mlp(16)), ("survivor", mlp(16, lr=0.02))], data=DIGITS,
                    finish=Finish(400), sample_s=0.1).start()
        doomed, survivor = race.names
        # both train, and the doomed one has a first checkpoint (before it, nothing to continue)
        assert wait_for(lambda: (tmp_path / doomed / "weights.npz").is_file()
                        and runner.history(survivor).step > 10, 120)
        os.kill(pool.worker_pid(doomed), signal.SIGKILL)
        assert wait_for(lambda: runner.history(doomed).status == "interrupted", 60)
        assert runner.history(survivor).active  # the other races on
        race.stop()
        assert race.wait(60)
        rows = {r["contestant"]: r for r in race.leaderboard()}
        assert rows["doomed"]["status"] == "interrupted" and "worker" in rows["doomed"]["note"]
        assert rows["survivor"]["status"] == "stopped" and rows["survivor"]["place"] == 1
        assert inspect_run(tmp_path / doomed).ok  # its last checkpoint is kept: continuable
        runner.continue_run(doomed, 1)
        assert wait_for(lambda: runner.history(doomed).status == "finished", 120)
    finally:
        pool.close()


def test_a_race_waits_in_the_same_queue_as_everyone_and_counts_as_one_run(tmp_path):
    runner = JobRunner(tmp_path, executor=ThreadExecutor(), max_jobs=1, per_owner=1)
    first = runner.start(mlp(epochs=1000), owner="bea")  # someone else's run holds the one slot
    assert wait_for(lambda: runner.history(first).status == "running", 60)
    race = Race(runner, [("a", mlp(8)), ("b", mlp(16))], data=DIGITS, finish=Finish(1),
                sample_s=0.05).start(owner="teacher")  # a person's limit of 1: a race is one
    assert [runner.queue_position(n)[0] for n in race.names] == [1, 2]
    with pytest.raises(ConfigError, match="already have 2 runs training"):
        runner.start(mlp(), owner="teacher")
    runner.stop(first)
    assert race.wait(120)
    assert [r["status"] for r in race.leaderboard()] == ["finished", "finished"]


def test_a_finished_race_scores_each_contestant_on_the_drawings_of_its_input_shape(tmp_path):
    runner = JobRunner(tmp_path, executor=ThreadExecutor())
    race = Race(runner, [("narrow", mlp(4, epochs=1)), ("wide", mlp(32, epochs=1))], data=DIGITS,
                finish=Finish(1), sample_s=0.05).start(owner="ann")
    assert race.wait(120)
    rng = np.random.default_rng(0)
    pad = np.zeros((40, 40, 4), np.uint8)
    eights = [rng.uniform(0, 16, (8, 8)).astype(np.float32) for _ in range(6)]
    for k, x in enumerate(eights):  # 8x8 inputs count for a bundled-digits run
        dr.save_drawing(tmp_path, pad, x, label=k % 10, reading=None, model="m", model_key="m",
                        owner="ann", dataset="digits")
    dr.save_drawing(tmp_path, pad, np.zeros((28, 28), np.float32), label=3, reading=None,
                    model="m", model_key="m", owner="ann")  # a 28x28 one does not
    assert all(r["drawings accuracy"] is None for r in race.leaderboard())  # nothing passed
    rows = race.leaderboard(visible_inputs(tmp_path, "ann", class_server=False))
    labels = np.arange(6) % 10
    for r in rows:
        want = score_drawings(load_run(tmp_path / r["run"]), np.stack(eights), labels)
        assert r["drawings"] == 6 and r["drawings accuracy"] == pytest.approx(want.accuracy)
    assert race.leaderboard(visible_inputs(tmp_path, "bob", class_server=True))[0]["drawings"] == 6  # shared
    only_mnist = visible_inputs(tmp_path, "ann", class_server=False)
    del only_mnist[(8, 8)]
    assert all(r["drawings accuracy"] is None for r in race.leaderboard(only_mnist))  # "—" on the page
