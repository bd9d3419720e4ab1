"""The live accuracy probe keeps inside its budget by its size, not by skipping points."""

import numpy as np

from digits_core.config import DataConfig
from digits_core.data import load_dataset
from digits_core.monitor import PROBE_BUDGET, PROBE_MIN_IMAGES, PROBE_START_IMAGES, Monitor


def test_a_costly_probe_shrinks_to_fit_its_budget_and_a_cheap_one_grows_back():
    data = load_dataset(DataConfig(dataset="digits", test_fraction=0.5))
    m = Monitor(data, steps_per_epoch=48, seed=0)
    n0 = m.probe_n
    assert n0 == min(PROBE_START_IMAGES, len(m.y_probe))
    assert sorted(m.probe_idx) == sorted(set(m.probe_idx))  # the same images, shuffled
    gap = m.probes.step_gap  # 6 steps: 8 probes an epoch
    # A probe as costly as two training steps: far over 4 % of six steps.
    expected = m.fit_probe(cost_s=2.0, step_s=1.0)
    assert m.probe_n == max(PROBE_MIN_IMAGES, int(n0 * PROBE_BUDGET * gap / 2.0))
    assert np.isclose(expected, 2.0 * m.probe_n / n0)
    # Cheap ones: the subset grows back, doubling at most, up to every probe image.
    for _ in range(10):
        m.fit_probe(cost_s=1e-4, step_s=1.0)
    assert m.probe_n == len(m.y_probe)
