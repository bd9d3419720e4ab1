"""The NumPy replay of a torch network (`few_forward`), which reads a drawing: the same
logits as torch's eval mode for every network the config allows, and never stale after
the weights change."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from digits_core.config import ConvBlock, ModelConfig, TrainConfig
from digits_core.errors import ConfigError
from digits_core.nn.few_forward import FEW, FewForward, Unsupported
from digits_core.nn.models import build_model
from digits_core.training.learners import make_learner


def torch_logits(model, x: np.ndarray) -> np.ndarray:
    return model._run(x, model.module)  # the eager torch pass, whatever the batch size


def images(n: int, shape, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, *shape)).astype(np.float32)


def randomise_batchnorm(module, seed: int) -> None:
    """Fresh BatchNorm statistics are 0 and 1, which would hide a scale/shift mix-up."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in module.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.5, generator=g)
                m.running_var.uniform_(0.3, 2.0, generator=g)
                m.weight.normal_(1, 0.3, generator=g)
                m.bias.normal_(0, 0.3, generator=g)


blocks = st.builds(
    lambda c, k, pad, bn, pool, drop: ConvBlock(c, k, min(pad, k // 2 + 1), bn, pool, drop),
    st.integers(1, 12), st.sampled_from([1, 3, 5]), st.integers(0, 2), st.booleans(),
    st.sampled_from([1, 2, 3]), st.sampled_from([0.0, 0.3]),
)


@settings(max_examples=60, deadline=None)
@given(
    conv=st.lists(blocks, min_size=0, max_size=2),
    hidden=st.lists(st.integers(1, 40), max_size=2),
    activation=st.sampled_from(["relu", "tanh", "sigmoid"]),
    bias=st.booleans(),
    pool_first=st.booleans(),
    shape=st.sampled_from([(28, 28), (8, 8)]),
    n=st.integers(1, FEW),
    seed=st.integers(0, 2**16),
)
def test_the_numpy_pass_gives_torchs_logits(conv, hidden, activation, bias, pool_first, shape, n, seed):
    cfg = ModelConfig(family="cnn" if conv else "torch-mlp", hidden=hidden, activation=activation, bias=bias,
                      conv=conv, pool_first=pool_first)
    try:
        cfg.validate()
        model = build_model(cfg, shape, seed=seed % 100, device="cpu")
    except ConfigError:  # a network too small for its pools, refused as the form refuses it
        assume(False)  # (Hypothesis fails the test when it must throw away most examples)
    randomise_batchnorm(model.module, seed)
    x = images(n, shape, seed)
    few = FewForward(model.module, shape)(x)
    want = torch_logits(model, x)
    assert few.shape == want.shape == (n, 10) and few.dtype == np.float32
    np.testing.assert_allclose(few, want, rtol=1e-4, atol=1e-4 * max(1.0, float(np.abs(want).max())))


def test_the_default_cnn_reads_through_it_and_agrees():
    from digits_core.presets import default_cnn_model

    model = build_model(default_cnn_model(), (28, 28), seed=0, device="cpu")
    randomise_batchnorm(model.module, 1)
    x = images(1, (28, 28), 0)
    assert model._few_forward() is not None  # the default network is replayed, not refused
    np.testing.assert_allclose(model.forward(x), torch_logits(model, x), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("average", [0.0, 0.9])
def test_a_training_step_is_seen_at_once(average):
    """With and without weight averaging (the average is changed through detached tensors):
    after every optimiser step a one-image forward is the new weights', not a cached copy."""
    cfg = ModelConfig(family="cnn", hidden=[16], conv=[ConvBlock(4, 3, 1, True, 2)])
    model = build_model(cfg, (16, 16), seed=0, device="cpu")
    learner = make_learner(model, TrainConfig(epochs=1, batch_size=16, lr=0.05, weight_average=average, seed=0))
    rng = np.random.default_rng(0)
    xb, yb = learner.prepare(rng.normal(0, 1, (16, 16, 16)).astype(np.float32), rng.integers(0, 10, 16))
    probe = images(1, (16, 16), 3)
    before = model.forward(probe)
    for _ in range(3):
        learner.step(xb, yb, 0.05)
        now = model.forward(probe)
        np.testing.assert_allclose(now, torch_logits(model, probe), rtol=1e-4, atol=1e-5)
        assert not np.allclose(now, before)  # the step did change the reading
        before = now


def test_loading_weights_is_seen_at_once():
    cfg = ModelConfig(family="torch-mlp", hidden=[8])
    a, b = (build_model(cfg, (8, 8), seed=s, device="cpu") for s in (0, 1))
    x = images(1, (8, 8), 0)
    a.forward(x)  # builds the NumPy pass for a's first weights
    a.load_state_dict(b.state_dict())
    np.testing.assert_allclose(a.forward(x), b.forward(x), rtol=1e-5, atol=1e-6)


def test_a_layer_it_cannot_replay_is_refused_and_torch_reads_instead():
    model = build_model(ModelConfig(family="torch-mlp", hidden=[8]), (8, 8), seed=0, device="cpu")
    model.module.body.append(torch.nn.GELU())  # not a layer this project builds, but a network could hold one
    with pytest.raises(Unsupported, match="GELU"):
        FewForward(model.module, (8, 8))
    x = images(1, (8, 8), 0)
    np.testing.assert_array_equal(model.forward(x), torch_logits(model, x))
    assert model._few[1] is None  # refused once, remembered


def test_more_than_a_few_images_go_through_torch():
    model = build_model(ModelConfig(family="torch-mlp", hidden=[8]), (8, 8), seed=0, device="cpu")
    model.forward(images(FEW + 1, (8, 8), 0))
    assert model._few is None  # never built: a batch is torch's work


def test_batchnorm_without_affine_weights_is_replayed_and_without_statistics_refused():
    cfg = ModelConfig(family="cnn", hidden=[], conv=[ConvBlock(4, 3, 1, True, 2)])
    model = build_model(cfg, (8, 8), seed=0, device="cpu")
    bn = torch.nn.BatchNorm2d(4, affine=False)
    bn.running_mean.normal_(0, 0.5)
    bn.running_var.uniform_(0.5, 2.0)
    model.module.conv[1] = bn.eval()
    x = images(2, (8, 8), 1)
    np.testing.assert_allclose(FewForward(model.module, (8, 8))(x), torch_logits(model, x), rtol=1e-4, atol=1e-5)
    model.module.conv[1] = torch.nn.BatchNorm2d(4, track_running_stats=False)
    with pytest.raises(Unsupported, match="running statistics"):
        FewForward(model.module, (8, 8))
