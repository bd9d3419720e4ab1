"""`python -m benchmarks.teach`: how long "Teach the model" takes for 100 drawings.

    python -m benchmarks.teach --mnist-dir DIR [--run RUN] [--drawings 100] [--repeats 3]
                               [--out bench-results/teach.json]

Teaches the default CNN (the ready-made model, which is the default CNN's architecture and
recipe; or `--run`, a default-CNN run folder) `--drawings` real pen digits (UCI pendigits,
Alpaydin & Alimoglu 1998, CC BY 4.0: the tuning writers of scripts/eval_pendigits.py; the
procedural hard set of tests/hard_drawn_digits.py where that data is absent), through the
job runner as the Drawings page does, from the click to the job's end (MNIST loaded, one
epoch, MNIST test measured, the run saved). Goal: <= 15 s on the project's 2-core machine,
the median of `--repeats`. Also prints the drawings and MNIST test before and after. Check
`uptime` first: a loaded machine makes every figure slower. Not a test; exits 0 either way.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from digits_core.images.drawing import canvas_to_image
from digits_core.serve.runner import JobRunner
from digits_core.store.pretrained import load_ready_made
from digits_core.store.runs import load_run
from digits_core.training.teach import compare, teach

REPO = Path(__file__).resolve().parents[1]
GOAL_S = 15.0


def drawings(n: int) -> tuple[np.ndarray, np.ndarray, str]:
    """n drawings as model inputs (n, 28, 28) and labels (n,), and where they came from."""
    sys.path[:0] = [str(REPO / "scripts"), str(REPO / "tests")]
    from eval_pendigits import PENDIGITS, pen_set

    if PENDIGITS.is_file():
        got = pen_set(PENDIGITS, held_out=10, per_class=-(-n // 10), tune=True)[:n]
        where = "pendigits tuning writers"
    else:
        from hard_drawn_digits import make_hard_set

        got, where = make_hard_set(0, n), "procedural hard set"
    x = np.stack([canvas_to_image(r, "mnist") for r, _, _ in got])
    return x, np.array([label for _, label, _ in got]), where


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mnist-dir", required=True)
    ap.add_argument("--run", help="a default-CNN run folder (default: the ready-made model)")
    ap.add_argument("--drawings", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out")
    a = ap.parse_args(argv)
    source = load_run(a.run) if a.run else load_ready_made()
    x, y, where = drawings(a.drawings)
    times, comparisons = [], []
    for _ in range(a.repeats):
        with tempfile.TemporaryDirectory() as folder:
            runner = JobRunner(folder, max_jobs=1)
            t = time.perf_counter()
            name = teach(runner, source, x, y, owner="bench", mnist_dir=a.mnist_dir)
            job = runner.job(name)
            job.wait(900)
            times.append(time.perf_counter() - t)
            h = job.snapshot()
            if h.status != "finished":
                print(f"teaching {h.status}: {h.message}")
                return 0
            comparisons.append(compare(source, load_run(Path(folder) / name), x, y))
    med = float(np.median(times))
    c = comparisons[-1]
    print(f"taught {len(y)} drawings ({where}) to {source.label}: median {med:.1f} s of "
          f"{', '.join(f'{t:.1f}' for t in times)}; goal <= {GOAL_S:.0f} s: {'PASS' if med <= GOAL_S else 'FAIL'}")
    print(f"drawings {c.drawings_before:.1%} -> {c.drawings_after:.1%}; MNIST test "
          f"{c.mnist_before:.2%} -> {c.mnist_after:.2%}{' (dropped > 0.1 points)' if c.mnist_dropped else ''}")
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({
            "seconds": times, "median_s": med, "goal_s": GOAL_S, "passed": med <= GOAL_S, "drawings": len(y), "source": where,
            "model": source.label, "comparisons": [vars(k) for k in comparisons], "load": os.getloadavg(),
            "machine": platform.platform(), "cpus": os.cpu_count()}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
