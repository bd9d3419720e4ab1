"""The hardest examples: ranked by the model's own loss on each image alone."""

import numpy as np
import pytest

from digits_core.analysis.hardest import hardest_examples, per_image_loss, top_losses
from digits_core.nn.numpy_mlp import LOSSES


@pytest.mark.parametrize("loss", ["cross-entropy", "mse-softmax"])
def test_the_ranking_is_the_training_loss_of_each_image_alone(tiny_job, loss):
    """The NumPy MLP's own loss function (the one it trained with), given one image at a
    time, orders the test set exactly as top_losses does."""
    model, data = tiny_job.model, tiny_job.data
    x = data.x_test
    logits = model.forward(x).astype(np.float64)
    own = np.array([LOSSES[loss](logits[i:i + 1], data.labels_test[i:i + 1], "sum")[0]
                    for i in range(len(x))])
    ranked = top_losses(model.probs(x), data.labels_test, loss)
    assert sorted(ranked.tolist()) == list(range(len(x)))  # every image once
    assert np.all(np.diff(own[ranked]) <= 1e-5)  # highest loss first
    assert own[ranked[0]] == pytest.approx(own.max(), rel=1e-4)


def test_the_loss_chosen_changes_the_order():
    """A confident mistake (p=0.95 on a wrong digit) against a spread one (p(true)=0.02,
    0.49 on two wrong digits): cross-entropy puts the spread one first, squared error the
    confident one."""
    probs = np.zeros((2, 10))
    probs[0, :2] = [0.05, 0.95]
    probs[1, :3] = [0.02, 0.49, 0.49]
    labels = np.array([0, 0])
    assert top_losses(probs, labels, "cross-entropy").tolist() == [1, 0]
    assert top_losses(probs, labels, "mse-softmax").tolist() == [0, 1]
    assert per_image_loss(probs, labels)[0] == pytest.approx(-np.log(0.05))


def test_filters_keep_exactly_the_images_of_that_true_and_predicted_digit(tiny_job):
    data = tiny_job.data
    probs = tiny_job.model.probs(data.x_test)
    preds = probs.argmax(1)
    t, p = 3, 8
    idx = top_losses(probs, data.labels_test, true=t)
    assert set(idx.tolist()) == set(np.flatnonzero(data.labels_test == t).tolist())
    idx = top_losses(probs, data.labels_test, pred=p)
    assert set(idx.tolist()) == set(np.flatnonzero(preds == p).tolist())
    both = top_losses(probs, data.labels_test, true=t, pred=t, limit=5)
    assert len(both) == min(5, int(((data.labels_test == t) & (preds == t)).sum()))


def test_examples_carry_their_image_probabilities_and_loss(tiny_job):
    data = tiny_job.data
    probs = tiny_job.model.probs(data.x_test)
    ex = hardest_examples(data.images_test, probs, data.labels_test, limit=3)
    assert len(ex) == 3 and ex[0].loss >= ex[1].loss >= ex[2].loss
    assert np.array_equal(ex[0].image, data.images_test[ex[0].index])
    assert ex[0].probs.sum() == pytest.approx(1, abs=1e-4)
    assert f"a {ex[0].true}" in ex[0].caption and "loss" in ex[0].caption


def test_a_loss_the_runs_never_train_with_is_refused():
    from digits_core.errors import ConfigError

    with pytest.raises(ConfigError, match="loss must be one of"):
        per_image_loss(np.ones((1, 10)) / 10, np.array([0]), "hinge")
