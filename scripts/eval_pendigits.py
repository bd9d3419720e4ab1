"""Score saved runs on real pen-drawn digits (UCI pendigits, Alpaydin & Alimoglu 1998,
CC BY 4.0) drawn as the pad would draw them, per class, on writers held out from tuning.

The 30 writers of ../shared/data/pendigits are split writer-wise (seeded): figures are
reported on the held-out writers only; `--tune` scores the tuning writers instead (for
choosing, never for reporting). Each drawing is read as the app reads it (`canvas_views`
and `read_views`, as scripts/eval_drawn.py does).

    .venv/bin/python scripts/eval_pendigits.py RUN [RUN ...] [--mnist-dir DIR] [--held-out 10]
        [--per-class 100] [--json out.json] [--sheet out.png]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "scripts")]

from eval_drawn import preprocess, score

from digits_core.analysis.pendigits import read_unipen, render, writer_split
from digits_core.store.pretrained import load_ready_made
from digits_core.store.runs import load_run

PENDIGITS = ROOT.parent / "shared" / "data" / "pendigits" / "pendigits-train.unipen"


def pen_set(path, *, held_out: int, per_class: int | None, tune: bool = False, seed: int = 0):
    """[(rgba, label, writer)] of the held-out writers (or the tuning ones), at most
    `per_class` a class (seeded), each drawn once with its own pen, size and place."""
    digits = read_unipen(path)
    tune_w, held_w = writer_split(digits, held_out, seed)
    keep = [d for d in digits if d.writer in (tune_w if tune else held_w)]
    rng = np.random.default_rng(seed + 1)
    if per_class is not None:
        picked = []
        for c in range(10):
            these = [d for d in keep if d.label == c]
            idx = rng.choice(len(these), size=min(per_class, len(these)), replace=False)
            picked += [these[i] for i in sorted(idx)]
        keep = picked
    return [(render(d, rng), d.label, str(d.writer)) for d in keep]


def load_any(path: str):
    return load_ready_made() if path == "ready-made" else load_run(path)


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help="run folders, or 'ready-made'")
    ap.add_argument("--data", default=str(PENDIGITS))
    ap.add_argument("--mnist-dir", help="also score MNIST test")
    ap.add_argument("--held-out", type=int, default=10, help="writers held out of the 30")
    ap.add_argument("--per-class", type=int, default=100)
    ap.add_argument("--tune", action="store_true", help="score the tuning writers (not a measure)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json")
    ap.add_argument("--sheet", help="save a contact sheet of the first 60 drawings here")
    a = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    drawings = pen_set(a.data, held_out=a.held_out, per_class=a.per_class, tune=a.tune, seed=a.seed)
    views, labels, _ = preprocess(drawings)
    if a.sheet:
        from PIL import Image

        tiles = [r[::4, ::4, 0] for r, _, _ in drawings[:: max(1, len(drawings) // 60)][:60]]
        rows = [np.concatenate(tiles[k:k + 10], 1) for k in range(0, len(tiles) - 9, 10)]
        Image.fromarray(np.concatenate(rows, 0)).save(a.sheet)
    which = "tuning" if a.tune else "held-out"
    print(f"{len(drawings)} pen digits of the {which} writers")
    results = {}
    for path in a.runs:
        run = load_any(path)
        r = score(run, views, labels)
        if a.mnist_dir:
            from digits_core.data.mnist import load_mnist

            _, _, x_te, y_te = load_mnist(a.mnist_dir)
            pred = run.model.forward(run.normalizer(x_te.astype(np.float32))).argmax(1)
            r["mnist_test"] = float((pred == y_te).mean())
        results[path] = r
        pc = " ".join(f"{c}:{r['per_class'][c]:.2f}" for c in range(10))
        mn = f"  MNIST test {r['mnist_test']:.4f}" if "mnist_test" in r else ""
        print(f"{path}: {r['acc']:.4f}  [{pc}]{mn}  errors {r['top_errors']}")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
