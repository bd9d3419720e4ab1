"""digits_core.analysis.evaluate against scikit-learn's metrics, plus hand-made edge cases."""

import warnings

import numpy as np
import pytest
from sklearn import metrics

from digits_core.analysis.evaluate import (
    Report,
    confusion_matrix,
    evaluate_probs,
    misclassified,
    strict_predictions,
)
from digits_core.images.pictures import first_layer_images


def _random_probs(n: int, seed: int, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(n, n_classes)) * 3
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, n_classes, n)
    return probs, labels


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_confusion_matrix_matches_sklearn(seed):
    rng = np.random.default_rng(seed)
    labels, preds = rng.integers(0, 10, 500), rng.integers(0, 10, 500)
    got = confusion_matrix(labels, preds)
    assert got.dtype == np.int64 and got.shape == (10, 10)
    np.testing.assert_array_equal(got, metrics.confusion_matrix(labels, preds, labels=range(10)))


def test_confusion_matrix_rows_are_true_classes():
    got = confusion_matrix(np.array([0, 0, 1]), np.array([1, 1, 1]), n_classes=3)
    np.testing.assert_array_equal(got, [[0, 2, 0], [0, 1, 0], [0, 0, 0]])


def test_confusion_matrix_no_decision_column():
    labels = np.array([0, 1, 1, 2, 2, 2])
    preds = np.array([0, -1, 1, -1, -1, 0])
    got = confusion_matrix(labels, preds, n_classes=3, include_no_decision=True)
    assert got.shape == (3, 4)
    np.testing.assert_array_equal(got, [[1, 0, 0, 0], [0, 1, 0, 1], [1, 0, 0, 2]])
    assert got.sum() == len(labels)


def test_confusion_matrix_refuses_no_decision_unless_asked():
    with pytest.raises(ValueError, match="preds"):
        confusion_matrix(np.array([0, 1]), np.array([0, -1]), n_classes=2)


@pytest.mark.parametrize(
    "labels, preds",
    [([0, 10], [0, 1]), ([0, 1], [0, 10]), ([0, 1], [0, 1, 2]), ([0.0, 1.0], [0, 1])],
)
def test_confusion_matrix_rejects_bad_input(labels, preds):
    with pytest.raises(ValueError):
        confusion_matrix(np.array(labels), np.array(preds))


def test_confusion_matrix_empty():
    got = confusion_matrix(np.array([], np.int64), np.array([], np.int64), n_classes=3)
    np.testing.assert_array_equal(got, np.zeros((3, 3)))


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_evaluate_probs_matches_sklearn(seed):
    probs, labels = _random_probs(400, seed)
    preds = probs.argmax(1)
    report = evaluate_probs(probs, labels)
    p, r, f, s = metrics.precision_recall_fscore_support(
        labels, preds, labels=range(10), zero_division=0
    )
    assert isinstance(report, Report)
    assert report.n == 400
    assert report.accuracy == pytest.approx(metrics.accuracy_score(labels, preds))
    np.testing.assert_allclose(report.precision, p)
    np.testing.assert_allclose(report.recall, r)
    np.testing.assert_allclose(report.f1, f)
    np.testing.assert_array_equal(report.support, s)
    np.testing.assert_array_equal(report.confusion, confusion_matrix(labels, preds))


def test_evaluate_probs_unpredicted_and_absent_classes_score_zero_without_warnings():
    # Class 2 is never predicted and never present; class 1 is present but never predicted.
    probs = np.array([[0.9, 0.05, 0.05], [0.8, 0.1, 0.1], [0.6, 0.3, 0.1]])
    labels = np.array([0, 0, 1])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with np.errstate(all="raise"):
            report = evaluate_probs(probs, labels)
    np.testing.assert_allclose(report.precision, [2 / 3, 0, 0])
    np.testing.assert_allclose(report.recall, [1, 0, 0])
    np.testing.assert_allclose(report.f1, [0.8, 0, 0])
    np.testing.assert_array_equal(report.support, [2, 1, 0])
    assert report.accuracy == pytest.approx(2 / 3)
    p, r, f, _ = metrics.precision_recall_fscore_support(
        labels, probs.argmax(1), labels=range(3), zero_division=0
    )
    np.testing.assert_allclose(report.f1, f)


def test_evaluate_probs_perfect_and_empty():
    labels = np.arange(10)
    report = evaluate_probs(np.eye(10), labels)
    assert report.accuracy == 1.0
    np.testing.assert_array_equal(report.f1, np.ones(10))
    with pytest.raises(ValueError, match="empty"):
        evaluate_probs(np.zeros((0, 10)), np.zeros(0, np.int64))


def test_misclassified_sorted_by_wrong_confidence():
    probs = np.array(
        [
            [0.9, 0.1, 0.0],  # right
            [0.3, 0.7, 0.0],  # true 0, pred 1 at 0.7
            [0.1, 0.0, 0.9],  # true 0, pred 2 at 0.9
            [0.0, 0.6, 0.4],  # true 2, pred 1 at 0.6
            [0.2, 0.8, 0.0],  # true 0, pred 1 at 0.8
        ]
    )
    labels = np.array([0, 0, 0, 2, 0])
    np.testing.assert_array_equal(misclassified(probs, labels), [2, 4, 1, 3])
    np.testing.assert_array_equal(misclassified(probs, labels, true=0, pred=1), [4, 1])
    np.testing.assert_array_equal(misclassified(probs, labels, pred=1), [4, 1, 3])
    np.testing.assert_array_equal(misclassified(probs, labels, true=2), [3])
    np.testing.assert_array_equal(misclassified(probs, labels, limit=2), [2, 4])
    assert misclassified(probs, labels, true=1).size == 0


def test_misclassified_cells_add_up_to_confusion_matrix():
    probs, labels = _random_probs(300, 7)
    confusion = confusion_matrix(labels, probs.argmax(1))
    for t in range(10):
        for p in range(10):
            if t != p:
                idx = misclassified(probs, labels, true=t, pred=p)
                assert len(idx) == confusion[t, p]
                conf = probs[idx, p]
                assert np.all(np.diff(conf) <= 0)
    assert len(misclassified(probs, labels)) == confusion.sum() - np.trace(confusion)


def test_strict_predictions():
    probs = np.array(
        [
            [0.2, 0.7, 0.1],  # clear winner
            [0.5, 0.5, 0.0],  # 0.5 rounds to 0: no decision
            [0.4, 0.35, 0.25],  # no output above 0.5
            [0.0, 0.49, 0.51],
        ]
    )
    np.testing.assert_array_equal(strict_predictions(probs), [1, -1, -1, 2])


def test_strict_predictions_raw_outputs_need_an_exact_one_hot_after_rounding():
    outputs = np.array([[0.9, 0.8, 0.0], [1.6, 0.1, 0.0], [1.2, -0.2, 0.3], [-0.7, 0.9, 0.1]])
    np.testing.assert_array_equal(strict_predictions(outputs), [-1, -1, 0, -1])


def test_strict_predictions_agree_with_argmax_when_confident():
    probs, labels = _random_probs(500, 3)
    strict = strict_predictions(probs)
    decided = probs.max(1) > 0.5
    np.testing.assert_array_equal(strict[decided], probs.argmax(1)[decided])
    assert np.all(strict[~decided] == -1)
    confusion = confusion_matrix(labels, strict, include_no_decision=True)
    assert confusion[:, -1].sum() == (~decided).sum()


def test_first_layer_images_dense():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(64, 5))  # (in_features, K)
    w[:, 3] = 0.0  # a dead unit
    images = first_layer_images(w, (8, 8))
    assert images.shape == (5, 8, 8) and images.dtype == np.float32
    # Unit k's image is column k laid out row-major, scaled by its own max |w|.
    np.testing.assert_allclose(images[1], (w[:, 1] / np.abs(w[:, 1]).max()).reshape(8, 8), rtol=1e-6)
    np.testing.assert_array_equal(images[3], 0.0)
    live = np.delete(images, 3, axis=0)
    np.testing.assert_allclose(np.abs(live).max(axis=(1, 2)), 1.0)
    np.testing.assert_array_equal(np.sign(images), np.sign(w.T.reshape(5, 8, 8)))


def test_first_layer_images_conv():
    rng = np.random.default_rng(1)
    w = rng.normal(size=(4, 1, 3, 3)) * np.array([1, 10, 0.1, 5])[:, None, None, None]
    images = first_layer_images(w, (28, 28))
    assert images.shape == (4, 3, 3)
    np.testing.assert_allclose(np.abs(images).max(axis=(1, 2)), 1.0, rtol=1e-6)
    np.testing.assert_allclose(images, w[:, 0] / np.abs(w[:, 0]).max(axis=(1, 2), keepdims=True), rtol=1e-6)


@pytest.mark.parametrize(
    "shape, match",
    [((10, 784), "transpose|\\.T"), ((100, 3), "in_features"), ((4, 3, 3, 3), "1 input channel"), ((64,), "shape")],
)
def test_first_layer_images_rejects(shape, match):
    with pytest.raises(ValueError, match=match):
        first_layer_images(np.ones(shape), (28, 28) if shape[-1] == 784 else (8, 8))
