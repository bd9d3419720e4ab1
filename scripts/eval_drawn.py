"""Score saved runs on MNIST test and on both synthetic canvas sets, per class, with latency.

Sets: "mnist-writers" (tests/drawn_digits.py: MNIST *test* digits redrawn as pen strokes)
and "hard" (tests/hard_drawn_digits.py: procedural strokes in many people's styles, no
MNIST). Every drawing is read as the app reads it: `canvas_views` (the drawing as
`canvas_to_image` gives it and a narrowed view) and `read_views`, or, with `--one-view`,
the first view alone; latency is `predict_canvas` (one thread, as the app's), per drawing.

    .venv/bin/python scripts/eval_drawn.py --mnist-dir DIR RUN [RUN ...] [--n 1000] [--json out.json]
        [--one-view]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

from drawn_digits import make_drawn_set  # noqa: E402
from hard_drawn_digits import make_hard_set  # noqa: E402

from digits_core.analysis.predict import predict_canvas, read_views  # noqa: E402
from digits_core.data.mnist import load_mnist  # noqa: E402
from digits_core.images.drawing import canvas_views  # noqa: E402
from digits_core.store.pretrained import READY_MADE, load_ready_made  # noqa: E402
from digits_core.store.runs import load_run  # noqa: E402


def drawn_sets(mnist_dir: str, n: int, seed: int) -> dict[str, list]:
    """{set name: [(rgba, label, style)]}; the MNIST-writer set from MNIST's test images."""
    _, _, x_te, y_te = load_mnist(mnist_dir)
    writers = [(r, y, "mnist") for r, y in make_drawn_set(x_te, y_te, seed=seed, n=n)]
    return {"mnist-writers": writers, "hard": make_hard_set(seed, n)}


def preprocess(drawings) -> tuple[np.ndarray, np.ndarray, list[float]]:
    """-> views (N, V, 28, 28) 0..255 (blank where None), labels (N,), ms per drawing."""
    out, ms = [], []
    for rgba, _, _ in drawings:
        t = time.perf_counter()
        views = canvas_views(rgba, "mnist")
        ms.append(1000 * (time.perf_counter() - t))
        out.append(np.zeros((2, 28, 28), np.float32) if views is None else views)
    return np.stack(out), np.array([y for _, y, _ in drawings]), ms


def score(run, views, labels, styles=None) -> dict:
    pred = read_views(run, views).argmax(1)
    ok = pred == labels
    per_class = {int(c): float(ok[labels == c].mean()) for c in range(10)}
    conf = defaultdict(int)
    for y, p in zip(labels[~ok], pred[~ok]):
        conf[f"{y}->{p}"] += 1
    out = dict(acc=float(ok.mean()), per_class=per_class,
               top_errors=dict(sorted(conf.items(), key=lambda kv: -kv[1])[:8]))
    if styles is not None:
        per = defaultdict(list)
        for s, y, k in zip(styles, labels, ok):
            per[f"{y}:{s}"].append(k)
        out["per_style"] = {k: float(np.mean(v)) for k, v in sorted(per.items())}
    return out


def latency(run, drawings, pre_ms, n: int = 300) -> dict:
    """p50/p90 ms of predict_canvas (views, forward, average), over the first n drawings."""
    total = []
    for (rgba, _, _), _ in zip(drawings[:n], range(n)):
        t = time.perf_counter()
        predict_canvas(run, rgba)
        total.append(1000 * (time.perf_counter() - t))
    a, p = np.asarray(total), np.asarray(pre_ms)
    return dict(p50_ms=float(np.percentile(a, 50)), p90_ms=float(np.percentile(a, 90)),
                pre_p50_ms=float(np.percentile(p, 50)), pre_p90_ms=float(np.percentile(p, 90)))


def save_failures(run, path, sets, pre, folder: Path, most: int = 60) -> None:
    """Misread drawings: each tile the canvas (left) and the 28x28 input (right), titled
    'label>prediction' in the file's list."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    for name, (images, labels, _) in pre.items():
        pred = read_views(run, images).argmax(1)
        images = images[:, 0]
        bad = np.flatnonzero(pred != labels)[:most]
        tiles = []
        for i in bad:
            rgba = sets[name][i][0]
            canvas = rgba[..., 3] if rgba[..., 3].min() < 255 else rgba[..., :3].max(2)
            big = np.asarray(Image.fromarray(canvas).resize((84, 84), Image.Resampling.BILINEAR))
            small = np.kron(images[i], np.ones((3, 3))).clip(0, 255).astype(np.uint8)
            tiles.append(np.concatenate([big, np.full((84, 2), 128, np.uint8), small], 1))
        if not tiles:
            continue
        cols = 6
        rows = [tiles[k : k + cols] for k in range(0, len(tiles), cols)]
        rows[-1] += [np.zeros_like(tiles[0])] * (cols - len(rows[-1]))
        sheet = np.concatenate([np.concatenate([np.pad(t, 2, constant_values=80) for t in r], 1) for r in rows], 0)
        stem = Path(path).name + f"-{name}"
        Image.fromarray(sheet).save(folder / f"{stem}.png")
        (folder / f"{stem}.txt").write_text(" ".join(
            f"{labels[i]}>{pred[i]}" + (f"({sets[name][i][2]})" if name == "hard" else "") for i in bad))


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("runs", nargs="+", help=f"run folders ({READY_MADE.name!r} or 'ready-made': the shipped model)")
    ap.add_argument("--mnist-dir", required=True)
    ap.add_argument("--n", type=int, default=1000, help="drawings per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--styles", action="store_true", help="print accuracy per style (hard set)")
    ap.add_argument("--json", help="write every figure here")
    ap.add_argument("--failures", help="save contact sheets of misread drawings (and what the "
                    "model saw) into this folder, one per run and set")
    ap.add_argument("--one-view", action="store_true", help="read only the first view (as before views)")
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    _, _, x_te, y_te = load_mnist(args.mnist_dir)
    sets = drawn_sets(args.mnist_dir, args.n, args.seed)
    pre = {k: preprocess(v) for k, v in sets.items()}
    if args.one_view:
        pre = {k: (v[:, :1], y, ms) for k, (v, y, ms) in pre.items()}
    results = {}
    for path in args.runs:
        run = load_ready_made() if path in ("ready-made", READY_MADE.name) else load_run(path)
        pred = run.model.forward(run.normalizer(x_te.astype(np.float32))).argmax(1)
        r = dict(mnist_test=float((pred == y_te).mean()), params=run.model.n_params)
        for name, (images, labels, ms) in pre.items():
            styles = [s for _, _, s in sets[name]] if name == "hard" else None
            r[name] = score(run, images, labels, styles)
        r["latency_hard"] = latency(run, sets["hard"], pre["hard"][2])
        if args.failures:
            save_failures(run, path, sets, pre, Path(args.failures))
        results[path] = r
        print(f"\n{path}  ({r['params']:,} params)\n  MNIST test {r['mnist_test']:.4f}")
        for name in sets:
            s = r[name]
            pc = " ".join(f"{c}:{s['per_class'][c]:.2f}" for c in range(10))
            print(f"  {name:14s} {s['acc']:.4f}  [{pc}]  errors {s['top_errors']}")
        if args.styles:
            print("  per style: " + ", ".join(f"{k} {v:.2f}" for k, v in r["hard"]["per_style"].items()))
        lat = r["latency_hard"]
        print(f"  latency p50 {lat['p50_ms']:.2f} ms p90 {lat['p90_ms']:.2f} ms "
              f"(preprocessing p50 {lat['pre_p50_ms']:.2f} p90 {lat['pre_p90_ms']:.2f})")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
