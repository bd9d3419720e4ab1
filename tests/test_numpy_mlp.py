"""The NumPy network, tested the way tinygrad's first week was: a central-difference
gradient check (with a negative control that must fail), gradients equal to
torch.autograd's on identical weights and batch, and optimisers equal to torch's."""

import numpy as np
import pytest
import torch

from digits_core.nn.numpy_mlp import MLP, Optimizer, cross_entropy, mse_softmax, softmax

ACTS = ["relu", "tanh", "sigmoid"]
LOSSES = ["cross-entropy", "mse-softmax"]


def _net(act, bias=True, seed=0, hidden=(7, 5)):
    return MLP(6, list(hidden), 4, activation=act, bias=bias, init="xavier", seed=seed, dtype=np.float64)


def _batch(seed=1, n=5):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)), rng.integers(0, 4, n)


def numerical_grads(net, x, y, loss, l2=0.0, reduction="mean", eps=1e-6):
    out = {}
    for name, p, _ in net.params():
        g = np.zeros_like(p)
        for i in np.ndindex(p.shape):
            old = p[i]
            p[i] = old + eps
            hi, _ = net.loss_and_grads(x, y, loss, l2, reduction)
            p[i] = old - eps
            lo, _ = net.loss_and_grads(x, y, loss, l2, reduction)
            p[i] = old
            g[i] = (hi - lo) / (2 * eps)
        out[name] = g
    return out


def max_rel_error(a, b):
    return float(np.max(np.abs(a - b) / np.maximum(1e-8, np.abs(a) + np.abs(b))))


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("bias", [True, False])
def test_gradient_check(act, loss, bias):
    net = _net(act, bias)
    x, y = _batch()
    for reduction, l2 in (("mean", 0.0), ("sum", 0.1)):
        net.loss_and_grads(x, y, loss, l2, reduction)
        analytic = {n: g.copy() for n, _, g in net.params()}
        numeric = numerical_grads(net, x, y, loss, l2, reduction)
        for name in analytic:
            assert max_rel_error(analytic[name], numeric[name]) < 1e-5, (name, reduction)


def test_gradient_check_catches_a_wrong_gradient():
    """Negative control: squared error back-propagated as if softmax were absent (the S1a
    bug) must fail the same check that the correct gradient passes."""

    def buggy_mse(z, y, reduction="mean"):
        loss, _ = mse_softmax(z, y, reduction)
        n, c = z.shape
        t = np.eye(c)[y]
        return loss, 2 * (softmax(z) - t) / (n * c)

    import digits_core.nn.numpy_mlp as nm

    net = _net("relu")
    x, y = _batch()
    nm.LOSSES["buggy"] = buggy_mse
    try:
        net.loss_and_grads(x, y, "buggy")
        analytic = {n: g.copy() for n, _, g in net.params()}
        numeric = numerical_grads(net, x, y, "buggy")
    finally:
        del nm.LOSSES["buggy"]
    assert max(max_rel_error(analytic[n], numeric[n]) for n in analytic) > 1e-2


def test_dropout_gradient_with_frozen_mask():
    net = MLP(6, [8], 4, activation="tanh", dropout=0.5, seed=3, dtype=np.float64)
    x, y = _batch()
    net.train(True)
    net.forward(x)
    drop = [l for l in net.layers if type(l).__name__ == "Dropout"][0]
    mask = drop.mask.copy()
    assert set(np.unique(mask)) <= {0.0, 2.0}  # inverted dropout: kept units x 1/(1-p)
    drop.rng = None  # freeze: replay the same mask on every forward
    drop.forward = lambda h, m=mask: (setattr(drop, "mask", m), h * m)[1]
    net.loss_and_grads(x, y, "cross-entropy")
    analytic = {n: g.copy() for n, _, g in net.params()}
    numeric = numerical_grads(net, x, y, "cross-entropy")
    assert all(max_rel_error(analytic[n], numeric[n]) < 1e-5 for n in analytic)


def _torch_twin(net, act, bias):
    acts = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}
    params = {n: torch.tensor(p, requires_grad=True) for n, p, _ in net.params()}
    n_dense = len(net.dense)

    def forward(x):
        h = x
        for i in range(n_dense):
            h = h @ params[f"dense{i}.W"]
            if bias:
                h = h + params[f"dense{i}.b"]
            if i < n_dense - 1:
                h = acts[act](h)
        return h

    return params, forward


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("bias", [True, False])
def test_gradients_equal_torch_autograd(act, loss, bias):
    net = _net(act, bias, hidden=(16, 12))
    x, y = _batch(n=9)
    value, _ = net.loss_and_grads(x, y, loss, l2=0.01)
    params, forward = _torch_twin(net, act, bias)
    z = forward(torch.tensor(x))
    if loss == "cross-entropy":
        t_loss = torch.nn.functional.cross_entropy(z, torch.tensor(y))
    else:
        onehot = torch.nn.functional.one_hot(torch.tensor(y), 4).double()
        t_loss = torch.nn.functional.mse_loss(z.softmax(1), onehot)
    t_loss = t_loss + 0.5 * 0.01 * sum((p * p).sum() for n, p in params.items() if n.endswith("W"))
    t_loss.backward()
    assert value == pytest.approx(t_loss.item(), rel=1e-10)
    for name, _, g in net.params():
        np.testing.assert_allclose(g, params[name].grad.numpy(), rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("kind", ["sgd", "momentum", "adam"])
def test_optimizers_equal_torch(kind):
    rng = np.random.default_rng(0)
    p = rng.normal(size=(5, 3))
    tp = torch.tensor(p.copy(), requires_grad=True)
    opt = Optimizer(kind, momentum=0.9)
    topt = {
        "sgd": lambda: torch.optim.SGD([tp], lr=0.05),
        "momentum": lambda: torch.optim.SGD([tp], lr=0.05, momentum=0.9),
        "adam": lambda: torch.optim.Adam([tp], lr=0.05),
    }[kind]()
    for _ in range(5):
        g = rng.normal(size=p.shape)
        opt.step([("p", p, g)], 0.05)
        tp.grad = torch.tensor(g)
        topt.step()
    np.testing.assert_allclose(p, tp.detach().numpy(), rtol=1e-7, atol=1e-9)


def test_float32_training_is_batched_and_stays_float32():
    net = MLP(64, [32], seed=0)
    x = np.random.default_rng(0).random((100, 64), dtype=np.float32)
    y = np.arange(100) % 10
    loss, logits = net.loss_and_grads(x, y, "cross-entropy")
    assert logits.dtype == np.float32 and logits.shape == (100, 10)
    assert all(g.dtype == np.float32 for _, _, g in net.params())
    assert np.isfinite(loss)


def test_losses_are_stable_for_huge_logits():
    z = np.array([[1000.0, 0.0, -1000.0]])
    for fn in (cross_entropy, mse_softmax):
        loss, g = fn(z, np.array([2]))
        assert np.isfinite(loss) and np.all(np.isfinite(g))
