"""The step-through view's engine (digits_core.analysis.backprop, checked by its gradcheck):
what it shows is the NumPy network's own step, equal to PyTorch autograd's and to central
differences, the "break it" bug is caught by both checks, and the optimisers step as
torch.optim does from the same start."""

import numpy as np
import pytest
import torch

from digits_core.analysis.backprop import (
    ACTIVATIONS,
    OPTIMIZERS,
    DivergedError,
    StepConfig,
    Stepper,
    chain_rule,
    strongest_weight,
)
from digits_core.analysis.gradcheck import (
    AUTOGRAD_TOLERANCE,
    FD_TOLERANCE,
    autograd_check,
    finite_difference_check,
    torch_loss,
    torch_optimizer,
)
from digits_core.errors import ConfigError
from digits_core.nn.numpy_mlp import LOSSES

LOSS_NAMES = list(LOSSES)


def _stepped(act="relu", loss="cross-entropy", opt="sgd", warm=2, **kw) -> Stepper:
    """A stepper a few steps in (so momentum and Adam have state to carry)."""
    s = Stepper(StepConfig(activation=act, loss=loss, optimizer=opt, **kw))
    s.steps_many(warm, 0.1)
    return s


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_the_shown_gradients_are_the_networks_own(act, loss):
    """The trace's dW, db and loss are what MLP.loss_and_grads gives on the same weights and
    batch: the view shows the network's backward pass, not a re-derivation of it."""
    s = _stepped(act, loss, hidden=(12, 8))
    trace = s.step(0.1)
    net = s.config.network()
    net.load_state_dict(trace.before())
    value, logits = net.loss_and_grads(trace.x.copy(), trace.y, loss)
    assert value == trace.loss
    np.testing.assert_array_equal(logits, trace.logits)
    for name, _, g in net.params():
        np.testing.assert_array_equal(g, trace.grads()[name], err_msg=name)
    assert np.allclose(trace.probs.sum(1), 1)
    assert trace.example_loss.mean() == pytest.approx(trace.loss, rel=1e-12)


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_the_step_equals_pytorch_autograd_and_torch_optim(act, loss, opt):
    s = _stepped(act, loss, opt)
    trace = s.step(0.05)
    check = autograd_check(trace, s.state_before)
    assert check.dtype == "float64"
    assert check.loss == pytest.approx(trace.loss, rel=1e-12)
    assert check.grad_diff < AUTOGRAD_TOLERANCE and check.weight_diff < AUTOGRAD_TOLERANCE
    assert check.passed


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSS_NAMES)
def test_finite_differences_agree(act, loss):
    s = _stepped(act, loss, hidden=(10, 6))
    check = finite_difference_check(s.step(0.1), k=5)
    assert len(check.weights) == 3 * 5  # k weights of each of the three layers
    assert sorted({layer for layer, _, _ in check.weights}) == [0, 1, 2]
    assert check.worst < FD_TOLERANCE and check.passed


@pytest.mark.parametrize("act", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSS_NAMES)
@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_break_it_is_caught_by_both_checks(act, loss, opt):
    """Negative control: the backward pass without the activation's derivative fails both
    checks that the right one passes, by orders of magnitude."""
    s = _stepped(act, loss, opt)
    trace = s.step(0.1, broken=True)
    assert trace.broken and not trace.bug_changes_nothing
    fd, ag = finite_difference_check(trace), autograd_check(trace, s.state_before)
    assert not fd.passed and fd.worst > 100 * FD_TOLERANCE
    assert not ag.passed and ag.grad_diff > 1e3 * AUTOGRAD_TOLERANCE
    assert ag.worst.startswith("dense0")  # the layer below the activation is the one wrong
    # ...and the next right step passes again
    right = s.step(0.1)
    assert finite_difference_check(right).passed and autograd_check(right, s.state_before).passed


@pytest.mark.parametrize("opt", OPTIMIZERS)
def test_optimiser_state_steps_as_torch_optim_from_the_same_start(opt):
    """Six steps, the learning rate changed between them, the same batches: the weights and
    the optimiser's state (momentum buffer, Adam's m and v) equal torch.optim's."""
    s = Stepper(StepConfig(optimizer=opt, hidden=(8,), batch_size=8, seed=3))
    params = {n: torch.tensor(p.copy(), requires_grad=True) for n, p, _ in s.net.params()}
    topt = torch_optimizer(opt, list(params.values()), 0.1)
    for lr in (0.1, 0.1, 0.3, 0.02, 0.05, 0.2):
        trace = s.step(lr)
        for group in topt.param_groups:
            group["lr"] = lr
        topt.zero_grad()
        torch_loss(params, torch.tensor(trace.x), torch.tensor(trace.y), "relu", "cross-entropy").backward()
        topt.step()
    for name, p, _ in s.net.params():
        np.testing.assert_allclose(p, params[name].detach().numpy(), rtol=1e-10, atol=1e-12)
        tstate = topt.state[params[name]]
        if opt == "momentum":
            np.testing.assert_allclose(s.opt.state[f"{name}.v"], tstate["momentum_buffer"], atol=1e-12)
        if opt == "adam":
            np.testing.assert_allclose(s.opt.state[f"{name}.m"], tstate["exp_avg"], atol=1e-12)
            np.testing.assert_allclose(s.opt.state[f"{name}.v"], tstate["exp_avg_sq"], atol=1e-12)
            assert int(tstate["step"]) == s.opt.t == 6
    assert trace.layers[0].state.keys() == ({"W.v", "b.v"} if opt == "momentum" else
                                            {"W.m", "W.v", "b.m", "b.v"} if opt == "adam" else set())


def test_torch_gets_the_numpy_optimisers_state():
    """The autograd check's torch.optim continues from the NumPy optimiser's state: without
    it, Adam's 5th step would be a first step (a different size)."""
    s = _stepped(opt="adam", warm=4)
    trace = s.step(0.05)
    assert autograd_check(trace, s.state_before).passed
    assert not autograd_check(trace, {}).passed  # the negative control: a fresh Adam


@pytest.mark.parametrize("act", ACTIVATIONS)
def test_the_chain_rule_numbers_add_up(act):
    s = _stepped(act, hidden=(12,))
    trace = s.step(0.1)
    L0 = trace.layers[0]
    i = int(np.flatnonzero(L0.x.sum(0))[3])
    c = chain_rule(trace, 0, i, 5, n=2)
    assert c.total == L0.dW[i, 5]
    assert c.total == pytest.approx(sum(L0.x[m, i] * L0.dz[m, 5] for m in range(len(trace.y))), rel=1e-12)
    assert c.term == pytest.approx(L0.x[2, i] * c.delta)
    assert c.da == pytest.approx(float(c.upstream @ c.W_next), rel=1e-12)  # dL/da = sum_k delta_k W[j, k]
    assert c.delta == pytest.approx(c.da * c.fprime, rel=1e-12)
    assert c.weight_after == L0.W_after[i, 5]
    out = chain_rule(trace, 1, 4, int(trace.y[2]), n=2)  # the output layer, the true class
    assert out.da is None and out.target == 1.0
    assert out.delta == pytest.approx((out.prob - 1) / len(trace.y), rel=1e-12)  # (p - onehot) / N


def test_the_strongest_weight_is_one_worth_writing_out():
    trace = _stepped().step(0.1)
    i, j, n = strongest_weight(trace)
    L0 = trace.layers[0]
    assert abs(L0.dW[i, j]) == np.abs(L0.dW).max() > 0
    c = chain_rule(trace, 0, i, j, n)
    assert c.term != 0 and c.x_in > 0
    assert abs(c.term) == max(abs(L0.x[m, i] * L0.dz[m, j]) for m in range(len(trace.y)))


def test_the_chain_rule_of_a_broken_step_shows_the_missing_factor():
    s = _stepped("tanh")
    trace = s.step(0.1, broken=True)
    c = chain_rule(trace, 0, int(np.flatnonzero(trace.x.sum(0))[0]), 3, n=0)
    assert c.delta == c.da != pytest.approx(c.da * c.fprime)


def test_a_learning_rate_that_explodes_is_refused_and_nothing_changes():
    """The weights blow up within a few steps of a huge rate; the step that would make them
    (or the loss) infinite is refused and leaves everything as it was."""
    s = _stepped(warm=3)
    for _ in range(5):
        weights, losses, cursor, t = s.net.state_dict(), list(s.losses), s.cursor, s.opt.t
        try:
            s.step(1e300)
        except DivergedError as e:
            assert "lower it" in str(e)
            break
    else:
        pytest.fail("a rate of 1e300 never diverged")
    assert s.losses == losses and s.cursor == cursor and s.opt.t == t
    for name, w in s.net.state_dict().items():
        np.testing.assert_array_equal(w, weights[name])
    with pytest.raises(ConfigError):
        s.step(-1)


@pytest.mark.parametrize("bad", [{"hidden": (500,)}, {"hidden": (8, 8, 8)}, {"hidden": (1,)},
                                 {"batch_size": 0}, {"batch_size": 4096}, {"activation": "elu"},
                                 {"loss": "hinge"}, {"optimizer": "rmsprop"}])
def test_absurd_configs_are_refused(bad):
    with pytest.raises(ConfigError):
        StepConfig(**bad)


def test_stepping_learns_the_digits():
    """A few hundred steps of the default 64-16-10 (plain SGD) read most of the digits."""
    s = Stepper(StepConfig())
    s.steps_many(300, 0.5)
    assert np.mean(s.losses[-30:]) < 0.5 * np.mean(s.losses[:10])
    logits = s.net.forward(s.inputs.copy())
    assert (logits.argmax(1) == s.labels).mean() > 0.85


def test_checks_are_cached_per_step():
    s = _stepped()
    s.step(0.1)
    first = s.checks()
    assert s.checks() is not None and s.checks()[0] is first[0]
    s.step(0.1)
    assert s.checks()[0] is not first[0]
