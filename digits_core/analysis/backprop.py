"""One training step of the NumPy network with every number kept, for a person to follow.

`Stepper` trains a small `numpy_mlp.MLP` (float64) on the bundled 8x8 digits one mini-batch
at a time. Each `Stepper.step` walks the network's own layers (`layer.forward`,
`layer.backward`, the loss from `numpy_mlp.LOSSES`, the update by `numpy_mlp.Optimizer`) and
copies what passes between them into a `StepTrace`: inputs, pre-activations z, activations a,
probabilities and loss; dL/da, f'(z), dL/dz, dW, db; W before, the step, W after; the
optimiser's state. The walk is the same loop as `MLP.forward` / `MLP.backward`, unrolled so
each intermediate can be copied before the next layer overwrites it (ReLU works in place).

Two checks (`gradcheck`) judge a trace against something independent of the hand-written
backward: central differences of the loss itself, and the same step taken by PyTorch
autograd and torch.optim from the same weights, batch and optimiser state. `broken=True`
takes the step with a known bug, the activation's derivative left out of the backward pass,
so a person sees both checks catch it.

Plain data throughout (dataclasses of arrays): the dashboard draws them, the tests check them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from digits_core.analysis.gradcheck import (
    AutogradCheck,
    FiniteDifferenceCheck,
    autograd_check,
    finite_difference_check,
)
from digits_core.data.datasets import MAX_VALUE, load_digits
from digits_core.errors import ConfigError, DigitLabError
from digits_core.nn.numpy_mlp import LOSSES, MLP, Dense, Optimizer, softmax

ACTIVATIONS = ("relu", "tanh", "sigmoid")
OPTIMIZERS = ("sgd", "momentum", "adam")
MAX_HIDDEN = 32  # units per hidden layer: past this a heat map's cells are too small to read
MAX_LAYERS = 2  # hidden layers
MAX_BATCH = 32
DTYPE = np.float64  # so the checks can tell a bug (~1e-1) from rounding (~1e-16)


class DivergedError(DigitLabError):
    """A step would make the loss or a weight infinite or NaN: it was not taken."""


@dataclass
class StepConfig:
    """The network a person steps through, and how it learns."""

    hidden: tuple[int, ...] = (16,)  # hidden units per layer: 64-16-10 by default
    activation: str = "relu"  # relu | tanh | sigmoid
    loss: str = "cross-entropy"  # cross-entropy | mse-softmax
    optimizer: str = "sgd"  # sgd | momentum (0.9) | adam (0.9, 0.999)
    batch_size: int = 16  # images per step
    seed: int = 0  # the weights' initialisation and the order of the images

    def __post_init__(self) -> None:
        self.hidden = tuple(int(h) for h in self.hidden)
        if not 1 <= len(self.hidden) <= MAX_LAYERS or not all(2 <= h <= MAX_HIDDEN for h in self.hidden):
            raise ConfigError(f"hidden layers: 1 to {MAX_LAYERS} of 2 to {MAX_HIDDEN} units each, "
                              f"not {list(self.hidden)}")
        if self.activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {', '.join(ACTIVATIONS)}")
        if self.loss not in LOSSES:
            raise ConfigError(f"loss must be one of {', '.join(LOSSES)}")
        if self.optimizer not in OPTIMIZERS:
            raise ConfigError(f"optimizer must be one of {', '.join(OPTIMIZERS)}")
        if not 1 <= self.batch_size <= MAX_BATCH:
            raise ConfigError(f"batch size: 1 to {MAX_BATCH} images, not {self.batch_size}")

    def network(self) -> MLP:
        """The float64 MLP this config describes, freshly initialised (He for ReLU, Xavier else)."""
        init = "he" if self.activation == "relu" else "xavier"
        return MLP(64, list(self.hidden), 10, activation=self.activation, init=init,
                   seed=self.seed, dtype=DTYPE)


@dataclass
class LayerTrace:
    """One Dense layer (and its activation, for a hidden layer) in one step. N = batch size."""

    x: np.ndarray  # (N, n_in) its input: the images, or the layer below's activations
    W: np.ndarray  # (n_in, n_out) before the step
    b: np.ndarray  # (n_out,) before the step
    z: np.ndarray  # (N, n_out) pre-activations x @ W + b (the logits for the last layer)
    a: np.ndarray  # (N, n_out) activations f(z); the logits again for the last layer
    da: np.ndarray | None  # (N, n_out) dL/da arriving from above; None for the last layer
    fprime: np.ndarray | None  # (N, n_out) f'(z), the activation's own backward of ones
    dz: np.ndarray  # (N, n_out) dL/dz, "delta"
    dW: np.ndarray  # (n_in, n_out) = x.T @ dz
    db: np.ndarray  # (n_out,) = dz summed over the batch
    W_after: np.ndarray  # (n_in, n_out)
    b_after: np.ndarray  # (n_out,)
    state: dict[str, np.ndarray] = field(default_factory=dict)  # optimiser state after: "W.v", ...

    @property
    def hidden(self) -> bool:
        return self.da is not None

    @property
    def W_step(self) -> np.ndarray:
        """(n_in, n_out) what the update added to W."""
        return self.W_after - self.W


@dataclass
class StepTrace:
    """Everything one training step computed."""

    step: int  # 1 for the first step taken
    lr: float
    config: StepConfig
    broken: bool  # the backward pass left out the activation's derivative
    index: np.ndarray  # (N,) the batch's images in the digits set
    y: np.ndarray  # (N,) int64 labels
    layers: list[LayerTrace]
    probs: np.ndarray  # (N, 10) softmax of the logits
    loss: float  # the batch's mean loss before the step
    example_loss: np.ndarray  # (N,) each image's own loss
    t: int  # the optimiser's step count after this step (Adam's bias correction uses it)

    @property
    def x(self) -> np.ndarray:
        return self.layers[0].x

    @property
    def logits(self) -> np.ndarray:
        return self.layers[-1].z

    @property
    def preds(self) -> np.ndarray:
        return self.probs.argmax(1)

    @property
    def bug_changes_nothing(self) -> bool:
        """A broken step whose gradients are right all the same: f'(z) is 1 for every unit
        and image of the batch (ReLU units all active), so leaving it out changes nothing."""
        return self.broken and all(np.all(l.fprime == 1) for l in self.layers if l.hidden)

    def grads(self) -> dict[str, np.ndarray]:
        """{"dense0.W": dW, "dense0.b": db, ...}: the gradients this step applied."""
        return _named([(l.dW, l.db) for l in self.layers])

    def before(self) -> dict[str, np.ndarray]:
        return _named([(l.W, l.b) for l in self.layers])

    def after(self) -> dict[str, np.ndarray]:
        return _named([(l.W_after, l.b_after) for l in self.layers])


def _named(pairs) -> dict[str, np.ndarray]:
    out = {}
    for i, (w, b) in enumerate(pairs):
        out[f"dense{i}.W"], out[f"dense{i}.b"] = w, b
    return out


# ---------------------------------------------------------------- one step


def traced_step(net: MLP, opt: Optimizer, x, y, *, loss: str, lr: float,
                broken: bool = False) -> tuple[list[LayerTrace], np.ndarray, float, dict]:
    """Forward, loss, backward and update of `net` on x (N, 64), y (N,), every intermediate
    copied. Returns (layers, probs (N, 10), loss, optimiser state before the step)."""
    dense = [l for l in net.layers if isinstance(l, Dense)]
    acts = {id(d): net.layers[net.layers.index(d) + 1] for d in dense[:-1]}
    before = [(d.W.copy(), d.b.copy()) for d in dense]
    state_before = opt.state_dict()
    rows = []
    h = x
    for d in dense:  # forward: MLP.forward, one Dense and its activation at a time
        x_in = h
        z = d.forward(x_in)
        z_copy = z.copy()
        h = acts[id(d)].forward(z) if id(d) in acts else z
        rows.append({"x": x_in, "z": z_copy, "a": h.copy()})
    value, g = LOSSES[loss](h, y)
    probs = softmax(h)
    for i in reversed(range(len(dense))):  # backward: MLP.backward, the same order
        d, row = dense[i], rows[i]
        if id(d) in acts:
            row["da"] = g.copy()
            row["fprime"] = acts[id(d)].backward(np.ones_like(g))  # elementwise: f'(z)
            g = g if broken else acts[id(d)].backward(g)  # the bug: f'(z) forgotten
        row["dz"] = g.copy()
        g = d.backward(g, input_grad=i > 0)
        row["dW"], row["db"] = d.dW.copy(), d.db.copy()
    opt.step(net.params(), lr)
    state = opt.state_dict()
    layers = []
    for i, (d, row, (W, b)) in enumerate(zip(dense, rows, before)):
        mine = {k.split(".", 1)[1]: v for k, v in state.items() if k.startswith(f"dense{i}.")}
        layers.append(LayerTrace(x=row["x"], W=W, b=b, z=row["z"], a=row["a"], da=row.get("da"),
                                 fprime=row.get("fprime"), dz=row["dz"], dW=row["dW"], db=row["db"],
                                 W_after=d.W.copy(), b_after=d.b.copy(), state=mine))
    return layers, probs, float(value), state_before


class Stepper:
    """A network, its optimiser and the digits, stepped one mini-batch at a time.

    Kept in a Streamlit session between reruns; holds only NumPy arrays and small objects.
    The batches walk a seeded shuffle of the 1,797 digits, reshuffled after each pass.
    """

    def __init__(self, config: StepConfig):
        self.config = config
        self.net = config.network()
        self.opt = Optimizer(config.optimizer)
        images, self.labels = load_digits()
        self.images = images  # (1797, 8, 8) uint8, for showing the batch
        self.inputs = (images.reshape(len(images), -1) / MAX_VALUE["digits"]).astype(DTYPE)  # (1797, 64)
        self.rng = np.random.default_rng(config.seed)
        self.order = self.rng.permutation(len(self.labels))
        self.cursor = 0
        self.losses: list[float] = []  # the batch loss before each step taken
        self.last: StepTrace | None = None
        self.state_before: dict[str, np.ndarray] = {}  # the optimiser's, before the last step
        self._checks: tuple | None = None  # (step, FiniteDifferenceCheck, AutogradCheck)

    @property
    def steps(self) -> int:
        return len(self.losses)

    def next_batch(self) -> np.ndarray:
        """(batch_size,) indices of the next images, wrapping into a new shuffle."""
        n = self.config.batch_size
        if self.cursor + n > len(self.order):
            self.order, self.cursor = self.rng.permutation(len(self.labels)), 0
        idx = self.order[self.cursor:self.cursor + n]
        self.cursor += n
        return idx

    def step(self, lr: float, *, broken: bool = False) -> StepTrace:
        """One mini-batch: forward, backward, update. Refuses (DivergedError, nothing
        changed) a step whose loss or new weights are not finite."""
        if not (np.isfinite(lr) and lr > 0):
            raise ConfigError(f"the learning rate must be a positive number, not {lr}")
        idx = self.next_batch()
        saved = (self.net.state_dict(), self.opt.state_dict())
        with np.errstate(over="ignore", invalid="ignore"):  # judged just below
            layers, probs, value, state_before = traced_step(
                self.net, self.opt, self.inputs[idx], self.labels[idx],
                loss=self.config.loss, lr=lr, broken=broken)
        if not (np.isfinite(value) and all(np.isfinite(p).all() for _, p, _ in self.net.params())):
            self.net.load_state_dict(saved[0])
            self.opt.load_state_dict(saved[1])
            self.cursor -= len(idx)
            raise DivergedError(f"learning rate {lr:g} sends the weights to infinity: the step was "
                                "not taken; lower it")
        fn = LOSSES[self.config.loss]
        each = np.array([fn(layers[-1].z[i:i + 1], self.labels[idx][i:i + 1])[0] for i in range(len(idx))])
        self.losses.append(value)
        self.state_before = state_before
        self.last = StepTrace(step=self.steps, lr=lr, config=self.config, broken=broken, index=idx,
                              y=self.labels[idx], layers=layers, probs=probs, loss=value,
                              example_loss=each, t=self.opt.t)
        return self.last

    def steps_many(self, n: int, lr: float, *, broken: bool = False) -> StepTrace:
        """`n` steps; the last one's trace."""
        for _ in range(n):
            trace = self.step(lr, broken=broken)
        return trace

    def checks(self) -> tuple[FiniteDifferenceCheck, AutogradCheck]:
        """Both checks of the last step, computed once per step."""
        if self.last is None:
            raise ValueError("no step taken yet")
        if self._checks is None or self._checks[0] != self.last.step:
            self._checks = (self.last.step, finite_difference_check(self.last, seed=self.last.step),
                            autograd_check(self.last, self.state_before))
        return self._checks[1], self._checks[2]


# ---------------------------------------------------------------- the chain rule for one weight


@dataclass
class ChainRule:
    """dL/dW[i, j] of one layer in one step, taken apart for image `n` of the batch."""

    layer: int
    i: int  # the weight's row: unit i of the layer's input
    j: int  # its column: unit j of the layer's output
    n: int  # the image of the batch followed
    x_in: float  # x[n, i], the input that multiplies the weight
    delta: float  # dz[n, j], dL/dz for that image
    term: float  # x_in * delta: image n's share of the gradient
    total: float  # dW[i, j], the sum over the batch
    da: float | None  # dL/da[n, j] (hidden layers)
    fprime: float | None  # f'(z[n, j]) (hidden layers)
    z: float  # z[n, j]
    upstream: np.ndarray | None  # (n_next,) dz_next[n, k] for every unit k above (hidden layers)
    W_next: np.ndarray | None  # (n_next,) W_next[j, k]
    prob: float | None  # p[n, j] (last layer)
    target: float | None  # 1 if j is image n's label (last layer)
    weight_before: float
    weight_after: float


def chain_rule(trace: StepTrace, layer: int, i: int, j: int, n: int) -> ChainRule:
    """The numbers of dL/dW_layer[i, j] = sum over images of x[., i] * delta[., j], for image `n`."""
    L = trace.layers[layer]
    hidden = L.hidden
    above = trace.layers[layer + 1] if hidden else None
    return ChainRule(
        layer=layer, i=i, j=j, n=n, x_in=float(L.x[n, i]), delta=float(L.dz[n, j]),
        term=float(L.x[n, i] * L.dz[n, j]), total=float(L.dW[i, j]),
        da=float(L.da[n, j]) if hidden else None, fprime=float(L.fprime[n, j]) if hidden else None,
        z=float(L.z[n, j]), upstream=above.dz[n].copy() if hidden else None,
        W_next=above.W[j].copy() if hidden else None,
        prob=None if hidden else float(trace.probs[n, j]),
        target=None if hidden else float(trace.y[n] == j),
        weight_before=float(L.W[i, j]), weight_after=float(L.W_after[i, j]),
    )


def strongest_weight(trace: StepTrace, layer: int = 0) -> tuple[int, int, int]:
    """(i, j, n): the layer's weight with the largest gradient this step, and the image of
    the batch with the largest share in it: a chain rule worth writing out (most weights
    of the first layer see a blank pixel, and their numbers are all 0)."""
    L = trace.layers[layer]
    i, j = np.unravel_index(int(np.abs(L.dW).argmax()), L.dW.shape)
    n = int(np.abs(L.x[:, i] * L.dz[:, j]).argmax())
    return int(i), int(j), n
