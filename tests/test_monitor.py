"""The live accuracy probe keeps inside its budget by its size, not by skipping points."""

from hypothesis import given, settings
from hypothesis import strategies as st

from digits_core.config import DataConfig
from digits_core.data.datasets import load_dataset
from digits_core.training.monitor import PROBE_MIN_IMAGES, PROBE_SIZE_BUDGET, Monitor

DIGITS = load_dataset(DataConfig(dataset="digits", test_fraction=0.5))


@given(per_image_s=st.floats(1e-7, 1e-1), step_s=st.floats(1e-4, 1.0))
@settings(max_examples=200, deadline=None)
def test_a_probe_settles_inside_its_share_of_training_time_or_at_its_floor(per_image_s, step_s):
    """Whatever a probe image and a training step cost, after a few probes the live probe
    takes at most its share (PROBE_SIZE_BUDGET) of the training time between two probes,
    or is at its floor of PROBE_MIN_IMAGES; it is never needlessly small (within 2x of the
    size that would fit), and it only ever uses the fixed subset's images."""
    m = Monitor(DIGITS, steps_per_epoch=48, seed=0)
    assert sorted(m.probe_idx) == sorted(set(m.probe_idx))  # the same images, shuffled
    between = m.probes.step_gap * step_s  # training seconds from one probe to the next
    for _ in range(20):
        m.fit_probe(cost_s=per_image_s * m.probe_n, step_s=step_s)
    cost, fits = per_image_s * m.probe_n, PROBE_SIZE_BUDGET * between / per_image_s
    assert PROBE_MIN_IMAGES <= m.probe_n <= len(m.y_probe)
    assert cost <= PROBE_SIZE_BUDGET * between * 1.01 or m.probe_n == PROBE_MIN_IMAGES
    assert m.probe_n >= min(fits / 2, len(m.y_probe))


def test_a_costly_probe_shrinks_at_once_and_a_cheap_one_grows_back():
    m = Monitor(DIGITS, steps_per_epoch=48, seed=0)
    n0 = m.probe_n
    m.fit_probe(cost_s=2.0, step_s=1.0)  # one probe as costly as two training steps
    assert m.probe_n == PROBE_MIN_IMAGES < n0
    for _ in range(10):
        m.fit_probe(cost_s=1e-4, step_s=1.0)
    assert m.probe_n == len(m.y_probe)  # every image of the fixed subset


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
