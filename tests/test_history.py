"""A run's history keeps the loss it started at (step 0, before any update), live and
saved, so a diverged run's loss chart starts where the run began, not after the blow-up;
a run folder saved before the history kept it still loads."""

import json
import math

import pytest

from dashboard.charts import loss_figure, overlay
from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.store.recorder import RunRecorder
from digits_core.store.runs import load_run
from digits_core.training.jobs import run_experiment


def exploding() -> Experiment:
    return Experiment(DataConfig(), ModelConfig(family="numpy-mlp", hidden=[64]),
                      TrainConfig(epochs=5, batch_size=32, lr=50.0, optimizer="sgd"))


def test_a_diverged_run_keeps_its_starting_loss_live_and_saved_and_its_chart_starts_there(tmp_path):
    e = exploding()
    recorder = RunRecorder(tmp_path, e)
    h = run_experiment(e, recorder=recorder).snapshot()
    assert h.status == "diverged", h.message
    assert h.start_loss is not None and math.isfinite(h.start_loss)
    assert h.start_loss < max(h.loss)  # below the blow-up
    assert f"it started at {h.start_loss:.3g})" in h.message  # the figure its message names
    saved = load_run(recorder.path).history
    assert saved.start_loss == h.start_loss
    for fig in (loss_figure(saved), overlay([("blown", saved)])[0]):
        first = fig.data[0]
        assert first.x[0] == 0 and first.y[0] == pytest.approx(h.start_loss)  # step 0, before any update


def test_a_run_folder_saved_without_its_starting_loss_still_loads_and_draws(tmp_path):
    e = exploding()
    recorder = RunRecorder(tmp_path, e)
    run_experiment(e, recorder=recorder)
    path = recorder.path / "history.json"
    d = json.loads(path.read_text())
    d.pop("start_loss")
    path.write_text(json.dumps(d))
    h = load_run(recorder.path).history
    assert h.start_loss is None and h.status == "diverged" and h.loss == d["loss"]
    fig = loss_figure(h)
    assert fig.data[0].x[0] > 0 and fig.data[0].y[0] == d["loss"][0]  # from its first step, as before
