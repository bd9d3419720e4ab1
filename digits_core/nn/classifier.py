"""What a model is: one small interface every family shares.

Every `Classifier` takes images `x (N, H, W) float32` (already normalised) and offers
`forward(x) -> logits (N, 10)`, `probs(x)`, `features(x) -> (N, F)` (the last hidden
layer), `n_params`, and its weights as `state_dict()` / `load_state_dict()` (a dict of
NumPy arrays, whatever the backend). Models return raw logits; the loss applies the
softmax. The families are in `models` (NumPy) and `torch_models`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import numpy as np

from digits_core.config import ModelConfig
from digits_core.nn.numpy_mlp import softmax

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


__all__ = ["EVAL_CHUNK", "Classifier"]
