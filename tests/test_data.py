"""Datasets: the bundled digits, splits, subsets, normalisation, and real MNIST."""

import subprocess
import sys

import numpy as np
import pytest
from repo_paths import REPO

from digits_core.config import DataConfig
from digits_core.data.datasets import Normalizer, load_dataset, load_digits, split_indices
from digits_core.errors import ConfigError, DataError


def test_load_digits_shapes_and_ranges():
    images, labels = load_digits()
    assert images.shape == (1797, 8, 8) and images.dtype == np.uint8
    assert labels.shape == (1797,) and labels.dtype == np.int64
    assert images.max() == 16 and set(labels) == set(range(10))


def test_load_digits_reads_sklearns_file_as_sklearn_does():
    from sklearn.datasets import load_digits as sk_load_digits

    images, labels = load_digits()
    ref = sk_load_digits()
    np.testing.assert_array_equal(images, ref.images)
    np.testing.assert_array_equal(labels, ref.target)


def test_load_digits_does_not_import_sklearn():
    code = ("import sys; from digits_core.data.datasets import load_digits; load_digits(); "
            "print(sorted(m for m in ('sklearn', 'scipy', 'torch') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=REPO)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "[]"


def test_stratified_split_keeps_class_shares_and_is_seeded():
    d = load_dataset(DataConfig(test_fraction=0.2, seed=0))
    assert len(d.labels_train) + len(d.labels_test) == 1797
    assert len(d.labels_test) == 360
    shares = np.bincount(d.labels_test) / len(d.labels_test)
    assert np.all(np.abs(shares - 0.1) < 0.01)
    again = load_dataset(DataConfig(test_fraction=0.2, seed=0))
    np.testing.assert_array_equal(d.images_test, again.images_test)
    other = load_dataset(DataConfig(test_fraction=0.2, seed=1))
    assert not np.array_equal(d.labels_test, other.labels_test)


def test_ordered_and_random_splits():
    labels = np.arange(100) % 10
    tr, te = split_indices(labels, "ordered", 0.1, 0)
    assert list(te) == list(range(90, 100)) and list(tr) == list(range(90))
    tr, te = split_indices(labels, "random", 0.1, 1)
    from sklearn.model_selection import train_test_split

    ref_tr, ref_te = train_test_split(np.arange(100), test_size=0.1, random_state=1)
    assert list(te) == list(ref_te) and list(tr) == list(ref_tr)


@pytest.mark.parametrize("mode", ["unit", "standardize", "raw"])
def test_normalizer(mode):
    d = load_dataset(DataConfig(normalization=mode))
    x = d.x_train
    assert x.dtype == np.float32 and x.shape == d.images_train.shape
    if mode == "unit":
        assert 0 <= x.min() and x.max() == 1
    elif mode == "raw":
        assert x.max() == 16
    else:
        assert abs(float(x.mean())) < 0.05  # fitted on training images
    restored = Normalizer.from_arrays(d.normalizer.to_arrays())
    np.testing.assert_array_equal(restored(d.images_test), d.x_test)


def test_train_subset_is_stratified_and_seeded():
    d = load_dataset(DataConfig(train_size=200))
    assert len(d.labels_train) == 200 and np.bincount(d.labels_train).min() >= 18


def test_bad_data_configs():
    with pytest.raises(ConfigError):
        load_dataset(DataConfig(dataset="cifar"))
    with pytest.raises(ConfigError):
        load_dataset(DataConfig(split="official"))
    with pytest.raises(ConfigError):
        load_dataset(DataConfig(train_size=3))


def test_mnist_missing_folder_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        load_dataset(DataConfig(dataset="mnist", split="official", mnist_dir=str(tmp_path)))


def test_mnist_official_split_and_subset(mnist_dir):
    d = load_dataset(DataConfig(dataset="mnist", split="official", mnist_dir=str(mnist_dir), train_size=1000))
    assert d.images_train.shape == (1000, 28, 28) and d.images_test.shape == (10000, 28, 28)
    assert d.x_train.max() == 1.0 and d.image_shape == (28, 28)


@pytest.mark.parametrize("mode", ["raw", "unit", "standardize"])
def test_the_normaliser_gives_the_formula_in_a_new_array_and_leaves_its_input_alone(mode):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (20, 6, 6)).astype(np.uint8)
    n = Normalizer.fit(mode, 255.0, images)
    for given in (images, images.astype(np.float32), images[:, ::-1]):  # uint8, float32, a strided view
        before = given.copy()
        x = n(given)
        want = np.asarray(given, np.float32)
        if mode != "raw":
            want = want / np.float32(255.0)
        if mode == "standardize":
            want = (want - n.mean) / n.std
        assert x.dtype == np.float32 and x.flags.c_contiguous and np.array_equal(x, want)
        assert np.array_equal(given, before)  # normalised in a copy, never in place
