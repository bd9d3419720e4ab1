"""Two checks of one training step's gradients, each independent of the hand-written backward.

`finite_difference_check` compares the step's dW with central differences of the loss
itself at a few weights of every layer; `autograd_check` takes the same step with PyTorch
autograd and torch.optim (float64) from the same weights, batch and optimiser state, and
compares the gradients and the weights after. A step taken with `backprop`'s "break it" bug
(the activation's derivative left out of the backward pass) fails both: the negative control
that shows the checks can fail.

A trace is anything shaped like `backprop.StepTrace` (`Trace` below says what the checks
read), so this module needs nothing from the stepper and the stepper asks it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import torch

from digits_core.nn.numpy_mlp import LOSSES, MLP

FD_TOLERANCE = 1e-4  # a right gradient: ~1e-8 (1e-5 at a ReLU kink); the bug: 1e-1 or more
AUTOGRAD_TOLERANCE = 1e-7  # float64 against float64: the same sums in another order, ~1e-16


class Trace(Protocol):
    """What the checks read of a step (`backprop.StepTrace`): its config (`network()`,
    `activation`, `loss`, `optimizer`), the batch x (N, 64) and y (N,), the learning rate,
    each layer's input x and W, and the weights before and after and the gradients by name."""

    config: Any  # a `backprop.StepConfig`
    lr: float
    y: np.ndarray
    layers: list

    @property
    def x(self) -> np.ndarray: ...

    def grads(self) -> dict[str, np.ndarray]: ...

    def before(self) -> dict[str, np.ndarray]: ...

    def after(self) -> dict[str, np.ndarray]: ...


@dataclass
class FiniteDifferenceCheck:
    """Central differences of the loss against the step's gradients, at a few weights."""

    weights: list[tuple[int, int, int]]  # (layer, i, j) of each weight checked
    analytic: np.ndarray  # (k,) the gradient the step used
    numeric: np.ndarray  # (k,) (L(w + eps) - L(w - eps)) / 2 eps
    rel_error: np.ndarray  # (k,) |a - n| / max(|a| + |n|, 1e-5)
    eps: float
    tolerance: float = FD_TOLERANCE

    @property
    def worst(self) -> float:
        return float(self.rel_error.max())

    @property
    def passed(self) -> bool:
        return self.worst < self.tolerance


def _loss_at(net: MLP, weights: dict[str, np.ndarray], trace: Trace) -> float:
    net.load_state_dict(weights)
    return float(LOSSES[trace.config.loss](net.forward(trace.x.copy()), trace.y)[0])


def finite_difference_check(trace: Trace, k: int = 4, seed: int = 0,
                            eps: float = 1e-5) -> FiniteDifferenceCheck:
    """`k` random weights of every layer, central differences of the step's own loss.

    Weights whose input is 0 for every image of the batch are left out: their gradient is 0
    whatever the backward pass does, so they would check nothing."""
    rng = np.random.default_rng(seed)
    net = trace.config.network()
    weights = {name: w.copy() for name, w in trace.before().items()}
    grads = trace.grads()
    where, analytic, numeric = [], [], []
    for li, L in enumerate(trace.layers):
        live = np.flatnonzero(np.abs(L.x).sum(0) > 0)
        live = live if len(live) else np.arange(L.W.shape[0])  # every unit dead: 0 either way
        for _ in range(k):
            i, j = int(rng.choice(live)), int(rng.integers(L.W.shape[1]))
            w = weights[f"dense{li}.W"]
            old = w[i, j]
            w[i, j] = old + eps
            hi = _loss_at(net, weights, trace)
            w[i, j] = old - eps
            lo = _loss_at(net, weights, trace)
            w[i, j] = old
            where.append((li, i, j))
            analytic.append(grads[f"dense{li}.W"][i, j])
            numeric.append((hi - lo) / (2 * eps))
    a, nu = np.array(analytic), np.array(numeric)
    # the floor: a gradient near 0 is compared absolutely, where rounding (~1e-10) is all there is
    return FiniteDifferenceCheck(where, a, nu, np.abs(a - nu) / np.maximum(np.abs(a) + np.abs(nu), 1e-5), eps)


@dataclass
class AutogradCheck:
    """The same step by PyTorch autograd and torch.optim, from the same weights and batch."""

    loss: float  # torch's loss of the batch
    grad_diff: float  # max |dW_numpy - dW_torch| over every weight and bias
    weight_diff: float  # max |W_after_numpy - W_after_torch|
    worst: str  # the parameter where grad_diff is
    dtype: str = "float64"
    tolerance: float = AUTOGRAD_TOLERANCE

    @property
    def passed(self) -> bool:
        return self.grad_diff < self.tolerance and self.weight_diff < self.tolerance


TORCH_ACTIVATIONS = {"relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid}


def torch_loss(params: dict[str, torch.Tensor], x: torch.Tensor, y: torch.Tensor,
               activation: str, loss: str) -> torch.Tensor:
    """The network's loss written in PyTorch over `params` {"dense0.W": (n_in, n_out), ...}."""
    n = len(params) // 2
    h = x
    for i in range(n):
        h = h @ params[f"dense{i}.W"] + params[f"dense{i}.b"]
        if i < n - 1:
            h = TORCH_ACTIVATIONS[activation](h)
    if loss == "cross-entropy":
        return torch.nn.functional.cross_entropy(h, y)
    onehot = torch.nn.functional.one_hot(y, h.shape[1]).to(h.dtype)
    return torch.nn.functional.mse_loss(h.softmax(1), onehot)


def torch_optimizer(kind: str, params: list[torch.Tensor], lr: float) -> torch.optim.Optimizer:
    """torch.optim's twin of `numpy_mlp.Optimizer(kind)` (its defaults)."""
    if kind == "sgd":
        return torch.optim.SGD(params, lr=lr)
    if kind == "momentum":
        return torch.optim.SGD(params, lr=lr, momentum=0.9)
    return torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999), eps=1e-8)


def load_torch_state(topt: torch.optim.Optimizer, params: dict[str, torch.Tensor],
                     state: dict[str, np.ndarray]) -> None:
    """Give torch.optim the NumPy optimiser's state ("name.v" / "name.m", "t")."""
    t = int(state.get("t", 0))
    for name, p in params.items():
        if f"{name}.m" in state:  # Adam
            topt.state[p] = {"step": torch.tensor(float(t)),
                             "exp_avg": torch.tensor(state[f"{name}.m"]),
                             "exp_avg_sq": torch.tensor(state[f"{name}.v"])}
        elif f"{name}.v" in state:  # momentum
            topt.state[p] = {"momentum_buffer": torch.tensor(state[f"{name}.v"])}


def autograd_check(trace: Trace, state_before: dict[str, np.ndarray]) -> AutogradCheck:
    """Take `trace`'s step again with torch (float64) from its weights, batch and the
    optimiser state before it; compare gradients and the weights after."""
    cfg = trace.config
    params = {name: torch.tensor(w, dtype=torch.float64, requires_grad=True)
              for name, w in trace.before().items()}
    value = torch_loss(params, torch.tensor(trace.x), torch.tensor(trace.y), cfg.activation, cfg.loss)
    value.backward()
    mine = trace.grads()
    diffs = {name: float(np.abs(mine[name] - p.grad.numpy()).max()) for name, p in params.items()}
    topt = torch_optimizer(cfg.optimizer, list(params.values()), trace.lr)
    load_torch_state(topt, params, state_before)
    topt.step()
    after = trace.after()
    weight_diff = max(float(np.abs(after[name] - p.detach().numpy()).max()) for name, p in params.items())
    worst = max(diffs, key=diffs.get)
    return AutogradCheck(value.item(), diffs[worst], weight_diff, worst)
