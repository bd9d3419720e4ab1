"""A trained torch network's forward pass in NumPy, for a handful of images.

A drawing is one image. At batch 1 a small CNN's forward in eager PyTorch is mostly the
framework's per-layer dispatch, not arithmetic: about twice as slow as the same
arithmetic as a few NumPy gathers and matrix products, and slower still after the idle
moment between two strokes. `FewForward` reads the network's layers once (eval mode:
BatchNorm as its running statistics, dropout off) and replays them in NumPy; the
`TorchClassifier` uses it for a few images on a CPU and rebuilds it when the weights
change. Layouts are NHWC throughout; a convolution is one gather of every window
(precomputed flat indices) and one matrix product.
"""

from __future__ import annotations

import numpy as np

FEW = 4  # at most this many images go through the NumPy pass (a drawing and its views)


class Unsupported(Exception):
    """The network has a layer (or a layer setting) this pass does not replay."""


def _f32(t) -> np.ndarray:
    return t.detach().cpu().numpy().astype(np.float32)


class FewForward:
    """`module` (a `TorchCNN` or `TorchMLP`) as NumPy steps; `(images (N, H, W) float32)
    -> logits (N, 10) float32`, equal to the module's eval-mode output to float rounding.
    Raises Unsupported for a layer it cannot replay."""

    def __init__(self, module, image_shape: tuple[int, int]):
        from torch import nn

        self.steps: list = []
        shape = (*image_shape, 1)  # (H, W, C) of one image
        conv = getattr(module, "conv", None)
        layers = [*(conv if conv is not None else []), *module.body, module.head]
        flat = conv is None  # the MLP reads the image flat, in the same (H, W) order as torch
        for layer in layers:
            if isinstance(layer, nn.Conv2d):
                shape = self._conv(layer, shape)
            elif isinstance(layer, nn.MaxPool2d):
                shape = self._pool(layer, shape)
            elif isinstance(layer, nn.BatchNorm2d):
                if layer.running_mean is None or layer.running_var is None:
                    raise Unsupported("a BatchNorm without running statistics")
                c = len(layer.running_mean)
                gain = np.ones(c, np.float32) if layer.weight is None else _f32(layer.weight)
                bias = np.zeros(c, np.float32) if layer.bias is None else _f32(layer.bias)
                scale = gain / np.sqrt(_f32(layer.running_var) + np.float32(layer.eps))
                shift = bias - _f32(layer.running_mean) * scale
                self.steps.append(lambda a, s=scale, b=shift: a * s + b)  # channels last
            elif isinstance(layer, nn.ReLU):
                self.steps.append(lambda a: np.maximum(a, np.float32(0)))
            elif isinstance(layer, nn.Tanh):
                self.steps.append(np.tanh)
            elif isinstance(layer, nn.Sigmoid):
                self.steps.append(_sigmoid)
            elif isinstance(layer, nn.Dropout):
                continue  # eval mode: the identity
            elif isinstance(layer, nn.Linear):
                w = _f32(layer.weight)  # (out, in), `in` in torch's flattening order
                if not flat:  # the conv features flattened as (C, H, W) in torch, (H, W, C) here
                    h, wd, c = shape
                    w = w.reshape(len(w), c, h, wd).transpose(0, 2, 3, 1).reshape(len(w), -1)
                    flat = True
                    self.steps.append(lambda a: a.reshape(len(a), -1))
                wt = np.ascontiguousarray(w.T)  # (in, out)
                b = None if layer.bias is None else _f32(layer.bias)
                self.steps.append(lambda a, wt=wt, b=b: a @ wt if b is None else a @ wt + b)
                shape = (len(w),)
            else:
                raise Unsupported(type(layer).__name__)
        self.flat_input = conv is None

    def _conv(self, layer, shape):
        if layer.stride != (1, 1) or layer.dilation != (1, 1) or layer.groups != 1 or layer.padding_mode != "zeros":
            raise Unsupported("a strided, dilated, grouped or non-zero-padded convolution")
        if isinstance(layer.padding, str):
            raise Unsupported("padding given by name")
        (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
        h, w, c = shape
        hp, wp = h + 2 * ph, w + 2 * pw
        ho, wo = hp - kh + 1, wp - kw + 1
        # flat index into the padded (hp, wp, c) image of every window's pixels, one row per
        # output pixel, the row's order (ki, kj, c) matching the weights' below
        rows = (np.arange(ho)[:, None] * wp + np.arange(wo)[None, :]).reshape(-1, 1)  # (ho*wo, 1)
        window = (np.arange(kh)[:, None] * wp + np.arange(kw)[None, :]).reshape(1, -1)  # (1, kh*kw)
        idx = ((rows + window)[:, :, None] * c + np.arange(c)).reshape(ho * wo, -1)  # (ho*wo, kh*kw*c)
        wmat = np.ascontiguousarray(_f32(layer.weight).transpose(2, 3, 1, 0).reshape(-1, layer.out_channels))
        bias = None if layer.bias is None else _f32(layer.bias)
        cout = layer.out_channels

        def conv(a):  # (N, h, w, c) -> (N, ho, wo, cout)
            n = len(a)
            if ph or pw:
                padded = np.zeros((n, hp, wp, c), np.float32)
                padded[:, ph : ph + h, pw : pw + w] = a
                a = padded
            out = np.take(a.reshape(n, -1), idx, axis=1).reshape(n * ho * wo, -1) @ wmat  # (N*ho*wo, cout)
            if bias is not None:
                out += bias
            return out.reshape(n, ho, wo, cout)

        self.steps.append(conv)
        return ho, wo, cout

    def _pool(self, layer, shape):
        k = layer.kernel_size
        if not isinstance(k, int) or layer.stride not in (k, (k, k)) or layer.padding not in (0, (0, 0)) \
                or layer.dilation not in (1, (1, 1)) or layer.ceil_mode:
            raise Unsupported("a max-pool other than k x k with stride k")
        h, w, c = shape
        ho, wo = h // k, w // k

        def pool(a):  # (N, h, w, c) -> (N, ho, wo, c): the max of each k x k block
            out = a[:, : ho * k : k, : wo * k : k].copy()
            for di in range(k):
                for dj in range(k):
                    if di or dj:
                        np.maximum(out, a[:, di : ho * k : k, dj : wo * k : k], out=out)
            return out

        self.steps.append(pool)
        return ho, wo, c

    def __call__(self, x: np.ndarray) -> np.ndarray:
        a = np.asarray(x, np.float32)
        a = a.reshape(len(a), -1) if self.flat_input else a[..., None]
        for step in self.steps:
            a = step(a)
        return a


def _sigmoid(a):
    with np.errstate(over="ignore"):
        return (1.0 / (1.0 + np.exp(-a))).astype(np.float32)


__all__ = ["FEW", "FewForward", "Unsupported"]
