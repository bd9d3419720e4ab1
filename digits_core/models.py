"""What a model is: one small interface, three families behind it, and saving it once.

Every `Classifier` takes images `x (N, H, W) float32` (already normalised) and offers
`forward(x) -> logits (N, 10)`, `probs(x)`, `features(x) -> (N, F)` (the last hidden
layer), `n_params`, and its weights as `state_dict()` / `load_state_dict()` (a dict of
NumPy arrays, whatever the backend). Models return raw logits; the loss applies the
softmax. What training does to a model lives in `learners`; the torch networks live in
`torch_models`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from pathlib import Path

import numpy as np

from .config import MAX_PARAMS, ModelConfig, conv_shapes
from .errors import ConfigError
from .numpy_mlp import MLP, softmax

EVAL_CHUNK = 2048  # images per forward pass at inference: bounds memory for 60k images


class Classifier(ABC):
    """A digit classifier for images of `image_shape`, built from `config`."""

    family: str
    config: ModelConfig
    image_shape: tuple[int, int]
    device: str = "cpu"

    def forward(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W) float32 -> logits (N, 10) float32, inference mode."""
        return self._chunked(x, self._logits)

    def features(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W) float32 -> last hidden layer (N, F) float32, inference mode."""
        return self._chunked(x, self._features)

    def features_and_logits(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """x (N, H, W) -> (features (N, F), logits (N, 10)) float32 from one pass: the logits
        are the output layer applied to the features (a live frame needs both)."""
        f = self.features(x)  # (N, F)
        return f, self._head(f).astype(np.float32, copy=False)

    def probs(self, x: np.ndarray) -> np.ndarray:
        """x (N, H, W) -> class probabilities (N, 10)."""
        return softmax(self.forward(x).astype(np.float64)).astype(np.float32)

    @property
    @abstractmethod
    def n_params(self) -> int: ...

    @abstractmethod
    def state_dict(self) -> dict[str, np.ndarray]:
        """Every weight (and buffer) as a NumPy copy, keyed by layer name."""

    @abstractmethod
    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        """Replace the weights; raises ValueError naming a missing or misshapen entry."""

    @abstractmethod
    def _logits(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _features(self, x: np.ndarray) -> np.ndarray: ...

    @abstractmethod
    def _head(self, features: np.ndarray) -> np.ndarray:
        """The output layer: features (N, F) -> logits (N, 10)."""

    def _chunked(self, x, fn) -> np.ndarray:
        if x.ndim != 3 or tuple(x.shape[1:]) != tuple(self.image_shape):
            raise ValueError(
                f"model expects images (N, {self.image_shape[0]}, {self.image_shape[1]}), "
                f"got {x.shape}"
            )
        if len(x) <= EVAL_CHUNK:  # a drawing, a probe: one call (the canvas latency)
            return np.asarray(fn(x), dtype=np.float32)
        parts = [fn(x[i : i + EVAL_CHUNK]) for i in range(0, len(x), EVAL_CHUNK)]
        return np.concatenate(parts).astype(np.float32, copy=False)


class NumpyClassifier(Classifier):
    """The from-scratch NumPy MLP (`numpy_mlp.MLP`) behind the common interface."""

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

    def _logits(self, x):
        self.net.train(False)
        return self.net.forward(x.reshape(len(x), -1))

    def _features(self, x):
        self.net.train(False)
        return self.net.features(x.reshape(len(x), -1))

    def _head(self, features):
        out = self.net.layers[-1]  # a Dense; its own forward would keep `features` for a backward pass
        return features @ out.W if out.b is None else features @ out.W + out.b

    @property
    def n_params(self) -> int:
        return sum(p.size for _, p, _ in self.net.params())

    def state_dict(self) -> dict[str, np.ndarray]:
        return self.net.state_dict()

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        self.net.load_state_dict(state)


def build_model(cfg: ModelConfig, image_shape, *, seed: int = 0, device: str = "auto") -> Classifier:
    """A fresh, initialised model for images of `image_shape`. Refuses absurd sizes."""
    check_size(cfg, image_shape)
    if cfg.family == "numpy-mlp":
        return NumpyClassifier(cfg, image_shape, seed=seed)
    from .torch_models import TorchClassifier

    return TorchClassifier(cfg, image_shape, seed=seed, device=device)


def count_params(cfg: ModelConfig, image_shape) -> int:
    """Parameter count without building the model (cheap; for the UI and the size check)."""
    cfg.validate()
    total, width = 0, int(np.prod(image_shape))
    if cfg.family == "cnn":
        c_in = 1
        for b, (c, h, w) in zip(cfg.conv, conv_shapes(cfg.conv, image_shape)[1::2]):
            total += c * c_in * b.kernel * b.kernel + (2 * c if b.batchnorm else c)
            c_in, width = c, c * h * w
    sizes = [width, *cfg.hidden, 10]
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


def first_layer_weights(model: Classifier) -> np.ndarray:
    """What the first weight layer looks for: dense (H*W, K), or conv kernels (K, 1, kh, kw)."""
    for w in model.state_dict().values():
        if w.ndim == 4:
            return np.ascontiguousarray(w)
        if w.ndim == 2:  # NumPy keeps (in, out); torch's Linear keeps (out, in)
            return w.copy() if model.family == "numpy-mlp" else w.T.copy()
    raise ValueError("model has no weight layer")


def weights_file(family: str) -> str:
    """The weights file of a run: NumPy arrays for the NumPy MLP, a torch state_dict otherwise."""
    return "weights.npz" if family == "numpy-mlp" else "weights.pt"


def save_weights(state: dict[str, np.ndarray], path: Path) -> None:
    """Write a state dict to `path` (.npz, or .pt as a plain torch tensor dict)."""
    if path.suffix == ".npz":
        with open(path, "wb") as f:
            np.savez(f, **state)
        return
    import torch

    torch.save({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()}, path)


def read_weights(path: Path) -> dict[str, np.ndarray]:
    """Read a file written by `save_weights` without unpickling anything.

    Raises ValueError (one line naming the file) when it is not a plain array/tensor file;
    the message never passes on torch's advice to turn its safety switch off.
    Bounded reading (size caps, run folders) is `readers.read_weights_file`'s job.
    """
    refused = f"{path.name} is not a plain tensor file (it holds code or objects); refused"
    if path.suffix == ".npz":
        try:
            with np.load(path, allow_pickle=False) as z:
                return {k: z[k] for k in z.files}
        except ValueError as e:
            if "allow_pickle" in str(e):
                raise ValueError(refused) from None
            raise ValueError(f"{path.name} is not a readable .npz file ({_first_line(e)})") from None
        except Exception as e:
            raise ValueError(f"{path.name} is not a readable .npz file ({_first_line(e)})") from None
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(refused) from None
    except Exception as e:
        if "weights_only" in str(e) or "Weights only" in str(e):
            raise ValueError(refused) from None
        raise ValueError(f"{path.name} is not a readable torch file ({_first_line(e)})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path.name} is not a dict of named tensors; refused")
    try:
        return {k: v.detach().cpu().numpy() for k, v in state.items()}
    except (TypeError, RuntimeError) as e:  # bfloat16, sparse or quantized tensors
        raise ValueError(f"{path.name} holds tensors that are not plain arrays ({_first_line(e)})") from None


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160]}" if text else type(e).__name__


__all__ = [
    "EVAL_CHUNK",
    "Classifier",
    "NumpyClassifier",
    "build_model",
    "check_size",
    "count_params",
    "first_layer_weights",
    "read_weights",
    "save_weights",
    "weights_file",
]
