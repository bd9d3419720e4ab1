"""The three families behind the `Classifier` interface, built and saved one way.

`build_model(cfg, image_shape)` gives a fresh NumPy MLP (`NumpyClassifier`, here) or a
torch network (`torch_models.TorchClassifier`), refusing absurd sizes first
(`shapes.check_size`). A model's weights are saved as `save_weights` writes them (NumPy
arrays in .npz for the NumPy MLP, a torch tensor dict in .pt otherwise) and read back by
`read_weights` without unpickling anything. What training does to a model lives in
`training.learners`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_core.config import FAMILY, ModelConfig
from digits_core.errors import short_reason
from digits_core.nn.classifier import Classifier
from digits_core.nn.numpy_mlp import MLP
from digits_core.nn.shapes import check_size
from digits_core.nn.torch_models import TorchClassifier


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
    if not cfg.kind.torch:
        return NumpyClassifier(cfg, image_shape, seed=seed)
    return TorchClassifier(cfg, image_shape, seed=seed, device=device)


def first_layer_weights(model: Classifier) -> np.ndarray:
    """What the first weight layer looks for: dense (H*W, K), or conv kernels (K, 1, kh, kw)."""
    for w in model.state_dict().values():
        if w.ndim == 4:
            return np.ascontiguousarray(w)
        if w.ndim == 2:  # NumPy keeps (in, out); torch's Linear keeps (out, in)
            return w.T.copy() if FAMILY[model.family].torch else w.copy()
    raise ValueError("model has no weight layer")


def weights_file(family: str) -> str:
    """The weights file of a run: NumPy arrays for the NumPy MLP, a torch state_dict otherwise."""
    return FAMILY[family].weights_file


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
            raise ValueError(f"{path.name} is not a readable .npz file ({short_reason(e)})") from None
        except Exception as e:
            raise ValueError(f"{path.name} is not a readable .npz file ({short_reason(e)})") from None
    import pickle

    import torch

    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise ValueError(refused) from None
    except Exception as e:
        if "weights_only" in str(e) or "Weights only" in str(e):
            raise ValueError(refused) from None
        raise ValueError(f"{path.name} is not a readable torch file ({short_reason(e)})") from None
    if not isinstance(state, dict) or not all(
        isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
    ):
        raise ValueError(f"{path.name} is not a dict of named tensors; refused")
    try:
        return {k: v.detach().cpu().numpy() for k, v in state.items()}
    except (TypeError, RuntimeError) as e:  # bfloat16, sparse or quantized tensors
        raise ValueError(f"{path.name} holds tensors that are not plain arrays ({short_reason(e)})") from None


__all__ = [
    "NumpyClassifier",
    "build_model",
    "first_layer_weights",
    "read_weights",
    "save_weights",
    "weights_file",
]
