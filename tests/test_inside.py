"""The layer view's values are the model's own: every family's walk ends in the logits and
probabilities its forward pass gives, its last hidden stage is its `features`, and a
unit's strongest images are the ones that drive it hardest."""

import numpy as np
import pytest
from sklearn.datasets import load_digits

from digits_core.analysis.inside import (
    first_filters,
    layer_values,
    strongest,
    unit_scores,
    unit_weights,
    weight_layers,
)
from digits_core.config import ConvBlock, ModelConfig
from digits_core.nn.models import build_model
from digits_core.store.pretrained import load_ready_made

CONFIGS = {
    "numpy-mlp": ModelConfig(family="numpy-mlp", hidden=[24, 16], activation="tanh"),
    "torch-mlp": ModelConfig(family="torch-mlp", hidden=[20]),
    "cnn": ModelConfig(family="cnn", hidden=[12], conv=[ConvBlock(channels=4, kernel=3, padding=1, batchnorm=True,
                                                                  pool=2)]),
}


def _images(n=6):
    return (load_digits().images[:n] / 16.0).astype(np.float32)


@pytest.fixture(params=list(CONFIGS), scope="module")
def model(request):
    m = build_model(CONFIGS[request.param], (8, 8), seed=3, device="cpu")
    if request.param == "cnn":  # running statistics other than 0 and 1, so batch norm does something
        state = m.state_dict()
        rng = np.random.default_rng(0)
        for k in state:
            if k.endswith(("running_mean", "running_var")):
                state[k] = rng.uniform(0.2, 1.5, state[k].shape).astype(np.float32)
        m.load_state_dict(state)
    return m


def test_the_walk_ends_in_the_models_own_logits_and_probabilities(model):
    x = _images()
    stages = layer_values(model, x)
    names = [s.name for s in stages]
    assert names[0] == "input" and names[-2:] == ["logits", "probabilities"]
    np.testing.assert_allclose(stages[-2].values, model.forward(x), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stages[-1].values, model.probs(x), rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(stages[-3].values, model.features(x), rtol=1e-4, atol=1e-5)


def test_a_cnn_shows_maps_per_channel_in_the_networks_order(model):
    stages = layer_values(model, _images(2))
    kinds = [s.kind for s in stages]
    if model.family != "cnn":
        assert "conv" not in kinds and all(not s.maps for s in stages[1:])
        return
    assert kinds[:5] == ["input", "conv", "norm", "act", "pool"]  # conv -> BN -> ReLU -> pool
    conv = stages[1].values
    assert conv.shape == (2, 4, 8, 8) and stages[4].values.shape == (2, 4, 4, 4)
    assert (stages[3].values >= 0).all() and (stages[2].values < 0).any()  # ReLU cut the negatives BN left


def test_the_ready_made_models_walk_agrees_with_its_reading():
    run = load_ready_made()
    x = run.normalizer(np.random.default_rng(0).integers(0, 256, (2, 28, 28)).astype(np.float32))
    stages = layer_values(run.model, x)
    assert [s.name for s in stages][:5] == ["input", "conv 1", "pool 1", "batch norm 1", "relu 1"]
    np.testing.assert_allclose(stages[-1].values, run.model.probs(x), rtol=1e-4, atol=1e-6)


def test_strongest_images_drive_the_unit_hardest(model):
    x = _images(40)
    scores = unit_scores(model, x)
    name = next(n for n in scores if n != "probabilities")
    top = strongest(scores[name], 1, k=5)
    stage = next(s for s in layer_values(model, x) if s.name == name)
    v = stage.values[:, 1]
    peak = v.reshape(len(x), -1).max(1) if v.ndim == 3 else v
    assert set(top) == set(np.argsort(-peak)[:5])
    assert peak[top].min() >= np.delete(peak, top).max()


def test_a_units_weights_are_its_own_and_keep_their_sign(model):
    layers = weight_layers(model)
    first_name, first = next(iter(layers.items()))
    pic = unit_weights(model, first_name, 2, (1, 8, 8))
    w = first[2].reshape(pic.shape)
    np.testing.assert_allclose(pic, w / np.abs(w).max(), rtol=1e-5)
    filters = first_filters(model)
    assert filters.shape[0] == first.shape[0] and np.abs(filters).max() <= 1.0 + 1e-6
    last_name = list(layers)[-1]  # the output layer over the last hidden units: a grid of them
    grid = unit_weights(model, last_name, 0, (layers[last_name].shape[1],))
    assert np.nanmax(np.abs(grid)) == pytest.approx(1.0)
    assert np.isfinite(grid).sum() == layers[last_name].shape[1]


def test_wrong_sized_images_are_refused(model):
    with pytest.raises(ValueError, match="expected images"):
        layer_values(model, np.zeros((1, 28, 28), np.float32))


@pytest.mark.parametrize("k, shape, cols, gap", [(32, (14, 14), 16, 1), (10, (5, 3), 4, 2), (100, (1, 1), 32, 0)])
def test_a_click_on_a_tile_of_a_mosaic_is_traced_back_to_that_tile(k, shape, cols, gap):
    """The clickable maps and units: each tile's centre, as `mosaic_centres` gives it, falls
    on that tile's own pixels in the picture `mosaic` draws (tiles are numbered by value)."""
    from digits_core.images.pictures import mosaic, mosaic_centres

    tiles = np.broadcast_to(np.arange(k, dtype=np.float32)[:, None, None], (k, *shape))
    m = mosaic(tiles, cols, gap)
    centres = mosaic_centres(k, shape, cols, gap)
    assert centres.shape == (k, 2)
    for i, (x, y) in enumerate(centres):
        assert m[round(float(y)), round(float(x))] == i
