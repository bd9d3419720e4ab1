"""A run scored on its split, confusion cells, embeddings, pictures and uploads
(digits_core.analysis.evaluate, .embedding, .images, .imagefile, .data)."""

import copy
import io

import numpy as np
import pytest
from PIL import Image
from saved_runs import record

from digits_core.analysis.embedding import embedding_for_run
from digits_core.analysis.evaluate import (
    cell_examples,
    cell_indices,
    evaluate_run,
    misclassified,
    most_confused,
    uses_strict_rule,
)
from digits_core.config import DataConfig
from digits_core.data.datasets import dataset_summary, load_dataset
from digits_core.errors import DrawingError
from digits_core.images.imagefile import load_upload
from digits_core.images.pictures import (
    class_mosaic,
    display_image,
    diverging_rgb,
    first_layer_mosaic,
    mosaic,
    upscale,
)
from digits_core.nn.models import first_layer_weights
from digits_core.store.runs import load_run, run_dataset


@pytest.fixture(scope="module")
def run(tiny_job, tmp_path_factory):
    return load_run(record(tiny_job, tmp_path_factory.mktemp("runs")))


@pytest.fixture(scope="module")
def data(run):
    return run_dataset(run)


@pytest.fixture(scope="module")
def ev(run, data):
    return evaluate_run(run, data)


def test_evaluate_run_scores_the_runs_own_split(run, data, ev):
    n = len(data.labels_test)
    assert ev.probs.shape == (n, 10) and ev.preds.shape == (n,) and ev.labels.shape == (n,)
    assert ev.images_test.shape == (n, 8, 8) and ev.max_value == 16.0
    assert ev.report.confusion.sum() == n
    # the same number the training loop measured on the same split
    assert ev.report.accuracy == pytest.approx(run.history.final_test_acc)
    assert ev.report.accuracy > 0.8


def test_strict_rule_counts_no_decisions(ev):
    assert ev.strict_confusion.shape == (10, 11)
    assert ev.strict_confusion.sum() == len(ev.labels)
    no_decision = ev.strict_preds == -1
    assert ev.strict_confusion[:, 10].sum() == no_decision.sum()
    # a strict decision is always the argmax, so the strict score can only be lower
    assert np.all(ev.strict_preds[~no_decision] == ev.preds[~no_decision])
    assert ev.strict_accuracy <= ev.report.accuracy


def test_uses_strict_rule_follows_the_loss(run):
    assert not uses_strict_rule(run)
    mse = copy.copy(run)
    mse.experiment = copy.deepcopy(run.experiment)
    mse.experiment.train.loss = "mse-softmax"
    assert uses_strict_rule(mse)


def test_cell_indices_off_diagonal_are_the_mistakes():
    probs = np.array([[0.1, 0.9], [0.3, 0.7], [0.8, 0.2], [0.4, 0.6], [0.6, 0.4]])
    labels = np.array([0, 0, 0, 1, 1])
    np.testing.assert_array_equal(cell_indices(probs, labels, 0, 1), [0, 1])
    np.testing.assert_array_equal(
        cell_indices(probs, labels, 0, 1), misclassified(probs, labels, true=0, pred=1)
    )
    np.testing.assert_array_equal(cell_indices(probs, labels, 1, 0), [4])
    np.testing.assert_array_equal(cell_indices(probs, labels, 0, 1, limit=1), [0])


def test_cell_indices_diagonal_are_the_shakiest_right_answers():
    probs = np.array([[0.9, 0.1], [0.55, 0.45], [0.2, 0.8], [0.7, 0.3]])
    labels = np.array([0, 0, 0, 0])
    np.testing.assert_array_equal(cell_indices(probs, labels, 0, 0), [1, 3, 0])
    assert cell_indices(probs, labels, 1, 1).size == 0


def test_most_confused_skips_the_diagonal():
    c = np.array([[9, 1, 3], [3, 9, 0], [0, 2, 9]])
    assert most_confused(c) == (0, 2)  # first of the two 3s in reading order
    assert most_confused(np.diag([5, 5, 5])) is None
    strict = np.array([[5, 0, 1], [0, 5, 4]])  # (C, C + 1): the no-decision column counts too
    assert most_confused(strict) == (1, 2)


def test_cell_examples_carry_image_and_caption(ev):
    wrong = np.flatnonzero(ev.preds != ev.labels)
    assert wrong.size, "a 3-epoch model should make some mistakes"
    t, p = int(ev.labels[wrong[0]]), int(ev.preds[wrong[0]])
    examples = cell_examples(ev, t, p, limit=3)
    assert 1 <= len(examples) <= 3
    first = examples[0]
    assert (first.true, first.pred) == (t, p)
    assert first.image.shape == (8, 8) and first.probs.shape == (10,)
    assert first.caption == f"true {t} -> predicted {p} ({first.confidence:.0%})"
    assert first.confidence == pytest.approx(first.probs.max())
    confidences = [e.confidence for e in examples]
    assert confidences == sorted(confidences, reverse=True)


def test_embedding_for_run_pca(run, data):
    res = embedding_for_run(run, data, method="pca", n_points=300, seed=1)
    assert res.xy.shape == (300, 2) and res.xy.dtype == np.float32
    assert np.all(np.diff(res.indices) > 0)
    np.testing.assert_array_equal(res.labels, data.labels_test[res.indices])
    np.testing.assert_array_equal(res.images, data.images_test[res.indices])
    assert res.probs.shape == (300, 10)
    np.testing.assert_array_equal(res.wrong, res.preds != res.labels)
    np.testing.assert_allclose(res.confidence, res.probs.max(1))
    cols = res.columns()
    assert set(cols) >= {
        "x", "y", "true", "predicted", "confidence", "test image", "point", "status"
    }
    assert all(len(v) == 300 for v in cols.values())
    assert set(cols["true"]) <= set("0123456789")
    np.testing.assert_array_equal(cols["status"] == "misclassified", res.wrong)
    k = int(np.argmax(res.wrong)) if res.wrong.any() else 0
    ex = res.example(k)
    assert ex.index == res.indices[k] and ex.true == res.labels[k] and ex.pred == res.preds[k]
    np.testing.assert_array_equal(ex.image, data.images_test[ex.index])
    again = embedding_for_run(run, data, method="pca", n_points=300, seed=1)
    np.testing.assert_array_equal(res.xy, again.xy)


def test_embedding_for_run_tsne_reports_progress(run, data):
    seen = []
    res = embedding_for_run(
        run, data, method="tsne", n_points=120, seed=0, perplexity=10, progress=seen.append
    )
    assert res.xy.shape == (120, 2) and np.isfinite(res.xy).all()
    assert seen[0] == 0.0 and seen[-1] == 1.0 and len(seen) > 3
    assert seen == sorted(seen)


def test_display_image_keeps_pixels_square_and_sharp():
    img = np.arange(64, dtype=np.uint8).reshape(8, 8) % 17  # 0..16
    out = display_image(img, 16.0, size=84)
    assert out.dtype == np.uint8 and out.shape == (88, 88)  # 11 x 8: whole pixels only
    assert out[:11, :11].min() == out[:11, :11].max() == 0
    assert out[-1, -1] == round(img[-1, -1] / 16 * 255)
    assert display_image(np.full((28, 28), 255.0), 255.0, size=84).shape == (84, 84)
    assert upscale(np.zeros((2, 3, 3), np.uint8), 10).shape == (8, 12, 3)  # k = ceil(10 / 3)


def test_diverging_rgb_ends_and_middle():
    rgb = diverging_rgb(np.array([-1.0, 0.0, 1.0, np.nan, 5.0]))
    assert rgb.shape == (5, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[0], (33, 102, 172))
    np.testing.assert_array_equal(rgb[1], (255, 255, 255))
    np.testing.assert_array_equal(rgb[2], (178, 24, 43))
    np.testing.assert_array_equal(rgb[3], (200, 200, 200))
    np.testing.assert_array_equal(rgb[4], rgb[2])  # clipped


def test_mosaic_tiles_with_nan_gaps():
    tiles = np.arange(5 * 2 * 2, dtype=np.float32).reshape(5, 2, 2)
    m = mosaic(tiles, cols=3, gap=1)
    assert m.shape == (2 * 2 + 1, 3 * 2 + 2)
    np.testing.assert_array_equal(m[:2, :2], tiles[0])
    np.testing.assert_array_equal(m[3:5, 3:5], tiles[4])
    assert np.isnan(m[2]).all() and np.isnan(m[:, 2]).all()
    assert np.isnan(m[3:, 6:]).all()  # the sixth slot is empty


def test_first_layer_mosaic_dense_and_conv(run):
    after = first_layer_mosaic(first_layer_weights(run.model), (8, 8), units=16, cols=8, cell=48)
    before = first_layer_mosaic(run.first_layer_before, (8, 8), units=16, cols=8, cell=48)
    assert after.shape == before.shape and after.ndim == 3 and after.shape[2] == 3
    assert after.dtype == np.uint8
    assert not np.array_equal(after, before)  # training moved the weights
    conv = np.random.default_rng(0).normal(size=(6, 1, 3, 3))
    assert first_layer_mosaic(conv, (28, 28), units=4, cols=2).shape[2] == 3


def _png(width: int, height: int) -> bytes:
    buf = io.BytesIO()
    Image.new("L", (width, height), 0).save(buf, format="PNG")
    return buf.getvalue()


def test_load_upload_reads_png_and_refuses_the_rest():
    rgba = load_upload(io.BytesIO(_png(40, 30)))
    assert rgba.shape == (30, 40, 4) and rgba.dtype == np.uint8
    with pytest.raises(DrawingError, match="empty"):
        load_upload(b"")
    with pytest.raises(DrawingError, match="MB"):
        load_upload(_png(40, 30), max_bytes=10)
    with pytest.raises(DrawingError, match="5000x8 pixels"):
        load_upload(_png(5000, 8))
    with pytest.raises(DrawingError, match="cannot read"):
        load_upload(b"not an image at all")


def test_class_mosaic_rows_are_classes():
    images = np.stack([np.full((2, 3), k, np.uint8) for k in [3, 1, 3, 0]])
    labels = np.array([3, 1, 3, 0])
    m = class_mosaic(images, labels, per_class=2)
    assert m.shape == (20, 6)
    assert np.all(m[6:8] == 3) and np.all(m[2:4, :3] == 1) and np.all(m[2:4, 3:] == 0)
    assert np.all(m[4:6] == 0)  # class 2 has no images: blank


def test_dataset_summary_counts_and_means():
    ds = load_dataset(DataConfig())
    s = dataset_summary(ds)
    assert s.train_counts.sum() == s.n_train == len(ds.labels_train)
    assert s.test_counts.sum() == s.n_test
    assert s.means.shape == (10, 8, 8) and s.mosaic.shape == (80, 80)
    np.testing.assert_allclose(s.means[0], ds.images_train[ds.labels_train == 0].mean(0), rtol=1e-6)


def test_display_image_frame():
    img = display_image(np.full((8, 8), 16.0), 16, size=80, frame=4)
    assert img.shape == (88, 88) and img[0, 0] == 128 and img[4, 4] == 255
