"""The PyTorch families (MLP and CNN) behind the `models.Classifier` interface, and the
torch settings they run under (threads, device). torch is imported lazily, so importing
the engine for a NumPy run or a page that only lists runs stays fast.
"""

from __future__ import annotations

import math
import os
import threading
import time

import numpy as np

from .config import ModelConfig, conv_shapes
from .errors import ConfigError
from .few_forward import FEW, FewForward, Unsupported
from .models import Classifier

SMALL_BATCH = 64  # at or below this many images, inference runs on the calling thread alone

_threads_set = threading.Lock()
_threads_done = False


def default_threads() -> int:
    """Torch threads for a process that has the machine to itself (the CLI, the benchmark,
    a worker told its share): `$DIGITLAB_THREADS`, else every core."""
    env = os.environ.get("DIGITLAB_THREADS")
    if env:
        return max(1, int(env))
    return os.cpu_count() or 1


def training_threads(jobs: int) -> int:
    """Torch threads for one of `jobs` runs training at once in this process:
    `$DIGITLAB_THREADS`, else the cores shared out among them (at least one each).

    Two thread teams on two cores, or a team with a member the scheduler has parked, wait
    at every barrier: on 2 cores with the other one busy, a small CNN step took 378 ms on 2
    threads and 16 ms on 1. Alone, a run trains on every core (training threads run at a
    lower priority, so pages still come first: `jobs.lower_thread_priority`).
    """
    env = os.environ.get("DIGITLAB_THREADS")
    if env:
        return max(1, int(env))
    return max(1, (os.cpu_count() or 1) // max(1, jobs))


BUSY_CORE = 0.3  # a core this busy with other work no longer counts as free


def free_cores(others: float, cores: int | None = None) -> int:
    """Cores a thread team can have while other work keeps `others` cores busy (at least 1).

    A core counts as taken once another process keeps it BUSY_CORE busy: a thread team
    stalls at every barrier while one of its threads waits for a core. Measured with the
    `fast` preset on 2 cores beside a process busy a share of each 50 ms: at 0.2 of a core
    two threads trained 6,100 images/s and one 5,300; at 0.3 about the same (4,400-4,900);
    at 0.4 one thread 4,700-5,300 and two 3,900-5,100.
    """
    cores = cores or os.cpu_count() or 1
    return max(1, cores - max(0, math.ceil(others - BUSY_CORE)))


def setup_torch_threads() -> None:
    """Set torch's thread count once per process (see default_threads)."""
    global _threads_done
    import torch

    with _threads_set:
        if not _threads_done:
            torch.set_num_threads(default_threads())
            _threads_done = True


class ThreadShare:
    """The cores shared among the torch runs training in this process, and left to others.

    With torch's OpenMP backend the thread count belongs to the calling thread (a thread
    takes the count last set in the process when it first runs torch, and keeps it after:
    measured with torch 2.13). A training thread enters the share when its run starts and
    gets `threads`: the count it was given (a continued run's recorded one, or a pinned
    one), else `training_threads(runs)`, fewer while other processes keep cores busy (what
    the machine spent beyond this process over the last `WINDOW_S`, from /proc/stat), since
    a thread team with a member waiting for a core stalls at every barrier. The count is
    picked once and kept to the run's end: a float sum split over another number of threads
    rounds differently, so a count that followed the load would make the curve depend on
    what else the machine did. Pages and other runs keep their own counts.
    """

    WINDOW_S = 2.0  # the machine's load is measured over at least half of this

    _lock = threading.Lock()
    _members = 0
    _last: tuple[float, float, float] | None = None  # (monotonic s, machine busy s, process cpu s)
    _others: float | None = None  # cores busy outside this process, last measured

    def __init__(self, threads: int = 0):
        self.threads = threads  # 0: picked on entering

    def __enter__(self) -> ThreadShare:
        with ThreadShare._lock:
            ThreadShare._members += 1
            if not self.threads:
                self.threads = self._pick()
        import torch

        torch.set_num_threads(self.threads)
        return self

    def __exit__(self, *exc) -> None:
        with ThreadShare._lock:
            ThreadShare._members -= 1

    @classmethod
    def _pick(cls) -> int:
        n = training_threads(cls._members)
        if not os.environ.get("DIGITLAB_THREADS"):
            others = cls.look()
            if others is not None:
                n = min(n, free_cores(others))
        return n

    @classmethod
    def look(cls) -> float | None:
        """Cores busy outside this process since the last look (None: not known here).
        Called by `warm_up` too, so a first run is judged on the time since then."""
        sample = _cpu_sample()
        if sample is None:
            return None
        last = cls._last
        if last is None:
            cls._last = sample
        elif sample[0] - last[0] >= cls.WINDOW_S / 2:  # runs looking often share one window
            wall = sample[0] - last[0]
            cls._others = max(0.0, (sample[1] - last[1]) - (sample[2] - last[2])) / wall
            cls._last = sample
        return cls._others


def _cpu_sample() -> tuple[float, float, float] | None:
    """(now, CPU seconds the machine has been busy, CPU seconds of this process)."""
    try:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    busy = sum(ticks) - ticks[3] - ticks[4]  # all but idle and iowait
    return time.monotonic(), busy / os.sysconf("SC_CLK_TCK"), time.process_time()


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
            if self.old != 1:
                torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.small and self.old != 1:
            import torch

            torch.set_num_threads(self.old)


def warm_up() -> None:
    """Import and run once what a first job would load lazily (torch, the engine's training
    modules, an optimiser step), so the first Start of a server or a worker does not wait
    for it; meant for a background thread or a worker's start."""
    import sklearn.model_selection  # noqa: F401  (data.split_indices)
    import torch

    from . import augment, centre_cache, learners, runs, train  # noqa: F401

    setup_torch_threads()
    with ThreadShare._lock:
        ThreadShare.look()
    layer = torch.nn.Linear(4, 2)
    opt = torch.optim.Adam(layer.parameters())
    layer(torch.zeros(1, 4)).sum().backward()
    opt.step()


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
        self.module = (TorchCNN if cfg.family == "cnn" else TorchMLP)(cfg, self.image_shape)
        _init_torch(self.module, cfg.init, seed)
        self.device = pick_device(device)
        # NHWC pays off for 28x28 convolutions on a CPU; on 8x8 its reorders cost more than they save.
        channels_last = (
            cfg.family == "cnn" and cfg.channels_last and self.device == "cpu" and min(self.image_shape) >= 16
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

        with torch.inference_mode(), _few_threads(len(x)):
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


__all__ = ["BUSY_CORE", "ThreadShare", "TorchClassifier", "default_threads", "free_cores", "pick_device", "setup_torch_threads",
           "training_threads", "warm_up"]
