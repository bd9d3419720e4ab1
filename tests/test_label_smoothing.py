"""Label smoothing (`TrainConfig.label_smoothing`): soft targets early in a run, hard ones
by `SMOOTHING_UNTIL` of it, for the PyTorch models' cross-entropy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from digits_core.cli import build_parser, experiment_from_args
from digits_core.config import (
    SMOOTHING_UNTIL,
    ConvBlock,
    DataConfig,
    Experiment,
    ModelConfig,
    TrainConfig,
)
from digits_core.data.datasets import Dataset, Normalizer
from digits_core.errors import ConfigError
from digits_core.nn.models import build_model
from digits_core.training.learners import make_learner
from digits_core.training.train import smoothing_at, train


def test_it_starts_at_its_value_and_fades_to_zero_by_the_set_share_of_the_run():
    tc = TrainConfig(label_smoothing=0.1)
    total = 1000
    got = [smoothing_at(tc, s, total) for s in range(total)]
    assert got[0] == pytest.approx(0.1)
    assert got[int(SMOOTHING_UNTIL * total / 2)] == pytest.approx(0.05, abs=1e-3)
    assert all(a >= b for a, b in zip(got, got[1:]))  # never grows
    assert all(v == 0.0 for v in got[int(SMOOTHING_UNTIL * total):])  # hard targets at the end
    assert smoothing_at(TrainConfig(), 0, total) == 0.0


@pytest.mark.parametrize("change, message", [
    (dict(train=dict(label_smoothing=0.6)), "label smoothing must be 0..0.5"),
    (dict(train=dict(label_smoothing=-0.1)), "label smoothing must be 0..0.5"),
    (dict(train=dict(label_smoothing=0.1, loss="mse-softmax")), "for the cross-entropy loss"),
    (dict(model=dict(family="numpy-mlp"), train=dict(label_smoothing=0.1)), "for the PyTorch models"),
])
def test_settings_it_cannot_use_are_refused(change, message):
    exp = Experiment(data=DataConfig(dataset="digits"), model=ModelConfig(family="torch-mlp", hidden=[8]))
    for part, values in change.items():
        for k, v in values.items():
            setattr(getattr(exp, part), k, v)
    with pytest.raises(ConfigError, match=message):
        exp.validate()


def test_the_loss_is_torchs_smoothed_cross_entropy():
    model = build_model(ModelConfig(family="torch-mlp", hidden=[8]), (4, 4), seed=0, device="cpu")
    learner = make_learner(model, TrainConfig(label_smoothing=0.1))
    logits = torch.randn(16, 10, generator=torch.Generator().manual_seed(0))
    y = torch.arange(16) % 10
    soft = learner.loss(logits, y, 0.1)
    assert torch.allclose(soft, F.cross_entropy(logits, y, label_smoothing=0.1))
    assert not torch.allclose(soft, learner.loss(logits, y, 0.0))  # it does change the loss


def tiny_data(n=128, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    images = np.zeros((n, 12, 12), np.uint8)
    for i, k in enumerate(y):
        images[i, k : k + 3, 1 + k % 5 : 4 + k % 5] = 255
    return Dataset("mnist", images, y, images[:32], y[:32], Normalizer("unit", 255.0))


def test_a_run_hands_each_step_its_smoothing(monkeypatch):
    """train() gives the learner the scheduled value at every step: smoothed first, hard last."""
    tc = TrainConfig(epochs=2, batch_size=16, lr=1e-2, label_smoothing=0.2, seed=0)
    model = build_model(ModelConfig(family="cnn", hidden=[], conv=[ConvBlock(4, 3, 1, True, 2)]), (12, 12),
                        seed=0, device="cpu")
    learner = make_learner(model, tc)
    seen = []
    step = learner.step

    def recording(xb, yb, lr, smoothing=0.0):
        seen.append(smoothing)
        return step(xb, yb, lr, smoothing)

    monkeypatch.setattr(learner, "step", recording)
    events = list(train(model, tiny_data(), tc, learner=learner))
    total = len(seen)
    assert events[-1].status == "finished" and total == 16
    assert seen == [smoothing_at(tc, s, total) for s in range(total)]
    assert seen[0] == pytest.approx(0.2) and seen[-1] == 0.0


def test_the_cli_sets_it():
    args = build_parser().parse_args(["train", "--preset", "default-cnn", "--label-smoothing", "0.05", "--out", "x"])
    assert experiment_from_args(args).train.label_smoothing == 0.05
    args = build_parser().parse_args(["train", "--preset", "default-cnn", "--out", "x"])
    assert experiment_from_args(args).train.label_smoothing == 0.1  # the preset's own
