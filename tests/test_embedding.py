"""digits_core.analysis.embedding on a few hundred of the bundled digits (fast)."""

import numpy as np
import pytest
from sklearn.datasets import load_digits
from sklearn.decomposition import PCA
from sklearn.manifold import trustworthiness
from threadpoolctl import threadpool_limits

from digits_core.analysis.embedding import embed, principal_components, sample_points


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """embed runs on one thread anyway; sklearn's threads spin for ages on a busy machine."""
    with threadpool_limits(1):
        yield


@pytest.fixture(scope="module")
def digits():
    d = load_digits()
    keep = sample_points(d.target, 400, seed=0)
    return d.data[keep] / 16.0, d.target[keep]


@pytest.fixture(scope="module")
def tsne_digits(digits):
    return embed(digits[0], method="tsne", seed=0)


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_shape_and_dtype(digits, tsne_digits, method):
    y = tsne_digits if method == "tsne" else embed(digits[0], method="pca")
    assert y.shape == (400, 2) and y.dtype == np.float32
    assert np.isfinite(y).all()


def test_tsne_is_deterministic_for_a_seed(digits, tsne_digits):
    np.testing.assert_array_equal(embed(digits[0], method="tsne", seed=0), tsne_digits)
    assert not np.allclose(embed(digits[0], method="tsne", seed=1), tsne_digits)


def test_tsne_keeps_neighbourhoods_better_than_pca(digits, tsne_digits):
    x = digits[0]
    trust_tsne = trustworthiness(x, tsne_digits, n_neighbors=10)
    trust_pca = trustworthiness(x, embed(x, method="pca"), n_neighbors=10)
    assert trust_tsne >= 0.9
    assert trust_tsne > trust_pca + 0.05


def test_pca_matches_sklearn_up_to_sign(digits):
    x = digits[0]
    ours = embed(x, method="pca").astype(np.float64)
    ref = PCA(2).fit_transform(x)
    signs = np.sign((ours * ref).sum(0))
    np.testing.assert_allclose(ours, ref * signs, rtol=1e-4, atol=1e-4)
    np.testing.assert_array_equal(embed(x, method="pca"), embed(x, method="pca"))


def test_principal_components_of_wide_features_match_sklearn():
    # min(N, F) > 256 takes the randomized SVD: leading components right to 0.1 %.
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 400))
    x[:, :3] *= [10.0, 6.0, 4.0]  # three clear leading directions
    ours = principal_components(x, 3, seed=0)
    ref = PCA(3, svd_solver="full").fit_transform(x)
    signs = np.sign((ours * ref).sum(0))
    np.testing.assert_allclose(ours, ref * signs, rtol=0, atol=1e-3 * np.abs(ref).max())
    np.testing.assert_array_equal(principal_components(x, 3, seed=0), ours)


def test_pca_of_one_feature_is_padded():
    x = np.arange(6, dtype=float)[:, None]
    y = embed(x, method="pca")
    assert y.shape == (6, 2)
    np.testing.assert_array_equal(y[:, 1], 0.0)


@pytest.mark.parametrize("n", [5, 12, 40])
def test_small_inputs_clip_perplexity(digits, n):
    y = embed(digits[0][:n], method="tsne", perplexity=30.0)
    assert y.shape == (n, 2) and np.isfinite(y).all()


@pytest.mark.parametrize("method", ["tsne", "pca"])
def test_progress_goes_from_zero_to_one(digits, method):
    seen = []
    embed(digits[0][:100], method=method, progress=seen.append)
    assert seen[0] == 0.0 and seen[-1] == 1.0
    assert np.all(np.diff(seen) >= 0)
    if method == "tsne":
        assert len(seen) > 10  # reports during the iterations, not only at the ends


@pytest.mark.parametrize(
    "features, kwargs, match",
    [
        (np.zeros((4, 3)), {}, "at least 5 points"),
        (np.zeros(10), {}, r"\(N, F\)"),
        (np.where(np.eye(10) > 0, np.nan, 1.0), {}, "NaN"),
        (np.where(np.eye(10) > 0, np.inf, 1.0), {}, "NaN or infinite"),
        (np.ones((10, 3)), {"method": "umap"}, "method"),
        (np.ones((10, 3)), {"perplexity": 0}, "perplexity"),
    ],
)
def test_bad_input_raises_value_error(features, kwargs, match):
    with pytest.raises(ValueError, match=match):
        embed(features, **kwargs)


def test_sample_points_stratified_sorted_deterministic():
    labels = np.repeat(np.arange(10), np.arange(10, 110, 10))  # class c has 10 * (c + 1)
    idx = sample_points(labels, 55, seed=3)
    assert len(idx) == 55 and len(np.unique(idx)) == 55
    assert np.all(np.diff(idx) > 0) and idx.dtype == np.int64
    counts = np.bincount(labels[idx], minlength=10)
    expected = np.bincount(labels, minlength=10) * 55 / len(labels)
    assert np.all(np.abs(counts - expected) < 1)
    np.testing.assert_array_equal(sample_points(labels, 55, seed=3), idx)
    assert not np.array_equal(sample_points(labels, 55, seed=4), idx)


def test_sample_points_small_n_and_all():
    labels = np.array([0] * 50 + [1] * 30 + [2])
    assert len(sample_points(labels, 3, seed=0)) == 3
    assert len(sample_points(labels, 0, seed=0)) == 0
    np.testing.assert_array_equal(sample_points(labels, 81, seed=0), np.arange(81))
    np.testing.assert_array_equal(sample_points(labels, 1000, seed=0), np.arange(81))
