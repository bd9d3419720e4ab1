"""Model-shape arithmetic without building a model: what each conv block outputs, how many
parameters a configuration has (and the cap on it), and the activations a training step
keeps (the runner's memory preflight). The one place that knows a layer's size.
"""

from __future__ import annotations

import numpy as np

from digits_core.config import MAX_PARAMS, ConvBlock, ModelConfig
from digits_core.errors import ConfigError


def conv_shapes(blocks: list[ConvBlock], image_shape: tuple[int, int]) -> list[tuple[int, int, int]]:
    """(channels, height, width) after each conv block's convolution and after its pooling:
    two entries per block, in order. The one place that knows a block's output size.

    Raises ConfigError when the blocks shrink the image to nothing.
    """
    h, w = image_shape
    shapes = []
    for b in blocks:
        h, w = h + 2 * b.padding - b.kernel + 1, w + 2 * b.padding - b.kernel + 1
        shapes.append((b.channels, h, w))
        h, w = h // b.pool, w // b.pool
        shapes.append((b.channels, h, w))
        if h < 1 or w < 1:
            raise ConfigError(
                f"the conv blocks shrink a {image_shape[0]}x{image_shape[1]} image to nothing; "
                "use padding or less pooling"
            )
    return shapes


def count_params(cfg: ModelConfig, image_shape) -> int:
    """Parameter count without building the model (cheap; for the UI and the size check)."""
    cfg.validate()
    total, width = 0, int(np.prod(image_shape))
    if cfg.kind.conv:
        c_in = 1
        for b, (c, h, w) in zip(cfg.conv, conv_shapes(cfg.conv, image_shape)[1::2]):
            total += c * c_in * b.kernel * b.kernel + (2 * c if b.batchnorm else c)
            c_in, width = c, c * h * w
    sizes = [width, *cfg.hidden, 10]
    for a, b in zip(sizes[:-1], sizes[1:]):
        total += a * b + (b if cfg.bias else 0)
    return total


def check_size(cfg: ModelConfig, image_shape, *, need_mb: float | None = None) -> int:
    """The parameter count; ConfigError over MAX_PARAMS (saying the memory the run would
    need, when the caller estimated it). The one place the cap is enforced."""
    n = count_params(cfg, image_shape)
    if n > MAX_PARAMS:
        need = f" and need about {need_mb:,.0f} MB to train" if need_mb is not None else ""
        raise ConfigError(
            f"this model would have {n:,} parameters{need}, over the cap of {MAX_PARAMS:,} "
            "parameters; use fewer or narrower layers"
        )
    return n


def activation_sizes(cfg: ModelConfig, image_shape: tuple[int, int]) -> list[int]:
    """Floats per image of every tensor the forward pass keeps for backward, in order."""
    h, w = image_shape
    sizes = [h * w]
    if cfg.kind.conv:
        shapes = conv_shapes(cfg.conv, image_shape)
        for b, (c, h, w), (_, ph, pw) in zip(cfg.conv, shapes[0::2], shapes[1::2]):
            sizes += [c * h * w] * (3 if b.batchnorm else 2)  # conv, (BatchNorm), activation
            if b.pool > 1:
                sizes.append(c * ph * pw)
            if b.dropout:
                sizes.append(c * ph * pw)
    for width in cfg.hidden:
        sizes += [width] * (3 if cfg.dropout else 2)  # linear, activation, (dropout)
    return sizes + [10]


__all__ = ["activation_sizes", "check_size", "conv_shapes", "count_params"]
