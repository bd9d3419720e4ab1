"""Measure t-SNE implementations against scikit-learn's `TSNE()` defaults.

Usage:
    .venv/bin/python scripts/measure_tsne.py --mnist-dir /path/to/mnist [--n 2000] [--repeats 3]

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

from digits_core.embedding import embed, sample_points


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


def _sklearn(**kw) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(x: np.ndarray, seed: int) -> np.ndarray:
        from sklearn.manifold import TSNE

        return TSNE(random_state=seed, **kw).fit_transform(x)

    return run


def _sklearn_pca50(**kw) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(x: np.ndarray, seed: int) -> np.ndarray:
        from sklearn.decomposition import PCA

        if x.shape[1] > 50:
            x = PCA(50, random_state=seed).fit_transform(x)
        return _sklearn(**kw)(x, seed)

    return run


def _opentsne(pca_dims: int | None = None, **kw) -> Callable[[np.ndarray, int], np.ndarray]:
    def run(x: np.ndarray, seed: int) -> np.ndarray:
        from openTSNE import TSNE
        from sklearn.decomposition import PCA

        if pca_dims is not None and x.shape[1] > pca_dims:
            x = PCA(pca_dims, random_state=seed).fit_transform(x)
        return np.asarray(TSNE(random_state=seed, **kw).fit(x))

    return run


def candidates() -> dict[str, Callable[[np.ndarray, int], np.ndarray]]:
    """name -> run(features, seed) -> (N, 2). The first one is the reference."""
    bh = dict(negative_gradient_method="bh", n_jobs=2)
    return {
        "sklearn TSNE() defaults": _sklearn(),
        "sklearn max_iter=500, angle=0.8, n_jobs=2": _sklearn(max_iter=500, angle=0.8, n_jobs=2),
        "sklearn PCA-50, max_iter=500, angle=0.8, n_jobs=2": _sklearn_pca50(
            max_iter=500, angle=0.8, n_jobs=2
        ),
        "openTSNE fft, defaults (250+500 it), n_jobs=2": _opentsne(n_jobs=2),
        "openTSNE bh, exact kNN, 250+500 it": _opentsne(neighbors="exact", **bh),
        "openTSNE bh, annoy kNN, 250+500 it": _opentsne(neighbors="annoy", **bh),
        "openTSNE bh, exact kNN, 250+250 it": _opentsne(neighbors="exact", n_iter=250, **bh),
        "openTSNE bh, exact kNN, 125+250 it": _opentsne(
            neighbors="exact", early_exaggeration_iter=125, n_iter=250, **bh
        ),
        "openTSNE bh, exact kNN, 250+250 it, theta=0.8": _opentsne(
            neighbors="exact", n_iter=250, theta=0.8, **bh
        ),
        "openTSNE bh, PCA-50, exact kNN, 250+250 it": _opentsne(
            pca_dims=50, neighbors="exact", n_iter=250, **bh
        ),
        "ours: embed(method='tsne')": lambda x, seed: embed(x, method="tsne", seed=seed),
        "ours: embed(method='pca')": lambda x, seed: embed(x, method="pca", seed=seed),
    }


def compare_tsne(features: np.ndarray, *, repeats: int = 3, seed: int = 0) -> dict[str, dict]:
    """{candidate: {seconds (median), trust (median), ratio (vs sklearn defaults)}}."""
    from sklearn.manifold import trustworthiness

    x = np.ascontiguousarray(features, dtype=np.float64)
    rows: dict[str, dict] = {}
    for name, run in candidates().items():
        times, trusts = [], []
        for r in range(repeats):
            t0 = time.perf_counter()
            y = run(x, seed + r)
            times.append(time.perf_counter() - t0)
            trusts.append(trustworthiness(x, y, n_neighbors=10))
        rows[name] = {"seconds": float(np.median(times)), "trust": float(np.median(trusts))}
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
    parser.add_argument("--only", default=None, help="run only feature sets containing this")
    args = parser.parse_args()

    sets = mnist_features(args.mnist_dir, args.n, args.seed)
    sets["digits-8x8 (all 1797)"] = digits_features()
    for name, (x, _) in sets.items():
        if args.only and args.only not in name:
            continue
        print(f"\n### {name}: {x.shape[0]} x {x.shape[1]}\n", flush=True)
        print("| method | median s | trustworthiness | vs sklearn trust | time ratio |")
        print("|---|---|---|---|---|")
        for cand, row in compare_tsne(x, repeats=args.repeats, seed=args.seed).items():
            print(
                f"| {cand} | {row['seconds']:.2f} | {row['trust']:.4f} "
                f"| {row['trust_diff']:+.4f} | {row['ratio']:.2f} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
