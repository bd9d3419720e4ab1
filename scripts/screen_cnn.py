"""Screen CNN shapes and training settings for the default MNIST preset: 1-epoch runs with
test checkpoints (the benchmark's `cnn_run_with_checkpoints`), time to 99 % against the
benchmark's LeNet reference epoch, on a chosen number of torch threads.

    .venv/bin/python scripts/screen_cnn.py --mnist-dir DIR --variants tiny,tiny-pf --seeds 0 \
        --epochs 1 --threads 1 [--lenet]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT)]

from benchmarks import bench  # noqa: E402
from digits_core.config import ConvBlock  # noqa: E402
from digits_core.presets import default_cnn_experiment  # noqa: E402


def variant(name: str, epochs: int, seed: int):
    exp = default_cnn_experiment(epochs, seed)
    m, t = exp.model, exp.train
    parts = name.split("+")
    base = parts[0]
    if base == "default":  # the preset as it is
        pass
    elif base == "today":  # the default CNN shape and optimiser before this branch (augmentation: today's code)
        t.lr, t.adam_betas = 3e-3, [0.9, 0.999]
        m.conv = [ConvBlock(32, 5, 2, True, 2), ConvBlock(64, 3, 1, True, 2)]
        m.hidden, m.pool_first = [128], False
    elif base.startswith("tiny"):  # conv5x5/24 valid -> pool -> conv3x3/32 valid -> pool -> fc
        m.conv = [ConvBlock(24, 5, 0, True, 2), ConvBlock(32, 3, 0, True, 2)]
        m.hidden = [256]
    elif base == "small":
        m.conv = [ConvBlock(32, 5, 0, True, 2), ConvBlock(48, 3, 0, True, 2)]
        m.hidden = [256]
    elif base == "mid":
        m.conv = [ConvBlock(32, 5, 0, True, 2), ConvBlock(64, 3, 0, True, 2)]
        m.hidden = [128]
    elif base == "wide":
        m.conv = [ConvBlock(32, 5, 2, True, 2), ConvBlock(64, 3, 0, True, 2)]
        m.hidden = [256]
    else:
        raise SystemExit(f"unknown variant {name}")
    for p in parts[1:]:
        k, _, v = p.partition("=")
        if k == "pf":
            m.pool_first = True
        elif k == "bs":
            t.batch_size = int(v)
        elif k == "lr":
            t.lr = float(v)
        elif k == "aug":
            t.augment_strength = float(v)
            t.augment = float(v) > 0
        elif k == "fc":
            m.hidden = [int(v)] if int(v) else []
        elif k == "betas":
            t.adam_betas = [float(b) for b in v.split(",")]
        else:
            raise SystemExit(f"unknown option {p}")
    return exp


def main(argv=None):
    ap = argparse.ArgumentParser()
    ap.add_argument("--mnist-dir", required=True)
    ap.add_argument("--variants", required=True)
    ap.add_argument("--seeds", default="0")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--train-size", type=int)
    ap.add_argument("--lenet", action="store_true", help="time the LeNet reference epoch first")
    ap.add_argument("--save", help="folder to save each model's run-less weights into (npz)")
    ap.add_argument("--json", default=None)
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(a.threads)
    from digits_core import threads

    threads._threads_done = True  # keep the thread count chosen here
    from dataclasses import replace

    plan = replace(bench.FULL, mnist_train=a.train_size)
    data = bench.load_mnist_data(a.mnist_dir, plan)
    out = []
    if a.lenet:
        r = bench.lenet_epoch(data, 0, a.threads)
        print(f"LeNet reference epoch on {a.threads} threads: {r['seconds']:.1f} s, acc {r['test_acc']:.4f}", flush=True)
        out.append(dict(lenet=r, threads=a.threads))
    for name in a.variants.split(";"):
        for seed in map(int, a.seeds.split(",")):
            exp = variant(name, a.epochs, seed)
            exp.data.mnist_dir = a.mnist_dir
            t = time.perf_counter()
            r = bench.cnn_run_with_checkpoints(exp, data, 4)
            model = r.pop("model")
            accs = [c[2] for c in r["checkpoints"]]
            per_epoch = [accs[k] for k in range(3, len(accs), 4)]
            print(f"{name:32s} seed {seed} threads {a.threads}: epochs {[round(x, 4) for x in per_epoch]} "
                  f"train {r['train_s']:.1f} s, to 99 % {r['time_to_99']}, params {model.n_params:,} "
                  f"(wall {time.perf_counter() - t:.0f} s)", flush=True)
            out.append(dict(variant=name, seed=seed, threads=a.threads, **r))
            if a.save:
                Path(a.save).mkdir(parents=True, exist_ok=True)
                torch.save(model.module.state_dict(), Path(a.save) / f"{name}-s{seed}-e{a.epochs}.pt")
    if a.json:
        Path(a.json).write_text(json.dumps(out, default=str))


if __name__ == "__main__":
    main()
