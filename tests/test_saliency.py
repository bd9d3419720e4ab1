"""Integrated gradients pass the sanity checks of Adebayo et al. (2018) on a small trained
model, where an edge detector that ignores the model does not; its attributions add up to
the logit's change; the nudge changes a reading by a bounded change of the pixels."""

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn.datasets import load_digits

from digits_core.analysis.saliency import (
    completeness_gap,
    edge_map,
    explain,
    integrated_gradients,
    logit_gradients,
    nudge,
)
from digits_core.config import ConvBlock, ModelConfig
from digits_core.data.datasets import Normalizer
from digits_core.nn.models import build_model
from digits_core.nn.numpy_mlp import Optimizer
from digits_core.store.pretrained import load_ready_made

NORM = Normalizer("unit", 16.0)
DIGITS = load_digits()
X, Y = DIGITS.images.astype(np.float32), DIGITS.target
X_TRAIN, Y_TRAIN, X_TEST, Y_TEST = X[:1500], Y[:1500], X[1500:], Y[1500:]
CONFIG = ModelConfig(family="numpy-mlp", hidden=[32])


def _trained(labels, seed=0, epochs=40):
    """A NumPy MLP trained by its own backward pass and Adam on the 8x8 digits with `labels`."""
    m = build_model(CONFIG, (8, 8), seed=seed)
    opt, rng = Optimizer("adam"), np.random.default_rng(seed)
    xs = NORM(X_TRAIN).reshape(len(X_TRAIN), -1)
    for _ in range(epochs):
        for b in np.array_split(rng.permutation(len(xs)), len(xs) // 64):
            m.net.loss_and_grads(xs[b], labels[b], "cross-entropy")
            opt.step(m.net.params(), 0.01)
    return m


@pytest.fixture(scope="module")
def models():
    trained = _trained(Y_TRAIN)
    assert (trained.forward(NORM(X_TEST)).argmax(1) == Y_TEST).mean() > 0.85
    shuffled = _trained(np.random.default_rng(1).permutation(Y_TRAIN))
    randomised = build_model(CONFIG, (8, 8), seed=7)
    return trained, shuffled, randomised


def _ig(model, image, c):
    x, base = NORM(np.stack([image, np.zeros_like(image)]))
    return integrated_gradients(model, x, base, c)


def _similarity(explainer_a, explainer_b, n=20) -> float:
    """Mean Spearman rank correlation of two explanations of the same test images (signed)."""
    rho = [spearmanr(explainer_a(X_TEST[i], int(Y_TEST[i])).ravel(),
                     explainer_b(X_TEST[i], int(Y_TEST[i])).ravel())[0] for i in range(n)]
    return float(np.mean(rho))


def test_the_map_changes_when_the_weights_are_randomised(models):
    trained, _, randomised = models
    assert _similarity(lambda im, c: _ig(trained, im, c), lambda im, c: _ig(trained, im, c)) > 0.99
    assert _similarity(lambda im, c: _ig(trained, im, c), lambda im, c: _ig(randomised, im, c)) < 0.3


def test_the_map_changes_when_the_labels_were_shuffled_in_training(models):
    trained, shuffled, _ = models
    assert _similarity(lambda im, c: _ig(trained, im, c), lambda im, c: _ig(shuffled, im, c)) < 0.3


def test_an_edge_detector_fails_the_same_checks():
    """The negative control: a 'saliency' that ignores the model is the same for any model."""
    assert _similarity(lambda im, c: edge_map(im), lambda im, c: edge_map(im)) > 0.99


def test_the_attributions_add_up_to_the_logits_change(models):
    trained = models[0]
    x, base = NORM(np.stack([X_TEST[0], np.zeros_like(X_TEST[0])]))
    attr = integrated_gradients(trained, x, base, int(Y_TEST[0]))
    assert completeness_gap(trained, x, base, int(Y_TEST[0]), attr) < 0.02


@pytest.mark.parametrize("family", ["torch-mlp", "cnn"])
def test_torch_gradients_match_central_differences(family):
    conv = [ConvBlock(channels=3, kernel=3, padding=1, batchnorm=False, pool=2)] if family == "cnn" else []
    cfg = ModelConfig(family=family, hidden=[16], activation="tanh", conv=conv)
    model = build_model(cfg, (8, 8), seed=1, device="cpu")
    x = np.random.default_rng(0).uniform(0, 1, (1, 8, 8)).astype(np.float32)  # no ties for max-pool to break
    w = np.zeros((1, 10), np.float32)
    w[0, 3] = 1.0
    g = logit_gradients(model, x, w)[0]
    for r, c in [(2, 3), (4, 4), (6, 1)]:
        up, down = x.copy(), x.copy()
        up[0, r, c] += 1e-3
        down[0, r, c] -= 1e-3
        numeric = (model.forward(up)[0, 3] - model.forward(down)[0, 3]) / 2e-3
        assert g[r, c] == pytest.approx(numeric, rel=0.05, abs=1e-3)


def test_explain_shows_the_second_class_only_when_unsure(models):
    trained = models[0]
    s = explain(trained, NORM, X_TEST[0])
    assert s.classes[0] == int(s.probs.argmax()) and s.maps.shape == (len(s.classes), 8, 8)
    assert (len(s.classes) == 2) == (s.probs.max() < 0.70)
    unsure = explain(trained, NORM, X_TEST[0], sure=1.01)
    assert len(unsure.classes) == 2 and unsure.classes[1] == int(np.argsort(-unsure.probs)[1])


def test_a_diverged_model_gets_no_map():
    model = build_model(CONFIG, (8, 8), seed=0)
    model.net.dense[0].W[...] = np.nan
    assert explain(model, NORM, X_TEST[0]) is None
    assert nudge(model, NORM, X_TEST[0], 16.0) is None


def test_the_nudge_changes_the_ready_made_models_reading_within_its_bound():
    run = load_ready_made()
    image = np.zeros((28, 28), np.float32)
    image[6:22, 12:16] = 255.0  # a plain 1
    before = int(run.model.probs(run.normalizer(image[None]))[0].argmax())
    n = nudge(run.model, run.normalizer, image, 255.0, eps=0.3)
    assert n.was == before
    assert np.abs(n.image - image).max() <= 0.3 * 255 + 1e-3 and n.image.min() >= 0 and n.image.max() <= 255
    assert n.digit != before
