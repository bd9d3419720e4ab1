"""The live accuracy probe keeps inside its budget by its size, not by skipping points."""

import numpy as np

from digits_core.config import DataConfig
from digits_core.data.datasets import load_dataset
from digits_core.training.monitor import (
    PROBE_MIN_IMAGES,
    PROBE_SIZE_BUDGET,
    PROBE_START_IMAGES,
    Monitor,
)


def test_a_costly_probe_shrinks_to_fit_its_budget_and_a_cheap_one_grows_back():
    data = load_dataset(DataConfig(dataset="digits", test_fraction=0.5))
    m = Monitor(data, steps_per_epoch=48, seed=0)
    n0 = m.probe_n
    assert n0 == min(PROBE_START_IMAGES, len(m.y_probe))
    assert sorted(m.probe_idx) == sorted(set(m.probe_idx))  # the same images, shuffled
    gap = m.probes.step_gap  # 6 steps: 8 probes an epoch
    # A probe as costly as two training steps: far over 4 % of six steps.
    expected = m.fit_probe(cost_s=2.0, step_s=1.0)
    assert m.probe_n == max(PROBE_MIN_IMAGES, int(n0 * PROBE_SIZE_BUDGET * gap / 2.0))
    assert np.isclose(expected, 2.0 * m.probe_n / n0)
    # Cheap ones: the subset grows back, doubling at most, up to every probe image.
    for _ in range(10):
        m.fit_probe(cost_s=1e-4, step_s=1.0)
    assert m.probe_n == len(m.y_probe)


def test_cadence_measures_by_steps_or_seconds_but_never_past_its_budget():
    from digits_core.training.monitor import Cadence

    c = Cadence(100, per_epoch=4, every_s=2.0, budget=0.1)  # every 25 steps or 2 s
    assert not c.due(24, 0.5) and c.due(25, 0.5)  # a quarter epoch...
    assert c.due(3, 2.0)  # ...or two seconds, whichever comes first
    c.done(25, 0.5, cost_s=0.2)  # a measurement that took 0.2 s: the next waits 2 s (10 %)
    assert not c.due(60, 2.4) and c.due(60, 2.5)
    c.done(60, 2.5, cost_s=0.01)  # only the latest cost counts: a warm-up does not space the rest
    assert c.due(85, 2.6)


def test_the_frame_before_training_spaces_the_first_frame_in_training():
    """The start frame (a full t-SNE, the costliest) counts against the frame budget: when
    the first step comes, the frame cadence already holds its cost, so the first frame in
    training waits cost / budget; and the frames still come, each with its t-SNE."""
    from digits_core.config import Experiment, ModelConfig, TrainConfig
    from digits_core.training.jobs import TrainingJob
    from digits_core.training.train import Step

    data = load_dataset(DataConfig(dataset="digits"))
    seen = []
    exp = Experiment(DataConfig(dataset="digits"), ModelConfig(hidden=[16]),
                     TrainConfig(epochs=2, batch_size=64, live_embedding=True))
    job = TrainingJob(exp, data=data, on_event=lambda ev: seen.append(
        (job.monitor.framing.last_step, job.monitor.framing.last_t, job.monitor.framing.cost))
        if isinstance(ev, Step) and not seen else None)
    job.start().wait(120)
    assert seen[0][:2] == (0, 0.0) and seen[0][2] > 0
    frames = job.frames()
    assert frames["steps"][0] == 0 and len(frames["tsne"]) == len(frames["steps"]) >= 2
