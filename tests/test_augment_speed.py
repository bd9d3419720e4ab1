"""The augmentation's speed-ups change nothing a model sees: the thinning against the
textbook rules, the centre lines kept in memory and on disk, and the weight average."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis.extra import numpy as hnp

from digits_core.config import ConvBlock, DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.data.datasets import Dataset, Normalizer
from digits_core.errors import ConfigError
from digits_core.images.augment import _upsample, augment_batch, centre_lines, thin_batch
from digits_core.nn.models import build_model
from digits_core.training import centre_cache
from digits_core.training.learners import make_learner
from digits_core.training.train import train


def zhang_suen(mask: np.ndarray) -> np.ndarray:
    """Zhang and Suen (1984), pixel by pixel, as the paper states it: the oracle."""
    img = np.pad(mask.astype(np.uint8), 1)
    while True:
        changed = False
        for step in (0, 1):
            gone = []
            for r in range(1, img.shape[0] - 1):
                for c in range(1, img.shape[1] - 1):
                    if not img[r, c]:
                        continue
                    p2, p3, p4, p5 = img[r - 1, c], img[r - 1, c + 1], img[r, c + 1], img[r + 1, c + 1]
                    p6, p7, p8, p9 = img[r + 1, c], img[r + 1, c - 1], img[r, c - 1], img[r - 1, c - 1]
                    ring = [p2, p3, p4, p5, p6, p7, p8, p9, p2]
                    b = sum(ring[:8])
                    a = sum(ring[k] == 0 and ring[k + 1] == 1 for k in range(8))
                    if step == 0:
                        side = p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
                    else:
                        side = p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
                    if 2 <= b <= 6 and a == 1 and side:
                        gone.append((r, c))
            for r, c in gone:
                img[r, c] = 0
            changed |= bool(gone)
        if not changed:
            return img[1:-1, 1:-1].astype(bool)


@settings(max_examples=25, deadline=None)
@given(hnp.arrays(np.bool_, (3, 12, 12)))
def test_thinning_follows_zhang_and_suen(masks):
    out = thin_batch(torch.from_numpy(masks).unsqueeze(1))[:, 0].numpy()
    for got, mask in zip(out, masks):
        assert np.array_equal(got, zhang_suen(mask))


def test_a_thick_stroke_thins_to_a_line_inside_it():
    mask = torch.zeros(2, 1, 28, 28, dtype=torch.bool)
    mask[0, 0, 4:24, 12:17] = True  # a bar 5 px wide
    mask[1, 0, 10:15, 3:25] = True
    lines = thin_batch(mask)
    assert not (lines & ~mask).any()
    assert (lines.sum((2, 3)) > 10).all()
    assert lines[0, 0, 4:24, 12:17].sum(1).max() <= 2  # about one pixel across


def test_the_elastic_field_is_bicubic_interpolation():
    coarse = torch.randn(5, 2, 4, 4, generator=torch.Generator().manual_seed(0))
    want = F.interpolate(coarse, size=(28, 28), mode="bicubic", align_corners=True)
    assert torch.allclose(_upsample(coarse, 28, 28), want, atol=1e-5)


@pytest.fixture
def inks():
    g = torch.Generator().manual_seed(1)
    x = torch.zeros(40, 28, 28)
    for i in range(40):  # a bar and a blob of random size and place each
        r, c, h, w = (int(v) for v in torch.randint(3, 12, (4,), generator=g))
        x[i, r : r + h + 6, c : c + 3 + i % 4] = 1.0
        x[i, r : r + 4, c : c + w + 4] = 0.6
    return x


def test_kept_centre_lines_give_the_same_batch(inks):
    labels = torch.arange(40) % 10
    lines = centre_lines(inks.unsqueeze(1))
    a = augment_batch(inks.unsqueeze(1), torch.Generator().manual_seed(5), strength=0.5, labels=labels)
    b = augment_batch(inks.unsqueeze(1), torch.Generator().manual_seed(5), strength=0.5, labels=labels,
                      centres=lines)
    assert torch.equal(a, b)


def test_centre_lines_are_found_once_and_kept_on_disk(inks, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path))
    centre_cache.forget()
    first = centre_cache.centre_lines_of(inks)
    assert torch.equal(first, centre_lines(inks.unsqueeze(1)))
    files = list((tmp_path / "derived").glob("centre-lines-*.npy"))
    assert len(files) == 1 and not list((tmp_path / "derived").glob("*.tmp"))

    centre_cache.forget()
    calls = []
    monkeypatch.setattr("digits_core.images.augment.thin_batch", lambda m: calls.append(m) or m)
    assert torch.equal(centre_cache.centre_lines_of(inks), first)  # read back, not thinned
    assert calls == []
    other = inks.clone()
    other[0, :, :] = 0
    other[0, 5:20, 5:9] = 1
    centre_cache.centre_lines_of(other)  # another set: another file, thinned
    assert calls and len(list((tmp_path / "derived").glob("centre-lines-*.npy"))) == 2


@pytest.mark.parametrize("damage", ["garbage", "wrong shape", "lines outside the ink", "empty", "truncated"])
def test_a_damaged_cache_file_is_found_anew(inks, tmp_path, monkeypatch, damage):
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path))
    centre_cache.forget()
    centre_cache.centre_lines_of(inks)  # writes the cache file that is then damaged
    want = centre_lines(inks.unsqueeze(1))  # the thinning itself, no cache involved
    (path,) = (tmp_path / "derived").glob("centre-lines-*.npy")
    if damage == "garbage":
        path.write_bytes(b"\x93NUMPY not really" * 10)
    elif damage == "wrong shape":
        np.save(path, np.zeros((3, 5), np.uint8))
    elif damage == "lines outside the ink":
        np.save(path, np.full((40, 98), 255, np.uint8))
    elif damage == "empty":
        path.write_bytes(b"")
    else:  # the header promises the right array, the bytes stop short
        path.write_bytes(path.read_bytes()[:-100])
    centre_cache.forget()
    assert torch.equal(centre_cache.centre_lines_of(inks), want)
    centre_cache.forget()
    assert torch.equal(centre_cache.centre_lines_of(inks), want)  # and the file was mended


def test_an_unwritable_cache_only_costs_the_thinning(inks, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(blocker))
    centre_cache.forget()
    assert torch.equal(centre_cache.centre_lines_of(inks), centre_lines(inks.unsqueeze(1)))


# ---- weight averaging ----


def tiny_data(n=256, seed=0) -> Dataset:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 10, n)
    images = np.zeros((n, 16, 16), np.uint8)
    for i, k in enumerate(y):  # a class is a bar at its own place
        images[i, k : k + 4, 2 + k % 5 : 6 + k % 5] = 255
    return Dataset("mnist", images, y, images[:64], y[:64], Normalizer("unit", 255.0))


def cnn(average: float) -> Experiment:
    return Experiment(
        data=DataConfig(dataset="mnist"),
        model=ModelConfig(family="cnn", hidden=[16], conv=[ConvBlock(4, 3, 1, True, 2)]),
        train=TrainConfig(epochs=2, batch_size=32, lr=1e-2, weight_average=average, seed=0),
    )


def test_the_model_holds_the_moving_average_of_the_trained_weights():
    exp, data = cnn(0.9), tiny_data()
    model = build_model(exp.model, data.image_shape, seed=0, device="cpu")
    learner = make_learner(model, exp.train)
    assert learner.module is not model.module
    x, y = learner.prepare(data.x_train, data.labels_train)

    def weights(module) -> torch.Tensor:
        return torch.cat([t.flatten() for t in module.state_dict().values() if t.is_floating_point()])

    seen = [weights(model.module)]  # the initial weights, then each step's trained ones
    for _ in range(5):
        learner.step(x[:32], y[:32], 1e-2)
        seen.append(weights(learner.module).clone())
    held, trained = weights(model.module), seen[-1]
    # An average of the weights trained so far, whatever its weighting: every held value
    # lies within the range its weight took, and it is neither the start nor the last step.
    low, high = torch.stack(seen).min(0).values, torch.stack(seen).max(0).values
    assert bool(((held >= low - 1e-6) & (held <= high + 1e-6)).all())
    assert not torch.allclose(held, trained) and not torch.allclose(held, seen[0])


def test_without_averaging_the_model_is_what_the_optimiser_moves():
    exp, data = cnn(0.0), tiny_data()
    model = build_model(exp.model, data.image_shape, seed=0, device="cpu")
    assert make_learner(model, exp.train).module is model.module


def test_an_averaged_run_learns_and_its_test_accuracy_is_the_averages():
    exp, data = cnn(0.9), tiny_data()
    model = build_model(exp.model, data.image_shape, seed=0, device="cpu")
    events = list(train(model, data, exp.train))
    assert events[-1].status == "finished" and events[-1].test_acc > 0.9
    assert events[-1].test_acc == float((model.forward(data.x_test).argmax(1) == data.labels_test).mean())


@pytest.mark.parametrize("value", [-0.1, 1.0, 1.5])
def test_a_weight_average_outside_0_1_is_refused(value):
    with pytest.raises(ConfigError, match="weight_average"):
        cnn(value).validate()


def test_the_numpy_mlp_refuses_weight_averaging():
    exp = Experiment(data=DataConfig(dataset="digits"), model=ModelConfig(family="numpy-mlp"),
                     train=TrainConfig(weight_average=0.9))
    with pytest.raises(ConfigError, match="PyTorch"):
        exp.validate()


def test_without_the_pen_nothing_is_redrawn_or_flagged(inks, monkeypatch):
    calls = []
    monkeypatch.setattr("digits_core.images.augment.thin_batch", lambda m: calls.append(m) or m)
    monkeypatch.setattr("digits_core.images.augment.add_flag", lambda ink, r: calls.append(ink) or ink)
    ones = torch.ones(40, dtype=torch.long)
    plain = augment_batch(inks.unsqueeze(1), torch.Generator().manual_seed(2), strength=0.5, labels=ones,
                          pen=False)
    assert calls == [] and plain.shape == (40, 1, 28, 28)
    augment_batch(inks.unsqueeze(1), torch.Generator().manual_seed(2), strength=0.5, labels=ones)
    assert calls  # with the pen (the default), some are redrawn and some 1s get flags


def test_a_learner_without_the_pen_keeps_no_centre_lines():
    exp, data = cnn(0.0), tiny_data()
    exp.train.augment, exp.train.augment_pen = True, False
    learner = make_learner(build_model(exp.model, data.image_shape, seed=0, device="cpu"), exp.train)
    learner.prepare(data.x_train, data.labels_train)
    assert learner._centres is None
    exp.train.augment_pen = True
    learner = make_learner(build_model(exp.model, data.image_shape, seed=0, device="cpu"), exp.train)
    learner.prepare(data.x_train, data.labels_train)
    assert learner._centres is not None and learner._centres.shape == (256, 1, 16, 16)


def test_only_the_newest_files_of_lines_are_kept(inks, tmp_path, monkeypatch):
    monkeypatch.setenv("DIGITLAB_DATA_HOME", str(tmp_path))
    monkeypatch.setattr(centre_cache, "KEEP_FILES", 3)
    centre_cache.forget()
    for i in range(5):  # five different training sets
        other = inks.clone()
        other[0] = 0
        other[0, 2 + i : 20, 4:9] = 1
        centre_cache.centre_lines_of(other)
    assert len(list((tmp_path / "derived").glob("centre-lines-*.npy"))) == 3
