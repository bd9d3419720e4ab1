"""Three model families behind one interface.

Every `Classifier` takes images `x (N, H, W) float32` (already normalised) and offers
`forward(x) -> logits (N, 10)`, `probs(x)`, `features(x) -> (N, F)` (the last hidden layer),
`n_params`, `first_layer_weights()`, weights as a dict of arrays, and the few training hooks
the training loop needs (`to_backend`, `train_step`). Models return raw logits; the loss
applies the softmax.
"""

from __future__ import annotations

import math
import os
import threading
from pathlib import Path

import numpy as np

from .config import MAX_PARAMS, ConvBlock, ModelConfig, TrainConfig
from .errors import ConfigError
from .numpy_mlp import MLP, Optimizer, softmax

EVAL_CHUNK = 2048  # images per forward pass at inference: bounds memory for 60k images


class Classifier:
    family: str = ""
    config: ModelConfig
    image_shape: tuple[int, int]

    # -- inference ---------------------------------------------------------
    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W) float32 -> logits (N, 10) float32, inference mode."""
        return self._chunked(x, self._logits)

    def features(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W) float32 -> last hidden layer (N, F) float32, inference mode."""
        return self._chunked(x, self._features)

    def probs(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W) -> class probabilities (N, 10)."""
        return softmax(self.forward(x).astype(np.float64)).astype(np.float32)

    def _chunked(self, x, fn) -> np.ndarray:
        self._check_input(x)
        parts = [fn(x[i : i + EVAL_CHUNK]) for i in range(0, max(len(x), 1), EVAL_CHUNK)]
        return np.concatenate(parts).astype(np.float32, copy=False)

    def _check_input(self, x: np.ndarray) -> None:
        if x.ndim != 3 or tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"model expects images (N, {self.image_shape[0]}, {self.image_shape[1]}), "
                f"got {x.shape}"
            )

    # -- subclass hooks ------------------------------------------------------
    def _logits(self, x):  # pragma: no cover - abstract
        raise NotImplementedError

    def _features(self, x):  # pragma: no cover - abstract
        raise NotImplementedError


# ------------------------------------------------------------------ NumPy


class NumpyMLPClassifier(Classifier):
    family = "numpy-mlp"

    def __init__(self, cfg: ModelConfig, image_shape, seed: int = 0, dtype=np.float32):
        self.config, self.image_shape = cfg, tuple(image_shape)
        self.net = MLP(
            int(np.prod(image_shape)),
            list(cfg.hidden),
            activation=cfg.activation,
            bias=cfg.bias,
            init=cfg.init,
            dropout=cfg.dropout,
            seed=seed,
            dtype=dtype,
        )
        self.device = "cpu"

    def _logits(self, x):
        self.net.train(False)
        return self.net.forward(x.reshape(len(x), -1))

    def _features(self, x):
        self.net.train(False)
        return self.net.features(x.reshape(len(x), -1))

    @property
    def n_params(self) -> int:
        return sum(p.size for _, p, _ in self.net.params())

    def first_layer_weights(self) -> np.ndarray:
        """(H*W, K) weights of the first dense layer."""
        return self.net.dense[0].W.copy()

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.net.state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.net.load_state_dict(state)

    # -- training --------------------------------------------------------------
    def begin_training(self, tc: TrainConfig) -> None:
        self.tc = tc
        self.opt = Optimizer(tc.optimizer, tc.momentum, betas=tuple(tc.adam_betas))

    def to_backend(self, x: np.ndarray) -> np.ndarray:
        return np.ascontiguousarray(x.reshape(len(x), -1), dtype=self.net.dtype)

    def labels_to_backend(self, y: np.ndarray) -> np.ndarray:
        return np.asarray(y, dtype=np.int64)

    def take(self, x, idx):
        return x[idx]

    def train_step(self, xb: np.ndarray, yb: np.ndarray, lr: float) -> tuple[float, int]:
        """One optimiser step on a batch; returns (loss, number of correct predictions)."""
        self.net.train(True)
        loss, logits = self.net.loss_and_grads(
            xb, yb, self.tc.loss, self.tc.l2, self.tc.loss_reduction
        )
        self.opt.step([(p, g) for _, p, g in self.net.params()], lr)
        return loss, int((logits.argmax(1) == yb).sum())

    def augment_input(self, xb: np.ndarray, gen, strength: float = 1.0, labels=None) -> np.ndarray:
        import torch

        from .augment import augment_batch

        t = torch.from_numpy(xb.reshape(len(xb), 1, *self.image_shape))
        y = None if labels is None else torch.from_numpy(np.asarray(labels))
        return augment_batch(t, gen, strength=strength, labels=y).reshape(len(xb), -1).numpy()


# ------------------------------------------------------------------ PyTorch


_threads_set = threading.Lock()
_threads_done = False


def default_threads() -> int:
    """Torch threads for training: every core but one (at least one), or `$DIGITLAB_THREADS`.

    Leaving a core free matters more than it seems: when anything else runs (the web
    server, a browser, another job), a thread team as wide as the machine waits at every
    barrier for a descheduled member; measured on 2 cores with one busy, a small CNN step
    took 378 ms on 2 threads and 16 ms on 1.
    """
    env = os.environ.get("DIGITLAB_THREADS")
    if env:
        return max(1, int(env))
    return max(1, (os.cpu_count() or 1) - 1)


def setup_torch_threads() -> None:
    """Set torch's thread count once per process (see default_threads)."""
    global _threads_done
    import torch

    with _threads_set:
        if not _threads_done:
            torch.set_num_threads(default_threads())
            _threads_done = True


SMALL_BATCH = 64  # at or below this many images, inference runs on the calling thread alone


class _few_threads:
    """Run a small inference on one thread. Torch's intra-op thread count is per calling
    thread here, so this leaves a training thread's pool alone; a one-image forward is
    faster without a thread team, and it does not queue behind the trainer's workers."""

    def __init__(self, n: int):
        self.small = n <= SMALL_BATCH

    def __enter__(self):
        if self.small:
            import torch

            self.old = torch.get_num_threads()
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.small:
            import torch

            torch.set_num_threads(self.old)


def pick_device(requested: str = "auto") -> str:
    import torch

    if requested == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device 'cuda' was asked for but no CUDA GPU is available")
    if requested == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    return requested


def _torch_modules():
    """Build the nn.Module classes lazily so importing this module does not import torch."""
    import torch
    from torch import nn

    act = {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid}

    def dense_stack(n_in: int, cfg: ModelConfig) -> nn.Sequential:
        layers: list[nn.Module] = []
        for w in cfg.hidden:
            layers += [nn.Linear(n_in, w, bias=cfg.bias), act[cfg.activation]()]
            if cfg.dropout:
                layers += [nn.Dropout(cfg.dropout)]
            n_in = w
        return nn.Sequential(*layers), n_in

    class TorchMLP(nn.Module):
        def __init__(self, cfg: ModelConfig, image_shape):
            super().__init__()
            self.body, n = dense_stack(int(np.prod(image_shape)), cfg)
            self.head = nn.Linear(n, 10, bias=cfg.bias)

        def features(self, x):  # x (N, H, W) -> (N, F)
            return self.body(x.flatten(1))

        def forward(self, x):  # x (N, H, W) -> logits (N, 10)
            return self.head(self.features(x))

    class TorchCNN(nn.Module):
        def __init__(self, cfg: ModelConfig, image_shape):
            super().__init__()
            blocks: list[nn.Module] = []
            c, (h, w) = 1, image_shape
            for b in cfg.conv:
                blocks += [nn.Conv2d(c, b.channels, b.kernel, padding=b.padding, bias=not b.batchnorm)]
                h, w = h + 2 * b.padding - b.kernel + 1, w + 2 * b.padding - b.kernel + 1
                pool = [nn.MaxPool2d(b.pool)] if b.pool > 1 else []
                if pool:
                    h, w = h // b.pool, w // b.pool
                if cfg.pool_first:  # max-pool, then BN and the activation on a quarter of the pixels
                    blocks += pool
                if b.batchnorm:
                    blocks += [nn.BatchNorm2d(b.channels)]
                blocks += [act[cfg.activation]()]
                if not cfg.pool_first:
                    blocks += pool
                if b.dropout:
                    blocks += [nn.Dropout(b.dropout)]
                if h < 1 or w < 1:
                    raise ConfigError(
                        f"the conv blocks shrink a {image_shape[0]}x{image_shape[1]} image to nothing; "
                        "use padding or less pooling"
                    )
                c = b.channels
            self.conv = nn.Sequential(*blocks)
            self.flat_size = c * h * w
            self.body, n = dense_stack(self.flat_size, cfg)
            self.head = nn.Linear(n, 10, bias=cfg.bias)

        channels_last = False  # set by the wrapper: NHWC is faster for CPU convolutions

        def features(self, x):  # x (N, H, W) -> (N, F): last hidden (or flattened conv) layer
            x = x.unsqueeze(1)
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            return self.body(self.conv(x).flatten(1))

        def forward(self, x):  # x (N, H, W) -> logits (N, 10)
            return self.head(self.features(x))

    return TorchMLP, TorchCNN


def _init_torch(module, kind: str, seed: int) -> None:
    import torch
    from torch import nn

    g = torch.Generator().manual_seed(seed)
    if kind == "pytorch":  # keep torch's own defaults, drawn from the seeded global generator
        torch.manual_seed(seed)
        for m in module.modules():
            if hasattr(m, "reset_parameters"):
                m.reset_parameters()
        return
    for m in module.modules():
        if not isinstance(m, (nn.Linear, nn.Conv2d)):
            continue
        w = m.weight
        fan_in = w[0].numel()
        fan_out = w.shape[0] * (w[0][0].numel() if w.dim() > 2 else 1)
        with torch.no_grad():
            if kind == "he":
                w.normal_(0, math.sqrt(2.0 / fan_in), generator=g)
            elif kind == "xavier":
                w.normal_(0, math.sqrt(2.0 / (fan_in + fan_out)), generator=g)
            elif kind == "normal-0.01":
                w.normal_(0, 0.01, generator=g)
            elif kind == "uniform-1":
                w.uniform_(-1, 1, generator=g)
            else:  # randn-over-h
                w.normal_(0, 1, generator=g).div_(w.shape[0])
            if m.bias is not None:
                if kind == "normal-0.01":
                    m.bias.normal_(0, 0.01, generator=g)
                else:
                    m.bias.zero_()


class TorchClassifier(Classifier):
    def __init__(self, cfg: ModelConfig, image_shape, seed: int = 0, device: str = "auto"):
        import torch

        setup_torch_threads()
        self.config, self.image_shape = cfg, tuple(image_shape)
        self.family = cfg.family
        TorchMLP, TorchCNN = _torch_modules()
        self.module = (TorchCNN if cfg.family == "cnn" else TorchMLP)(cfg, self.image_shape)
        _init_torch(self.module, cfg.init, seed)
        self.device = pick_device(device)
        # NHWC pays off for 28x28 convolutions on a CPU; on 8x8 its reorders cost more than they save.
        self.channels_last = (
            cfg.family == "cnn" and cfg.channels_last and self.device == "cpu" and min(self.image_shape) >= 16
        )
        self.module.to(self.device)
        if self.channels_last:
            self.module.to(memory_format=torch.channels_last)
            self.module.channels_last = True
        self.module.eval()

    def _run(self, x, fn):
        import torch

        with torch.inference_mode(), _few_threads(len(x)):
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            self.module.eval()
            return fn(t).float().cpu().numpy()

    def _logits(self, x):
        return self._run(x, self.module)

    def _features(self, x):
        return self._run(x, self.module.features)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def first_layer_weights(self) -> np.ndarray:
        """MLP: (H*W, K) first dense weights; CNN: (K, 1, kh, kw) first conv kernels."""
        import torch

        for m in self.module.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                w = m.weight.detach().float().cpu().numpy()
                return w.T.copy() if w.ndim == 2 else np.ascontiguousarray(w)
        raise RuntimeError("model has no weight layer")

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict) -> None:
        import torch

        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}
        self.module.load_state_dict(tensors)
        self.module.eval()

    # -- training --------------------------------------------------------------
    def begin_training(self, tc: TrainConfig) -> None:
        import torch

        self.tc = tc
        params = list(self.module.parameters())
        if tc.optimizer == "sgd":
            self.opt = torch.optim.SGD(params, lr=tc.lr)
        elif tc.optimizer == "momentum":
            self.opt = torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum)
        else:
            self.opt = torch.optim.Adam(params, lr=tc.lr, betas=tuple(tc.adam_betas))
        # L2 on weights of dense/conv layers only, the same term as the NumPy network's.
        self._decay = [
            m.weight
            for m in self.module.modules()
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
        ]

    def to_backend(self, x: np.ndarray):
        import torch

        t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
        return t

    def labels_to_backend(self, y: np.ndarray):
        import torch

        return torch.from_numpy(np.array(y, dtype=np.int64)).to(self.device)  # a writable copy

    def take(self, x, idx):
        import torch

        return x[torch.from_numpy(np.asarray(idx)).to(x.device)]

    def loss(self, logits, yb):
        import torch.nn.functional as F

        tc = self.tc
        if tc.loss == "cross-entropy":
            value = F.cross_entropy(logits, yb, reduction=tc.loss_reduction)
        else:
            onehot = F.one_hot(yb, 10).to(logits.dtype)
            value = F.mse_loss(logits.softmax(1), onehot, reduction=tc.loss_reduction)
        if tc.l2:
            value = value + 0.5 * tc.l2 * sum((w * w).sum() for w in self._decay)
        return value

    def train_step(self, xb, yb, lr: float) -> tuple[float, int]:
        import torch

        self.module.train()
        for group in self.opt.param_groups:
            group["lr"] = lr
        logits = self.module(xb)
        value = self.loss(logits, yb)
        self.opt.zero_grad(set_to_none=True)
        value.backward()
        self.opt.step()
        with torch.no_grad():
            correct = int((logits.argmax(1) == yb).sum())
        return float(value.detach()), correct

    def augment_input(self, xb, gen, strength: float = 1.0, labels=None):
        from .augment import augment_batch

        return augment_batch(xb.unsqueeze(1), gen, strength=strength, labels=labels).squeeze(1)


# ------------------------------------------------------------------ factory


def build_model(cfg: ModelConfig, image_shape, *, seed: int = 0, device: str = "auto") -> Classifier:
    """A fresh, initialised model for images of `image_shape`. Refuses absurd sizes."""
    cfg.validate()
    check_size(cfg, image_shape)
    if cfg.family == "numpy-mlp":
        return NumpyMLPClassifier(cfg, image_shape, seed=seed)
    return TorchClassifier(cfg, image_shape, seed=seed, device=device)


def count_params(cfg: ModelConfig, image_shape) -> int:
    """Parameter count without building the model (cheap; for the UI and the size check)."""
    cfg.validate()
    sizes = [int(np.prod(image_shape))]
    total = 0
    if cfg.family == "cnn":
        c, (h, w) = 1, image_shape
        for b in cfg.conv:
            total += b.channels * c * b.kernel * b.kernel + (2 * b.channels if b.batchnorm else b.channels)
            h, w = h + 2 * b.padding - b.kernel + 1, w + 2 * b.padding - b.kernel + 1
            h, w = h // b.pool, w // b.pool
            if h < 1 or w < 1:
                raise ConfigError(
                    f"the conv blocks shrink a {image_shape[0]}x{image_shape[1]} image to nothing; "
                    "use padding or less pooling"
                )
            c = b.channels
        sizes = [c * h * w]
    sizes += [*cfg.hidden, 10]
    for a, b in zip(sizes[:-1], sizes[1:]):
        total += a * b + (b if cfg.bias else 0)
    return total


def check_size(cfg: ModelConfig, image_shape) -> int:
    n = count_params(cfg, image_shape)
    if n > MAX_PARAMS:
        raise ConfigError(
            f"this model would have {n:,} parameters, over the cap of {MAX_PARAMS:,}; "
            "use fewer or narrower layers"
        )
    return n


def save_weights(model: Classifier, path: Path) -> Path:
    """Write weights beside `path` (.npz for NumPy, .pt state_dict for torch); returns the file."""
    if model.family == "numpy-mlp":
        out = path.with_suffix(".npz")
        with open(out, "wb") as f:
            np.savez(f, **model.state_dict())
        return out
    import torch

    out = path.with_suffix(".pt")
    torch.save({k: v.detach().cpu() for k, v in model.module.state_dict().items()}, out)
    return out


def load_weights(model: Classifier, path: Path) -> None:
    """Read weights written by `save_weights` safely (no pickle)."""
    if model.family == "numpy-mlp":
        with np.load(path.with_suffix(".npz"), allow_pickle=False) as z:
            model.load_state_dict({k: z[k] for k in z.files})
        return
    import torch

    state = torch.load(path.with_suffix(".pt"), map_location="cpu", weights_only=True)
    model.module.load_state_dict(state)
    model.module.to(model.device)
    model.module.eval()


__all__ = [
    "Classifier",
    "ConvBlock",
    "NumpyMLPClassifier",
    "TorchClassifier",
    "build_model",
    "count_params",
    "check_size",
    "pick_device",
    "save_weights",
    "load_weights",
]
