"""Inside a network, for one image: every layer's output, what a unit's weights look for,
and the test images that drive a unit hardest.

`layer_values(model, x)` walks the model's own layers, with its own code (the NumPy MLP's
`Dense`/activation objects, the torch modules one by one), and keeps what each one hands
to the next: the input, a CNN's feature maps per channel (convolution, pooling, batch
norm, activation, in the network's order), an MLP's hidden units, the logits and the
probabilities. The last two equal `model.forward` / `model.probs` of the same image (a
test holds them to it), so what a page shows is what the model computed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from digits_core.images.pictures import first_layer_images, mosaic
from digits_core.nn.models import Classifier
from digits_core.nn.numpy_mlp import Dense, Dropout, softmax

CHUNK = 100  # images per pass when a whole sample of test images is walked


@dataclass
class Layer:
    """One stage of the network, for a batch of images."""

    name: str  # "conv 1", "relu 1", "pool 1", "dense 2", "relu (dense 2)", "logits", ... (1-based)
    kind: str  # input | conv | pool | norm | act | dense | logits | probs
    values: np.ndarray  # (N, C, h, w) maps or (N, K) units, float32
    source: str | None  # the weight layer whose channels/units these are ("conv 1", "dense 2")

    @property
    def maps(self) -> bool:
        return self.values.ndim == 4


def layer_values(model: Classifier, x: np.ndarray) -> list[Layer]:
    """x (N, H, W) float32, normalised as the model's training images -> every stage's output,
    input first, then the network's layers in order, then "logits" (N, 10) and
    "probabilities" (N, 10). Inference mode (dropout off, batch norm from running statistics)."""
    x = np.asarray(x, np.float32)
    if x.ndim != 3 or tuple(x.shape[1:]) != tuple(model.image_shape):
        raise ValueError(f"expected images (N, {model.image_shape[0]}, {model.image_shape[1]}), got {x.shape}")
    walk = _numpy_walk if model.family == "numpy-mlp" else _torch_walk
    stages = [Layer("input", "input", x[:, None].copy(), None)] + walk(model, x)
    logits = stages[-1].values.astype(np.float64)
    stages.append(Layer("probabilities", "probs", softmax(logits).astype(np.float32), None))
    return stages


def _numpy_walk(model, x: np.ndarray) -> list[Layer]:
    net = model.net
    net.train(False)
    a = x.reshape(len(x), -1).astype(net.dtype)
    out, k = [], 0
    dense = [layer for layer in net.layers if isinstance(layer, Dense)]
    for layer in net.layers:
        if isinstance(layer, Dropout):
            continue  # the identity at inference
        a = layer.forward(a)  # an activation works in place on the Dense output: keep copies
        if isinstance(layer, Dense):
            k += 1
            last = layer is dense[-1]
            name = "logits" if last else f"dense {k}"
            out.append(Layer(name, "logits" if last else "dense", a.astype(np.float32), f"dense {k}"))
        else:
            out.append(Layer(f"{type(layer).__name__.lower()} (dense {k})", "act", a.astype(np.float32), f"dense {k}"))
    return out


def _torch_walk(model, x: np.ndarray) -> list[Layer]:
    import torch
    from torch import nn

    module = model.module
    if module.training:
        module.eval()
    conv = getattr(module, "conv", None)
    out: list[Layer] = []
    n_conv = n_dense = 0
    source = None
    with torch.inference_mode():
        t = torch.from_numpy(np.ascontiguousarray(x)).to(model.device)
        t = t.unsqueeze(1) if conv is not None else t.flatten(1)
        layers = [*(conv if conv is not None else []), *module.body, module.head]
        for layer in layers:
            if isinstance(layer, nn.Dropout):
                continue
            if isinstance(layer, nn.Linear) and t.dim() == 4:
                t = t.flatten(1)  # the conv maps flattened (C, H, W), as the network's forward does
            t = layer(t)
            if isinstance(layer, nn.Conv2d):
                n_conv += 1
                source = name = f"conv {n_conv}"
                kind = "conv"
            elif isinstance(layer, nn.Linear):
                n_dense += 1
                source = f"dense {n_dense}"
                name, kind = ("logits", "logits") if layer is module.head else (source, "dense")
            elif isinstance(layer, nn.MaxPool2d):
                name, kind = f"pool {n_conv}", "pool"
            elif isinstance(layer, nn.BatchNorm2d):
                name, kind = f"batch norm {n_conv}", "norm"
            else:
                act = type(layer).__name__.lower()
                name, kind = (f"{act} {n_conv}" if t.dim() == 4 else f"{act} (dense {n_dense})"), "act"
            out.append(Layer(name, kind, t.float().cpu().numpy().copy(), source))
    return out


def unit_scores(model: Classifier, x: np.ndarray) -> dict[str, np.ndarray]:
    """x (N, H, W) normalised -> {stage name: (N, C) how strongly each image drives each
    channel (its map's largest value) or unit}, for every stage but the input; walked
    CHUNK images at a time."""
    parts: dict[str, list[np.ndarray]] = {}
    for i in range(0, len(x), CHUNK):
        for layer in layer_values(model, x[i : i + CHUNK])[1:]:
            v = layer.values
            parts.setdefault(layer.name, []).append(v.reshape(*v.shape[:2], -1).max(2) if layer.maps else v)
    return {name: np.concatenate(p) for name, p in parts.items()}


def strongest(scores: np.ndarray, unit: int, k: int = 8) -> np.ndarray:
    """scores (N, C) from `unit_scores` -> the k images (indices) that drive `unit` hardest."""
    column = scores[:, unit]
    return np.argsort(-column, kind="stable")[:k]


def weight_layers(model: Classifier) -> dict[str, np.ndarray]:
    """{"conv 1": (Cout, Cin, k, k), "dense 1": (out, in), ...}: each weight layer's weights
    per unit, in the network's order (the output layer is the last "dense")."""
    out: dict[str, np.ndarray] = {}
    if model.family == "numpy-mlp":
        for k, d in enumerate(model.net.dense, 1):
            out[f"dense {k}"] = np.asarray(d.W, np.float32).T.copy()
        return out
    from torch import nn

    n_conv = n_dense = 0
    for m in model.module.modules():
        if isinstance(m, nn.Conv2d):
            n_conv += 1
            out[f"conv {n_conv}"] = m.weight.detach().cpu().numpy().astype(np.float32)
        elif isinstance(m, nn.Linear):
            n_dense += 1
            out[f"dense {n_dense}"] = m.weight.detach().cpu().numpy().astype(np.float32)
    return out


def unit_weights(model: Classifier, source: str, unit: int, before: tuple[int, ...]) -> np.ndarray:
    """What unit `unit` of weight layer `source` looks for, as one picture (R, C) in [-1, 1]
    (each scaled to its largest |w|, 0 stays 0; NaN between tiles).

    `before` is the shape of one image's input to that layer: (1, H, W) for the first layer
    (the picture is the filter or the unit's weights over the image), (C, h, w) for maps
    (one tile per input channel), (K,) for units (a near-square grid of K weights)."""
    w = weight_layers(model)[source][unit]
    if w.ndim == 3:  # a conv kernel (Cin, k, k)
        tiles = w
    elif len(before) == 3:  # a dense unit over maps (C, h, w) or an image (1, H, W)
        tiles = w.reshape(before)
    else:
        side = int(np.ceil(np.sqrt(w.size)))
        tiles = np.full(side * side, np.nan, np.float32)
        tiles[: w.size] = w
        tiles = tiles.reshape(1, side, side)
    top = float(np.nanmax(np.abs(tiles))) if np.isfinite(tiles).any() else 0.0
    tiles = tiles / top if top > 0 else np.nan_to_num(tiles)
    return tiles[0] if len(tiles) == 1 else mosaic(tiles.astype(np.float32), cols=int(np.ceil(np.sqrt(len(tiles)))))


def first_filters(model: Classifier, count: int = 32) -> np.ndarray:
    """The first weight layer's filters (CNN) or units (MLP) as images (K, h, w) in [-1, 1]."""
    name, w = next(iter(weight_layers(model).items()))
    weights = w if name.startswith("conv") else w.T  # first_layer_images reads dense (in, K)
    return first_layer_images(weights, model.image_shape)[:count]


__all__ = ["CHUNK", "Layer", "first_filters", "layer_values", "strongest", "unit_scores", "unit_weights",
           "weight_layers"]
