"""Measure t-SNE implementations against scikit-learn's `TSNE()` defaults.

Usage:
    PYTHONPATH=. .venv/bin/python scripts/measure_tsne.py --mnist-dir /path/to/mnist [--n 2000] [--repeats 3]

Three feature sets of n points each: the last hidden layer (128-d ReLU) of an MLP
trained briefly on MNIST, raw MNIST pixels (784-d), and the bundled 8x8 digits (64-d).
For each, every candidate is timed (median of `repeats`) and scored with
`sklearn.manifold.trustworthiness(n_neighbors=10)`; the ratio is against the sklearn
defaults. Prints one Markdown table per feature set.
"""

from __future__ import annotations

import argparse
import gzip
import time
import warnings
from pathlib import Path
from typing import Callable

import numpy as np

from digits_core.analysis.embedding import embed, sample_points


def read_idx(path: Path) -> np.ndarray:
    """A gzipped IDX file (magic 2051 images / 2049 labels, big-endian header) as uint8."""
    with gzip.open(path, "rb") as f:
        raw = f.read()
    magic = int.from_bytes(raw[:4], "big")
    ndim = {2051: 3, 2049: 1}[magic]
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def mnist_features(mnist_dir: Path, n: int, seed: int) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{"mlp-hidden": (features (n, 128), labels), "mnist-pixels": (n, 784)} from test images."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    x_tr = read_idx(mnist_dir / "train-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0
    y_tr = read_idx(mnist_dir / "train-labels-idx1-ubyte.gz").astype(np.int64)
    x_te = read_idx(mnist_dir / "t10k-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0
    y_te = read_idx(mnist_dir / "t10k-labels-idx1-ubyte.gz").astype(np.int64)
    keep = sample_points(y_tr, 15_000, seed)
    mlp = MLPClassifier(hidden_layer_sizes=(128,), max_iter=15, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        mlp.fit(x_tr[keep], y_tr[keep])
    pts = sample_points(y_te, n, seed)
    hidden = np.maximum(x_te[pts] @ mlp.coefs_[0] + mlp.intercepts_[0], 0.0)  # (n, 128)
    return {
        f"mlp-hidden (test acc {mlp.score(x_te, y_te):.3f})": (hidden, y_te[pts]),
        "mnist-pixels": (x_te[pts], y_te[pts]),
    }


def digits_features() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data / 16.0, d.target


def _sklearn(threads: int | None = None, **kw) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(x: np.ndarray, seed: int) -> np.ndarray:
        from sklearn.manifold import TSNE
        from threadpoolctl import threadpool_limits

        with threadpool_limits(threads):
            return TSNE(random_state=seed, **kw).fit_transform(x)

    return run


def _opentsne(
    ee: int, it: int, theta: float = 0.5, threads: int = 1, pca_dims: int | None = None, **kw
) -> Callable[[np.ndarray, int], np.ndarray]:
    """openTSNE from a PCA start; `threads` is both its n_jobs and the BLAS/OpenMP limit."""

    def run(x: np.ndarray, seed: int) -> np.ndarray:
        from openTSNE import TSNE
        from threadpoolctl import threadpool_limits

        from digits_core.analysis.embedding import principal_components

        with threadpool_limits(threads):
            if pca_dims is not None and x.shape[1] > pca_dims:
                x = principal_components(x, pca_dims, seed)
            tsne = TSNE(
                early_exaggeration_iter=ee,
                n_iter=it,
                theta=theta,
                n_jobs=threads,
                random_state=seed,
                initialization="pca",
                **kw,
            )
            return np.asarray(tsne.fit(x))

    return run


def candidates() -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """name -> run(features, seed) -> (N, 2). The first one is the reference."""
    bh = dict(negative_gradient_method="bh")
    return {
        "sklearn TSNE() defaults": _sklearn(),
        "sklearn max_iter=500, angle=0.8, n_jobs=2": _sklearn(max_iter=500, angle=0.8, n_jobs=2),
        "sklearn max_iter=500, angle=0.8, 1 thread": _sklearn(threads=1, max_iter=500, angle=0.8),
        "openTSNE fft, 250+500 it, 1 thread": _opentsne(250, 500, negative_gradient_method="fft"),
        "openTSNE bh, exact kNN, 250+500 it, 2 threads": _opentsne(250, 500, threads=2, neighbors="exact", **bh),
        "openTSNE bh, exact kNN, 250+500 it, 1 thread": _opentsne(250, 500, neighbors="exact", **bh),
        "openTSNE bh, exact kNN, 75+150 it, theta 0.8, 2 threads": _opentsne(
            75, 150, 0.8, threads=2, neighbors="exact", **bh
        ),
        "openTSNE bh, annoy kNN, 75+150 it, theta 0.8, 1 thread": _opentsne(
            75, 150, 0.8, neighbors="annoy", **bh
        ),
        "openTSNE bh, exact kNN, 75+150 it, theta 0.5, 1 thread": _opentsne(
            75, 150, 0.5, neighbors="exact", **bh
        ),
        "openTSNE bh, exact kNN, 100+200 it, theta 0.8, 1 thread": _opentsne(
            100, 200, 0.8, neighbors="exact", **bh
        ),
        "openTSNE bh, PCA-50, exact kNN, 75+150 it, theta 0.8, 1 thread": _opentsne(
            75, 150, 0.8, pca_dims=50, neighbors="exact", **bh
        ),
        "ours: embed(method='tsne')": lambda x, seed: embed(x, method="tsne", seed=seed),
        "ours: embed(method='pca')": lambda x, seed: embed(x, method="pca", seed=seed),
    }


def compare_tsne(features: np.ndarray, *, repeats: int = 3, seed: int = 0) -> dict[str, dict]:
    """{candidate: seconds, cpu_seconds, trust (medians), ratio, trust_diff (vs the first)}.

    Repeats go round all candidates in turn, so a load that comes and goes on a shared
    machine hits every candidate alike. cpu_seconds is this process's CPU time (all
    threads), which a busy machine inflates much less than wall time.
    """
    from sklearn.manifold import trustworthiness

    x = np.ascontiguousarray(features, dtype=np.float64)
    runs = candidates()
    samples: dict[str, list[tuple[float, float, float]]] = {name: [] for name in runs}
    for r in range(repeats):
        for name, run in runs.items():
            t0, c0 = time.perf_counter(), time.process_time()
            y = run(x, seed + r)
            wall, cpu = time.perf_counter() - t0, time.process_time() - c0
            samples[name].append((wall, cpu, trustworthiness(x, y, n_neighbors=10)))
    rows = {}
    for name, rs in samples.items():
        wall, cpu, trust = np.median(np.array(rs), axis=0)
        rows[name] = {"seconds": float(wall), "cpu_seconds": float(cpu), "trust": float(trust)}
    ref = next(iter(rows.values()))
    for row in rows.values():
        row["ratio"] = row["seconds"] / ref["seconds"]
        row["trust_diff"] = row["trust"] - ref["trust"]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mnist-dir", type=Path, required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--sets", nargs="+", default=["mlp-hidden", "mnist-pixels", "digits"],
        help="feature sets to measure (prefixes of their names)",
    )
    args = parser.parse_args()

    sets = mnist_features(args.mnist_dir, args.n, args.seed)
    sets["digits-8x8 (all 1797)"] = digits_features()
    for name, (x, _) in sets.items():
        if not any(name.startswith(prefix) for prefix in args.sets):
            continue
        print(f"\n### {name}: {x.shape[0]} x {x.shape[1]}\n", flush=True)
        print("| method | median s | CPU s | trustworthiness | vs sklearn | time ratio |")
        print("|---|---|---|---|---|---|")
        for cand, row in compare_tsne(x, repeats=args.repeats, seed=args.seed).items():
            print(
                f"| {cand} | {row['seconds']:.2f} | {row['cpu_seconds']:.2f} | {row['trust']:.4f} "
                f"| {row['trust_diff']:+.4f} | {row['ratio']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
