"""The PyTorch families (MLP and CNN) behind the `Classifier` interface, and the device they
run on (the CPU threads they run on are `threads`'). torch is imported lazily, so
importing the engine for a NumPy run or a page that only lists runs stays fast.
"""

from __future__ import annotations

import math

import numpy as np

from digits_core.config import ModelConfig
from digits_core.errors import ConfigError
from digits_core.nn.classifier import Classifier
from digits_core.nn.few_forward import FEW, FewForward, Unsupported
from digits_core.nn.shapes import conv_shapes
from digits_core.threads import few_threads, setup_torch_threads


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

    def dense_stack(n_in: int, cfg: ModelConfig) -> tuple[nn.Sequential, int]:
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
        channels_last = False  # set by the wrapper: NHWC is faster for CPU convolutions

        def __init__(self, cfg: ModelConfig, image_shape):
            super().__init__()
            blocks: list[nn.Module] = []
            c = 1
            for b in cfg.conv:
                blocks += [nn.Conv2d(c, b.channels, b.kernel, padding=b.padding, bias=not b.batchnorm)]
                pool = [nn.MaxPool2d(b.pool)] if b.pool > 1 else []
                if cfg.pool_first:  # max-pool, then BN and the activation on a quarter of the pixels
                    blocks += pool
                if b.batchnorm:
                    blocks += [nn.BatchNorm2d(b.channels)]
                blocks += [act[cfg.activation]()]
                if not cfg.pool_first:
                    blocks += pool
                if b.dropout:
                    blocks += [nn.Dropout(b.dropout)]
                c = b.channels
            self.conv = nn.Sequential(*blocks)
            c, h, w = conv_shapes(cfg.conv, image_shape)[-1]
            self.body, n = dense_stack(c * h * w, cfg)
            self.head = nn.Linear(n, 10, bias=cfg.bias)

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
    """A torch `nn.Module` (`self.module`) behind the common interface."""

    def __init__(self, cfg: ModelConfig, image_shape, seed: int = 0, device: str = "auto"):
        import torch

        setup_torch_threads()
        self.config, self.image_shape = cfg, tuple(image_shape)
        self.family = cfg.family
        TorchMLP, TorchCNN = _torch_modules()
        self.module = (TorchCNN if cfg.kind.conv else TorchMLP)(cfg, self.image_shape)
        _init_torch(self.module, cfg.init, seed)
        self.device = pick_device(device)
        # NHWC pays off for 28x28 convolutions on a CPU; on 8x8 its reorders cost more than they save.
        channels_last = (
            cfg.kind.conv and cfg.channels_last and self.device == "cpu" and min(self.image_shape) >= 16
        )
        self.module.to(self.device)
        if channels_last:
            self.module.to(memory_format=torch.channels_last)
            self.module.channels_last = True
        self.module.eval()
        self._tensors = [*self.module.parameters(), *self.module.buffers()]
        self._few = None  # (the weights' versions, their FewForward)

    def _run(self, x, fn):
        import torch

        with torch.inference_mode(), few_threads(len(x)):
            t = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)).to(self.device)
            if self.module.training:  # eval() walks every layer: a tenth of a one-image forward
                self.module.eval()
            return fn(t).float().cpu().numpy()

    def _logits(self, x):
        if len(x) <= FEW and self.device == "cpu":
            few = self._few_forward()
            if few is not None:
                return few(x)
        return self._run(x, self.module)

    def _few_forward(self) -> FewForward | None:
        """The NumPy replay of the network for a few images (`few_forward`), rebuilt when any
        weight or statistic has changed since (an optimiser step or a load bumps a tensor's
        version); None for a network it cannot replay."""
        version = tuple(t._version for t in self._tensors)
        if self._few is None or self._few[0] != version:
            try:
                self._few = (version, FewForward(self.module, self.image_shape))
            except Unsupported:
                self._few = (version, None)
        return self._few[1]

    def _features(self, x):
        return self._run(x, self.module.features)

    def _head(self, features):
        return self._run(features, self.module.head)

    @property
    def n_params(self) -> int:
        return sum(p.numel() for p in self.module.parameters())

    def state_dict(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy().copy() for k, v in self.module.state_dict().items()}

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None:
        import torch

        tensors = {k: torch.as_tensor(np.asarray(v)) for k, v in state.items()}
        try:
            self.module.load_state_dict(tensors)
        except RuntimeError as e:  # torch lists every mismatch over many lines
            raise ValueError(str(e).strip().splitlines()[-1].strip()[:200]) from None
        self.module.eval()


__all__ = ["TorchClassifier", "pick_device"]
