"""How well does an MNIST CNN read people's canvas drawings?

Trains (or loads from .cache/) the project's default CNN shape on the 60k MNIST training
images, with and without `augment_batch`, and scores each on

- the MNIST test set, and
- synthetic canvas drawings of MNIST *test* digits (writers the model never saw; see
  tests/drawn_digits.py), read through `canvas_to_image` and preprocessing variants.

Also scores the 8x8 pipeline: a classifier fitted on scikit-learn's digits reading the
same drawings through `canvas_to_image(..., "digits")`, with and without slant removal.

    .venv/bin/python scripts/measure_drawings.py --mnist /work/shared/data/mnist
    .venv/bin/python scripts/measure_drawings.py --mnist DIR --dry-run   # seconds, smoke only
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from drawn_digits import make_drawn_set  # noqa: E402

from digits_core import drawing  # noqa: E402
from digits_core.augment import augment_batch  # noqa: E402
from digits_core.mnist import load_mnist  # noqa: E402

CACHE = ROOT / ".cache" / "measure_drawings"


def build_net() -> nn.Module:
    """The default CNN preset's shape: conv 32 5x5 + conv 64 3x3 (BatchNorm), fc 128."""
    return nn.Sequential(
        nn.Conv2d(1, 32, 5, padding=2), nn.BatchNorm2d(32), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(32, 64, 3, padding=1), nn.BatchNorm2d(64), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(64 * 7 * 7, 128), nn.ReLU(), nn.Linear(128, 10),
    )


def train(x, y, epochs: int, strength: float, seed: int, steps: int | None) -> nn.Module:
    """Adam with a one-cycle schedule (peak 3e-3), batch 128; x (N, 1, 28, 28) in 0..1."""
    torch.manual_seed(seed)
    net = build_net()
    gen = torch.Generator().manual_seed(seed)
    per_epoch = steps or (len(x) + 127) // 128
    opt = torch.optim.Adam(net.parameters(), lr=3e-3)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=epochs * per_epoch)
    net.train()
    for _ in range(epochs):
        order = torch.randperm(len(x), generator=gen)
        for k in range(per_epoch):
            idx = order[k * 128 : (k + 1) * 128]
            xb = x[idx]
            if strength > 0:
                xb = augment_batch(xb, gen, strength=strength)
            loss = F.cross_entropy(net(xb), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
    return net.eval()


def trained(x, y, epochs: int, strength: float, seed: int, steps, use_cache: bool) -> nn.Module:
    """The model from .cache/ when one was trained with these settings; else a new one."""
    path = CACHE / f"cnn-e{epochs}-aug{strength:g}-seed{seed}.pt"
    if use_cache and steps is None and path.exists():
        net = build_net()
        net.load_state_dict(torch.load(path))
        return net.eval()
    t = time.perf_counter()
    net = train(x, y, epochs, strength, seed, steps)
    print(f"  trained {path.stem} in {time.perf_counter() - t:.0f} s", flush=True)
    if use_cache and steps is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(net.state_dict(), path)
    return net


@torch.no_grad()
def accuracy(net: nn.Module, images: np.ndarray, labels: np.ndarray) -> float:
    """images (N, 28, 28) in 0..255 -> share read correctly."""
    x = torch.from_numpy(np.asarray(images, np.float32) / 255.0).unsqueeze(1)
    preds = torch.cat([net(x[i : i + 1000]).argmax(1) for i in range(0, len(x), 1000)])
    return float((preds.numpy() == labels).mean())


@contextlib.contextmanager
def patched(**values):
    """Temporarily set module constants of digits_core.drawing (a preprocessing variant)."""
    old = {k: getattr(drawing, k) for k in values}
    for k, v in values.items():
        setattr(drawing, k, v)
    try:
        yield
    finally:
        for k, v in old.items():
            setattr(drawing, k, v)


def _no_deskew(mask):
    return mask


MNIST_VARIANTS = {
    "pipeline: stroke width clamped to MNIST's 10-90 % (1.55-3.25 px)": {},
    "no stroke clamp (plain crop/scale/centre of mass)": {"MNIST_STROKE": (0.0, np.inf)},
    "stroke clamped to MNIST's 5-95 % (1.33-3.75 px)": {"MNIST_STROKE": (1.33, 3.75)},
    "stroke clamped to MNIST's 1-99 % (1.16-4.75 px)": {"MNIST_STROKE": (1.16, 4.75)},
}
DIGITS_VARIANTS = {
    "pipeline (slant removed, stroke normalised)": {},
    "no slant removal": {"_deskew": _no_deskew},
}


def preprocess(drawings, dataset: str) -> tuple[np.ndarray, np.ndarray]:
    """Drawings -> model inputs; an unreadable (None) drawing becomes a blank image."""
    shape = (28, 28) if dataset == "mnist" else (8, 8)
    out = []
    for rgba, _ in drawings:
        img = drawing.canvas_to_image(rgba, dataset)
        out.append(np.zeros(shape, np.float32) if img is None else img)
    return np.stack(out), np.array([label for _, label in drawings])


def measure_digits(drawings) -> None:
    from sklearn.datasets import load_digits
    from sklearn.svm import SVC

    d = load_digits()
    clf = SVC(gamma=0.001, C=10).fit(d.data, d.target)
    print("\n8x8 pipeline: an SVC fitted on all of load_digits reads the drawings")
    for name, values in DIGITS_VARIANTS.items():
        with patched(**values):
            x, y = preprocess(drawings, "digits")
        acc = (clf.predict(x.reshape(len(x), -1)) == y).mean()
        print(f"  {acc:7.2%}  {name}  (mean ink {x.sum((1, 2)).mean():.0f}, sklearn's 313)")


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist", required=True, help="folder with the four MNIST IDX files")
    ap.add_argument("--n", type=int, default=2000, help="number of drawings")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--strengths", type=float, nargs="+", default=[0.0, 1.0])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a busy 2-core box)"
    )
    ap.add_argument("--no-cache", action="store_true", help="retrain even if a model is cached")
    ap.add_argument("--dry-run", action="store_true", help="a few steps and drawings: a smoke test")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps, n = (5, 50) if args.dry_run else (None, args.n)

    x_tr, y_tr, x_te, y_te = load_mnist(args.mnist)
    x = torch.from_numpy(x_tr.astype(np.float32) / 255.0).unsqueeze(1)
    y = torch.from_numpy(y_tr.astype(np.int64))
    t = time.perf_counter()
    drawings = make_drawn_set(x_te, y_te, seed=args.seed, n=n)
    print(f"{n} drawings of MNIST test digits made in {time.perf_counter() - t:.0f} s")
    inputs = {}
    for name, values in MNIST_VARIANTS.items():
        with patched(**values):
            inputs[name] = preprocess(drawings, "mnist")

    for strength in args.strengths:
        net = trained(x, y, args.epochs, strength, args.seed, steps, not args.no_cache)
        print(f"\nCNN, {args.epochs} epochs, augment strength {strength:g}:")
        print(f"  {accuracy(net, x_te, y_te):7.2%}  MNIST test set")
        for name, (images, labels) in inputs.items():
            print(f"  {accuracy(net, images, labels):7.2%}  drawings, {name}")

    measure_digits(drawings)


if __name__ == "__main__":
    main()
