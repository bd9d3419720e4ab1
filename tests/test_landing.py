"""A drawing lands among the test digits it resembles: a test image placed as a new point
falls where it already is (PCA exactly, t-SNE near), and its nearest test point is itself."""

import numpy as np
import pytest
from saved_runs import record
from sklearn.datasets import load_digits

from digits_core.analysis.embedding import principal_components
from digits_core.analysis.landing import NEAREST, land, landscape, neighbours_line
from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.store.runs import load_run
from digits_core.training.jobs import run_experiment


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    exp = Experiment(DataConfig(), ModelConfig(family="torch-mlp", hidden=[32]), TrainConfig(epochs=4), name="t")
    job = run_experiment(exp)
    return load_run(record(job, tmp_path_factory.mktemp("runs"))), job.data


@pytest.fixture(scope="module")
def scape(run):
    r, data = run
    return landscape(r.model, r.normalizer, data.images_test, data.labels_test, seed=0, points=200)


def test_the_pca_map_is_the_embedding_pages_pca(scape):
    np.testing.assert_allclose(scape.pca, principal_components(scape.features.astype(np.float64), 2),
                               rtol=1e-3, atol=1e-3)


def test_a_test_image_lands_on_itself(run, scape):
    r, _ = run
    k = 17
    where = land(scape, r.model, r.normalizer, scape.images[k])
    np.testing.assert_allclose(where.pca, scape.pca[k], atol=1e-3)
    assert where.nearest[0] == k and where.distances[0] < 1e-3 and len(where.nearest) == NEAREST
    spread = np.ptp(scape.tsne_xy, 0).max()
    assert np.linalg.norm(where.tsne - scape.tsne_xy[k]) < 0.15 * spread


def test_a_digits_neighbours_are_mostly_its_own_class(run, scape):
    r, _ = run
    same = [np.mean(scape.labels[land(scape, r.model, r.normalizer, scape.images[k]).nearest] == scape.labels[k])
            for k in range(0, 200, 20)]
    assert np.mean(same) > 0.7


def test_a_diverged_model_is_refused_with_a_sentence():
    from digits_core.nn.models import build_model

    model = build_model(ModelConfig(family="numpy-mlp", hidden=[8]), (8, 8))
    model.net.dense[0].W[...] = np.inf
    d = load_digits()
    with pytest.raises(ValueError, match="diverged"):
        landscape(model, lambda x: np.asarray(x, np.float32) / 16, d.images, d.target, points=50, tsne=False)


def test_the_neighbours_line_names_the_crowd():
    assert neighbours_line(np.array([9] * 6 + [4] * 2), 4).startswith("your 4 sits among 9s and 4s (6 of its 8")
    assert "all 4s" in neighbours_line(np.array([4] * 8), 4)
