"""What training does to a model: one learner per backend, holding the optimiser, the
step, augmentation and where the data lives. `train.train()` receives a learner the way
pytorch/examples' `train()` receives `model, optimizer`.

A learner never owns the model's definition (`models`) and never prints. Its optimiser
state can be saved with a run (`state_dict`) so that training can continue later.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np

from digits_core.config import TrainConfig
from digits_core.nn.classifier import Classifier
from digits_core.nn.models import NumpyClassifier
from digits_core.nn.numpy_mlp import Optimizer


class Learner(Protocol):
    """How a model of one backend learns from batches."""

    model: Classifier

    def prepare(self, images: np.ndarray, labels: np.ndarray) -> tuple[Any, Any]:
        """The training set (N, H, W) float32 and (N,) labels in the backend's own form."""

    def take(self, x: Any, idx: np.ndarray) -> Any:
        """Rows `idx` of a prepared array."""

    def augment(self, xb: Any, yb: Any, idx: np.ndarray, strength: float) -> Any:
        """A randomly distorted copy of a prepared batch (rows `idx` of the training set),
        whose labels some distortions need (see `augment.augment_batch`)."""

    def step(self, xb: Any, yb: Any, lr: float, smoothing: float = 0.0) -> tuple[float, int]:
        """One optimiser step on a batch, against targets smoothed by `smoothing` (cross-
        entropy; the NumPy learner is never given one); returns (loss, number correct)."""

    def state_dict(self) -> dict[str, np.ndarray]:
        """The optimiser's state as named arrays (empty for plain SGD)."""

    def load_state_dict(self, state: dict[str, np.ndarray]) -> None: ...


class NumpyLearner:
    """SGD / momentum / Adam on the from-scratch network, with its hand-written gradients."""

    def __init__(self, model: NumpyClassifier, tc: TrainConfig):
        self.model, self.tc = model, tc
        self.opt = Optimizer(tc.optimizer, tc.momentum, betas=tuple(tc.adam_betas))
        self._generator = None

    def prepare(self, images, labels):
        x = np.ascontiguousarray(images.reshape(len(images), -1), dtype=self.model.net.dtype)
        return x, np.asarray(labels, dtype=np.int64)

    def take(self, x, idx):
        return x[idx]

    def augment(self, xb, yb, idx, strength):
        import torch

        from digits_core.images.augment import augment_batch

        if self._generator is None:
            self._generator = torch.Generator().manual_seed(self.tc.seed)
        t = torch.from_numpy(xb.reshape(len(xb), 1, *self.model.image_shape))
        labels = torch.from_numpy(np.asarray(yb))
        return augment_batch(t, self._generator, strength=strength, labels=labels,
                             pen=self.tc.augment_pen).reshape(len(xb), -1).numpy()

    def step(self, xb, yb, lr, smoothing=0.0):
        net, tc = self.model.net, self.tc
        net.train(True)
        loss, logits = net.loss_and_grads(xb, yb, tc.loss, tc.l2, tc.loss_reduction)
        self.opt.step(net.params(), lr)
        return loss, int((logits.argmax(1) == yb).sum())

    def state_dict(self):
        return self.opt.state_dict()

    def load_state_dict(self, state):
        self.opt.load_state_dict(state)


class TorchLearner:
    """A torch optimiser over the module's parameters; the whole training set on the device.

    With `tc.weight_average` the optimiser moves a copy of the module (`self.module`) and
    the model keeps an exponential moving average of that copy's weights and BatchNorm
    statistics (Polyak averaging): everything that reads the model while it trains (test
    accuracy, live probes and frames, checkpoints) and the saved run see the average, which
    is steadier, and better, than the weights of the last step while the learning rate is high.
    """

    def __init__(self, model: Classifier, tc: TrainConfig):
        import copy

        import torch

        self.model, self.tc = model, tc
        self.device = model.device
        self.module = copy.deepcopy(model.module) if tc.weight_average else model.module
        self._averaged = _float_tensors(model.module) if tc.weight_average else []
        self._averaging = _float_tensors(self.module) if tc.weight_average else []
        self._updates = 0
        params = list(self.module.parameters())
        if tc.optimizer == "sgd":
            self.opt = torch.optim.SGD(params, lr=tc.lr)
        elif tc.optimizer == "momentum":
            self.opt = torch.optim.SGD(params, lr=tc.lr, momentum=tc.momentum)
        else:
            # fused: one kernel over every tensor, a third of the for-each-tensor step's time
            # on a CPU (620 -> 185 us for the default CNN, 2 % of its training step)
            self.opt = torch.optim.Adam(params, lr=tc.lr, betas=tuple(tc.adam_betas),
                                        fused=self.device in ("cpu", "cuda") or None)
        # L2 on weights of dense/conv layers only, the same term as the NumPy network's.
        self._decay = [
            m.weight for m in self.module.modules() if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d))
        ]
        self._generator = torch.Generator().manual_seed(tc.seed)
        self._centres = None  # every training image's centre line, for the pen redraws
        torch.manual_seed(tc.seed)  # dropout draws from the global generator

    def prepare(self, images, labels):
        import torch

        from digits_core.images.augment import REPEN_SHARE, draws_as_canvas
        from digits_core.training.centre_cache import centre_lines_of

        x = torch.from_numpy(np.ascontiguousarray(images, dtype=np.float32)).to(self.device)
        y = torch.from_numpy(np.array(labels, dtype=np.int64)).to(self.device)  # a writable copy
        redraws = self.tc.augment and REPEN_SHARE > 0 and draws_as_canvas(*x.shape[1:], self.tc.augment_pen)
        self._centres = centre_lines_of(x) if redraws else None  # what the pen redraws follow
        return x, y

    def take(self, x, idx):
        import torch

        return x[torch.from_numpy(np.asarray(idx)).to(x.device)]

    def augment(self, xb, yb, idx, strength):
        from digits_core.images.augment import augment_batch

        centres = None if self._centres is None else self.take(self._centres, idx)
        return augment_batch(xb.unsqueeze(1), self._generator, strength=strength, labels=yb,
                             centres=centres, pen=self.tc.augment_pen).squeeze(1)

    def loss(self, logits, yb, smoothing: float = 0.0):
        import torch.nn.functional as F

        tc = self.tc
        if tc.loss == "cross-entropy":
            value = F.cross_entropy(logits, yb, reduction=tc.loss_reduction, label_smoothing=smoothing)
        else:
            onehot = F.one_hot(yb, 10).to(logits.dtype)
            value = F.mse_loss(logits.softmax(1), onehot, reduction=tc.loss_reduction)
        if tc.l2:
            value = value + 0.5 * tc.l2 * sum((w * w).sum() for w in self._decay)
        return value

    def step(self, xb, yb, lr, smoothing=0.0):
        import torch

        self.module.train()
        for group in self.opt.param_groups:
            group["lr"] = lr
        logits = self.module(xb)
        value = self.loss(logits, yb, smoothing)
        self.opt.zero_grad(set_to_none=True)
        value.backward()
        self.opt.step()
        with torch.no_grad():
            correct = int((logits.argmax(1) == yb).sum())
            if self._averaged:
                self._average()
        return float(value.detach()), correct

    def _average(self) -> None:
        """Move the model's weights towards the trained copy's. The decay ramps up to
        `tc.weight_average` over the first steps (as TensorFlow's moving averages do), so
        the average soon leaves the initial weights behind."""
        self._updates += 1
        decay = min(self.tc.weight_average, (1 + self._updates) / (10 + self._updates))
        for avg, now in zip(self._averaged, self._averaging):
            avg.lerp_(now, 1 - decay)

    def state_dict(self):
        out = {}
        for i, s in self.opt.state_dict()["state"].items():
            for k, v in s.items():
                out[f"{i}.{k}"] = v.detach().cpu().numpy() if hasattr(v, "detach") else np.asarray(v)
        return out

    def load_state_dict(self, state):
        import torch

        full = self.opt.state_dict()
        per: dict[int, dict] = {}
        for key, v in state.items():
            i, k = key.split(".", 1)
            per.setdefault(int(i), {})[k] = torch.as_tensor(np.asarray(v))
        full["state"] = per
        self.opt.load_state_dict(full)


def _float_tensors(module) -> list:
    """A module's parameters and floating-point buffers (BatchNorm's statistics), in order.
    Detached, not `.data`: a detached tensor shares its parameter's version counter, so a
    change made through it shows (`TorchClassifier` rebuilds its NumPy pass on one)."""
    return [p.detach() for p in module.parameters()] + [b for b in module.buffers() if b.is_floating_point()]


def make_learner(model: Classifier, tc: TrainConfig) -> Learner:
    """The learner for `model`'s backend, set up as `tc` says (`train()` or the job that
    calls it has validated `tc`)."""
    if isinstance(model, NumpyClassifier):
        return NumpyLearner(model, tc)
    return TorchLearner(model, tc)


__all__ = ["Learner", "NumpyLearner", "TorchLearner", "make_learner"]
