"""Every preset reaches the accuracy its write-up reported: the digits ones behind the
`presets` marker (`make test-presets`, which CI runs; S1c alone is 100 CNN epochs), the
MNIST ones, `best` included, behind `slow` (`make test-slow`, which CI runs). One learning test per family stays in the default suite
(test_training.py)."""

import pytest

from digits_core.presets import ALL, CLASSIC, PRESETS, get_preset
from digits_core.training.jobs import run_experiment

DIGITS = [n for n in CLASSIC if PRESETS[n].experiment.data.dataset == "digits"] + ["fast"]
MNIST = [n for n in ALL if ALL[n].build().data.dataset == "mnist"]  # `best` too (minutes)


def test_presets_are_the_eight_classics_and_valid():
    assert list(CLASSIC) == ["S1a", "S1b", "S1c", "S2a", "S2b", "S3", "S4", "S5"]
    for p in ALL.values():
        p.build().validate()
        assert p.description and p.floor > 0.5
    assert "bug" in PRESETS["S2b"].description  # the fix is said, not hidden
    assert PRESETS["S2b"].floor >= 0.97 > PRESETS["S2b"].reported


def test_build_returns_an_independent_copy():
    a = get_preset("S1a").build()
    a.train.lr = 123.0
    assert get_preset("S1a").build().train.lr != 123.0


@pytest.mark.presets
@pytest.mark.parametrize("name", DIGITS)
def test_digits_preset_reaches_its_reported_accuracy(name):
    p = get_preset(name)
    h = run_experiment(p.build()).snapshot()
    assert h.status == "finished", h.message
    assert h.final_test_acc >= p.floor, f"{name}: {h.final_test_acc:.4f} < {p.floor}"


@pytest.mark.slow
@pytest.mark.parametrize("name", MNIST)
def test_mnist_preset_reaches_its_reported_accuracy(name, mnist_dir):
    p = get_preset(name)
    e = p.build()
    e.data.mnist_dir = str(mnist_dir)
    h = run_experiment(e).snapshot()
    assert h.status == "finished", h.message
    assert h.final_test_acc >= p.floor, f"{name}: {h.final_test_acc:.4f} < {p.floor}"
