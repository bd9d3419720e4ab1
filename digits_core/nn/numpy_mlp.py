"""A multilayer perceptron in NumPy with hand-written backpropagation.

`Dense`, `ReLU`/`Tanh`/`Sigmoid`, `Dropout` -> `MLP`: every layer keeps its forward and
backward side by side, with the shape of every matrix in a comment. One matrix product per layer per batch; float32 for training, float64
for gradient checks. The network returns raw logits; losses apply the softmax.
"""

from __future__ import annotations

import numpy as np

# ---------------------------------------------------------------- layers


class Dense:
    def __init__(self, n_in: int, n_out: int, *, bias: bool, init: str, rng, dtype):
        self.W = init_weights(init, n_in, n_out, rng).astype(dtype)  # (n_in, n_out)
        self.b = None  # (n_out,)
        if bias:
            if init == "normal-0.01":
                b = rng.normal(0, 0.01, n_out)
            elif init == "pytorch":
                b = rng.uniform(-1, 1, n_out) / np.sqrt(n_in)
            else:
                b = np.zeros(n_out)
            self.b = b.astype(dtype)
        # Gradients are written in place, so the arrays params() hands out stay current.
        self.dW = np.zeros_like(self.W)  # (n_in, n_out)
        self.db = None if self.b is None else np.zeros_like(self.b)  # (n_out,)

    def forward(self, x: np.ndarray) -> np.ndarray:
        self.x = x  # (N, n_in)
        out = x @ self.W  # (N, n_out)
        return out if self.b is None else out + self.b

    def backward(self, g: np.ndarray, *, input_grad: bool = True) -> np.ndarray | None:
        """Fills dW, db; returns dL/dx (N, n_in), or None when `input_grad` is off (the
        first layer: nothing below needs it, and it costs a third of the layer's work)."""
        np.matmul(self.x.T, g, out=self.dW)  # (n_in, n_out)
        if self.b is not None:
            np.sum(g, axis=0, out=self.db)  # (n_out,)
        return g @ self.W.T if input_grad else None  # (N, n_in)

    def params(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        p = [("W", self.W, self.dW)]
        return p if self.b is None else p + [("b", self.b, self.db)]


class ReLU:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.mask = x > 0  # (N, K)
        return np.maximum(x, 0, out=x)  # x is the Dense output just made: nothing else holds it

    def backward(self, g: np.ndarray) -> np.ndarray:
        return np.multiply(g, self.mask, out=g)


class Tanh:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.tanh(x)  # (N, K)
        return self.out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * (1 - self.out * self.out)


class Sigmoid:
    def forward(self, x: np.ndarray) -> np.ndarray:
        self.out = np.exp(-np.logaddexp(0, -x)).astype(x.dtype)  # (N, K), finite for large |x|
        return self.out

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g * self.out * (1 - self.out)


ACTIVATIONS = {"relu": ReLU, "tanh": Tanh, "sigmoid": Sigmoid}


class Dropout:
    """Inverted dropout: kept units are scaled by 1/(1-p) in training, nothing at test."""

    def __init__(self, p: float, rng):
        self.p, self.rng, self.training = p, rng, False

    def forward(self, x: np.ndarray) -> np.ndarray:
        if not self.training or self.p == 0:
            self.mask = None
            return x
        keep = 1.0 - self.p
        self.mask = (self.rng.random(x.shape) < keep).astype(x.dtype) / x.dtype.type(keep)  # (N, K)
        return x * self.mask

    def backward(self, g: np.ndarray) -> np.ndarray:
        return g if self.mask is None else g * self.mask


def init_weights(kind: str, n_in: int, n_out: int, rng) -> np.ndarray:
    """A (n_in, n_out) float64 weight matrix drawn as `kind` says."""
    if kind == "he":
        return rng.normal(0, np.sqrt(2.0 / n_in), (n_in, n_out))
    if kind == "xavier":
        return rng.normal(0, np.sqrt(2.0 / (n_in + n_out)), (n_in, n_out))
    if kind == "normal-0.01":
        return rng.normal(0, 0.01, (n_in, n_out))
    if kind == "uniform-1":
        return rng.uniform(-1, 1, (n_in, n_out))
    if kind == "pytorch":  # torch.nn.Linear's default: U(+-1/sqrt(fan_in))
        return rng.uniform(-1, 1, (n_in, n_out)) / np.sqrt(n_in)
    if kind == "randn-over-h":  # the classic `randn(D, H) / H` of early tutorials
        return rng.standard_normal((n_in, n_out)) / n_out
    raise ValueError(f"unknown init {kind!r}")


# ---------------------------------------------------------------- losses


def softmax(z: np.ndarray) -> np.ndarray:
    """logits (N, C) -> probs (N, C), stable for any finite logits."""
    e = np.exp(z - z.max(1, keepdims=True))
    return e / e.sum(1, keepdims=True)


def cross_entropy(z: np.ndarray, y: np.ndarray, reduction: str = "mean"):
    """Softmax cross-entropy of logits z (N, C) against labels y (N,). Returns (loss, dL/dz)."""
    n = len(y)
    shifted = z - z.max(1, keepdims=True)
    logp = shifted - np.log(np.exp(shifted).sum(1, keepdims=True))  # (N, C)
    loss = -logp[np.arange(n), y].sum()
    g = np.exp(logp)
    g[np.arange(n), y] -= 1  # (N, C): softmax - onehot
    if reduction == "mean":
        loss, g = loss / n, g / n
    return loss, g


def mse_softmax(z: np.ndarray, y: np.ndarray, reduction: str = "mean"):
    """Squared error between softmax(z) (N, C) and one-hot y, as torch's MSELoss on probs.

    The gradient goes through the full softmax Jacobian: dz = p * (dp - <dp, p>).
    """
    n, c = z.shape
    p = softmax(z)
    t = np.zeros_like(p)
    t[np.arange(n), y] = 1
    d = p - t
    loss = (d * d).sum()
    dp = 2 * d  # (N, C)
    if reduction == "mean":
        loss, dp = loss / (n * c), dp / (n * c)
    g = p * (dp - (dp * p).sum(1, keepdims=True))  # (N, C)
    return loss, g


LOSSES = {"cross-entropy": cross_entropy, "mse-softmax": mse_softmax}


# ---------------------------------------------------------------- optimisers


class Optimizer:
    """SGD, SGD with momentum, or Adam over named (name, param, grad) triples, as
    `MLP.params()` gives them. Updates every param in place."""

    def __init__(self, kind: str, momentum: float = 0.9, betas=(0.9, 0.999), eps=1e-8):
        self.kind, self.momentum, self.betas, self.eps = kind, momentum, betas, eps
        self.state: dict[str, np.ndarray] = {}  # "name.v" (momentum), "name.m" / "name.v" (Adam)
        self.t = 0

    def step(self, params: list[tuple[str, np.ndarray, np.ndarray]], lr: float) -> None:
        self.t += 1
        b1, b2 = self.betas
        for name, p, g in params:
            if self.kind == "sgd":
                p -= lr * g
            elif self.kind == "momentum":
                v = self.state.get(f"{name}.v")
                if v is None:
                    v = self.state[f"{name}.v"] = g.copy()
                else:
                    v *= self.momentum
                    v += g
                p -= lr * v
            else:
                if f"{name}.m" not in self.state:
                    self.state[f"{name}.m"], self.state[f"{name}.v"] = np.zeros_like(p), np.zeros_like(p)
                m, v = self.state[f"{name}.m"], self.state[f"{name}.v"]
                m *= b1
                m += (1 - b1) * g
                v *= b2
                v += (1 - b2) * g * g
                mhat = m / (1 - b1**self.t)
                vhat = v / (1 - b2**self.t)
                p -= lr * mhat / (np.sqrt(vhat) + self.eps)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {"t": np.array(self.t), **{k: v.copy() for k, v in self.state.items()}}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.t = int(state.get("t", 0))
        self.state = {k: np.array(v) for k, v in state.items() if k != "t"}


# ---------------------------------------------------------------- network


class MLP:
    """in_features -> hidden... -> 10 logits. `layers` alternate Dense, an activation, Dropout."""

    def __init__(
        self,
        n_in: int,
        hidden: list[int],
        n_out: int = 10,
        *,
        activation: str = "relu",
        bias: bool = True,
        init: str = "he",
        dropout: float = 0.0,
        seed: int = 0,
        dtype=np.float32,
    ):
        self.rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)
        self.layers: list = []
        sizes = [n_in, *hidden]
        for a, b in zip(sizes[:-1], sizes[1:]):
            self.layers += [Dense(a, b, bias=bias, init=init, rng=self.rng, dtype=dtype)]
            self.layers += [ACTIVATIONS[activation]()]
            if dropout > 0:
                self.layers += [Dropout(dropout, self.rng)]
        self.layers += [Dense(sizes[-1], n_out, bias=bias, init=init, rng=self.rng, dtype=dtype)]

    @property
    def dense(self) -> list[Dense]:
        return [l for l in self.layers if isinstance(l, Dense)]

    def train(self, mode: bool = True) -> None:
        for l in self.layers:
            if isinstance(l, Dropout):
                l.training = mode

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, in_features) -> logits (N, 10)."""
        for l in self.layers:
            x = l.forward(x)
        return x

    def features(self, x: np.ndarray) -> np.ndarray:
        """x (N, in_features) -> the last hidden layer's activations (N, hidden[-1])."""
        for l in self.layers[:-1]:
            x = l.forward(x)
        return x

    def backward(self, g: np.ndarray) -> None:
        """g = dL/dlogits (N, 10); fills every Dense layer's dW, db."""
        first = self.layers[0]
        for l in reversed(self.layers[1:]):
            g = l.backward(g)
        first.backward(g, input_grad=False)

    def loss_and_grads(self, x, y, loss: str, l2: float = 0.0, reduction: str = "mean"):
        """Forward, loss and backward on one batch. Returns (loss, logits); grads are filled.

        The L2 term 0.5 * l2 * sum(W^2) covers weights, not biases.
        """
        logits = self.forward(x)
        value, g = LOSSES[loss](logits, y, reduction)
        self.backward(g)
        if l2:
            for d in self.dense:
                value += 0.5 * l2 * float((d.W * d.W).sum())
                d.dW += l2 * d.W
        return float(value), logits

    def params(self) -> list[tuple[str, np.ndarray, np.ndarray]]:
        """[(name, param, grad)] for every Dense layer, names like 'dense0.W'."""
        out = []
        for i, d in enumerate(self.dense):
            out += [(f"dense{i}.{n}", p, g) for n, p, g in d.params()]
        return out

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: p.copy() for name, p, _ in self.params()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        mine = {name: p for name, p, _ in self.params()}
        if set(mine) != set(state):
            raise ValueError(f"weights have {sorted(state)}, network needs {sorted(mine)}")
        for name, p in mine.items():
            if state[name].shape != p.shape:
                raise ValueError(f"{name}: shape {state[name].shape}, network needs {p.shape}")
            p[...] = state[name]
