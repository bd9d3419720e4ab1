"""Which pixels decided a reading: integrated gradients, and a nudge that changes it.

Integrated gradients (Sundararajan et al. 2017) for class c: the input's difference from a
blank image, times the gradient of c's logit averaged along the straight path from the
blank image to the input. It was chosen over occlusion because it asks the model itself,
pixel by pixel, with no patch size to pick; it is exact bookkeeping (the attributions add
up to logit(input) - logit(blank), `completeness_gap` checks it); and it passes the
sanity checks of Adebayo et al. (2018) (tests/test_saliency.py: the map changes when the
weights are randomised or the labels were shuffled in training, where an edge detector's
does not). It cannot tell *why* a pixel matters, nor what a blank pixel would have done if
inked: a pixel left blank gets zero, whatever the model thinks of ink there.

Gradients come from each family's own backward pass: the NumPy MLP's hand-written one (on
a private copy, so a shared model's stored activations are never touched), torch's
autograd for the torch networks.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np

from digits_core.nn.models import Classifier
from digits_core.nn.numpy_mlp import softmax

STEPS = 32  # points on the path from the blank image: a gap of ~1 % on a small MLP; a ReLU CNN's kinks leave more


def logit_gradients(model: Classifier, x: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """d/dx of sum_k weights[n, k] * logits[n, k]: x (N, H, W) normalised, weights (N, 10)
    -> (N, H, W) float32 (inference mode)."""
    x = np.asarray(x, np.float32)
    w = np.asarray(weights, np.float32)
    if model.family == "numpy-mlp":
        net = copy.deepcopy(model.net)  # backward stores gradients and reads stored activations
        net.train(False)
        net.forward(x.reshape(len(x), -1).astype(net.dtype))
        g = w.astype(net.dtype)
        for layer in reversed(net.layers):
            g = layer.backward(g)
        return np.asarray(g, np.float32).reshape(x.shape)
    import torch

    module = model.module
    if module.training:
        module.eval()
    with torch.enable_grad():
        t = torch.from_numpy(np.ascontiguousarray(x)).to(model.device).requires_grad_(True)
        logits = module(t)
        (grad,) = torch.autograd.grad((logits * torch.from_numpy(w).to(model.device)).sum(), t)
    return grad.float().cpu().numpy()


def integrated_gradients(model: Classifier, x: np.ndarray, baseline: np.ndarray, target: int,
                         steps: int = STEPS) -> np.ndarray:
    """x, baseline (H, W) normalised -> attributions (H, W) float32 to class `target`'s logit:
    positive pushed towards it, negative away. Midpoint rule over `steps` points."""
    alphas = (np.arange(steps, dtype=np.float32) + 0.5) / steps  # (S,)
    path = baseline[None] + alphas[:, None, None] * (x - baseline)[None]  # (S, H, W)
    onehot = np.zeros((steps, 10), np.float32)
    onehot[:, target] = 1.0
    grads = logit_gradients(model, path, onehot)  # (S, H, W)
    return ((x - baseline) * grads.mean(0)).astype(np.float32)


def completeness_gap(model: Classifier, x: np.ndarray, baseline: np.ndarray, target: int,
                     attributions: np.ndarray) -> float:
    """|sum(attributions) - (logit(x) - logit(baseline))| relative to |logit(x) - logit(baseline)|."""
    logits = model.forward(np.stack([x, baseline]).astype(np.float32))[:, target]
    change = float(logits[0] - logits[1])
    return abs(float(attributions.sum()) - change) / max(abs(change), 1e-6)


@dataclass
class Saliency:
    """Integrated gradients of one image for its top class and, when unsure, its second."""

    classes: list[int]  # the classes explained, top first
    maps: np.ndarray  # (len(classes), H, W) float32 attributions, in logit units
    probs: np.ndarray  # (10,) the model's probabilities for the image
    gaps: list[float]  # per map, `completeness_gap`: how far its sum is from the logit's change

    @property
    def scale(self) -> float:
        """The largest |attribution| of every map: one colour scale for all of them."""
        top = float(np.abs(self.maps).max()) if self.maps.size else 0.0
        return top if np.isfinite(top) and top > 0 else 1.0


def explain(model: Classifier, normalizer, image: np.ndarray, *, sure: float = 0.70,
            steps: int = STEPS) -> Saliency | None:
    """image (H, W) raw pixels -> a `Saliency` for its top class, and its second one when the
    top is under `sure`; None when the model's output is not finite (a diverged model)."""
    x, base = normalizer(np.stack([image, np.zeros_like(image)]).astype(np.float32))
    probs = model.probs(x[None])[0]
    if not np.isfinite(probs).all():
        return None
    order = np.argsort(-probs, kind="stable")
    classes = [int(order[0])] + ([int(order[1])] if probs[order[0]] < sure else [])
    maps = np.stack([integrated_gradients(model, x, base, c, steps) for c in classes])
    if not np.isfinite(maps).all():
        return None
    return Saliency(classes, maps, probs, [completeness_gap(model, x, base, c, m) for c, m in zip(classes, maps)])


@dataclass
class Nudge:
    """A small change to an image that makes the model read it differently."""

    image: np.ndarray  # (H, W) float32 raw pixels, the nudged image
    probs: np.ndarray  # (10,) the model's probabilities for it
    digit: int  # its reading
    was: int  # the reading before
    largest_change: float  # the largest change of any pixel, as a share of the pixel range


def nudge(model: Classifier, normalizer, image: np.ndarray, max_value: float, *, eps: float = 0.15,
          steps: int = 10) -> Nudge | None:
    """Projected gradient descent on the input (Madry et al. 2018; FGSM is its one-step
    form): `steps` steps of size eps/4 that lower the log probability of the current
    reading, each pixel kept within `eps` (a share of `max_value`) of the original and
    within the pixel range. Stops at the first step the reading changes. None when the
    model's output is not finite."""
    raw = np.asarray(image, np.float32)
    probs0 = model.probs(normalizer(raw[None]))[0]
    if not np.isfinite(probs0).all():
        return None
    was = int(probs0.argmax())
    bound, step = eps * max_value, eps * max_value / 4
    adv = raw.copy()
    probs = probs0
    for _ in range(steps):
        x = normalizer(adv[None])
        p = softmax(model.forward(x).astype(np.float64))  # (1, 10)
        weights = -p.astype(np.float32)  # d log p_was / d logits = onehot(was) - p
        weights[0, was] += 1.0
        g = logit_gradients(model, x, weights)[0]  # the normaliser is increasing per pixel: same sign
        adv = np.clip(adv - step * np.sign(g), raw - bound, raw + bound)
        adv = np.clip(adv, 0.0, max_value).astype(np.float32)
        probs = model.probs(normalizer(adv[None]))[0]
        if int(probs.argmax()) != was:
            break
    change = float(np.abs(adv - raw).max()) / max_value
    return Nudge(adv, probs, int(probs.argmax()), was, change)


def edge_map(image: np.ndarray) -> np.ndarray:
    """An "explanation" that ignores the model: the image's edge strength (Sobel magnitude).
    The negative control of the sanity tests."""
    from scipy import ndimage

    x = np.asarray(image, np.float32)
    return np.hypot(ndimage.sobel(x, 0), ndimage.sobel(x, 1)).astype(np.float32)


__all__ = ["STEPS", "Nudge", "Saliency", "completeness_gap", "edge_map", "explain", "integrated_gradients",
           "logit_gradients", "nudge"]
