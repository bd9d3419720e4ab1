"""The live accuracy probe keeps inside its budget by its size, not by skipping points."""

import itertools

import numpy as np
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


def test_one_slow_probe_does_not_silence_the_rest_of_a_short_run():
    """'Train a good model fast' drew its live accuracy to epoch 8 of 15: a probe that lost
    the core to the browser measured ten times its cost, and spaced the next past the end."""
    from digits_core.training.monitor import Cadence

    c = Cadence(45, per_epoch=8, every_s=2.0, budget=0.025)  # every 5 steps, 2.5 % of the time
    t, taken = 0.0, []
    for step in range(1, 676):  # 15 epochs of 45 steps, 20 ms each
        t += 0.02
        if c.due(step, t):
            taken.append(step)
            cost = 0.5 if len(taken) == 3 else 0.01  # the third lost the core for half a second
            t += cost
            c.done(step, t, cost)
    assert taken[-1] > 675 - 45  # live points in the last epoch
    gaps = np.diff(taken[3:])
    assert gaps.max() < 4 * np.median(gaps)


def test_the_frame_before_training_spaces_the_first_frame_in_training():
    """The start frame (a full t-SNE, the costliest) counts against the frame budget: when
    the first step comes, the frame schedule already holds its cost, as the start of the
    segment; and the frames still come, each with its t-SNE."""
    from digits_core.config import Experiment, ModelConfig, TrainConfig
    from digits_core.training.jobs import TrainingJob
    from digits_core.training.train import Step

    data = load_dataset(DataConfig(dataset="digits"))
    seen = []
    exp = Experiment(DataConfig(dataset="digits"), ModelConfig(hidden=[16]),
                     TrainConfig(epochs=2, batch_size=64, live_embedding=True))
    job = TrainingJob(exp, data=data, on_event=lambda ev: seen.append(
        (job.monitor.framing.start, job.monitor.framing.spent - job.monitor.framing.spent_training))
        if isinstance(ev, Step) and not seen else None)
    job.start().wait(120)
    assert seen[0][0] == 0 and seen[0][1] > 0
    frames = job.frames()
    assert frames["steps"][0] == 0 and len(frames["tsne"]) == len(frames["steps"]) >= 2


def test_a_live_tsne_run_takes_its_frames_where_the_clusters_form():
    """S4's model and training on the bundled digits, one short epoch: at least four t-SNE
    frames in the first quarter of the epoch (a frame every twelfth of it caught the random
    start and then finished clusters), more than in its last quarter, and one at its end."""
    from digits_core.presets import get_preset
    from digits_core.training.jobs import run_experiment

    exp = get_preset("S4").build()
    exp.data = DataConfig(dataset="digits")
    exp.train.batch_size = 8  # 1,437 images: 180 steps
    job = run_experiment(exp)
    frames = job.frames()
    steps, per_epoch = frames["steps"], job.snapshot().steps_per_epoch
    assert job.snapshot().status == "finished" and len(frames["tsne"]) == len(steps)
    in_training = steps[steps > 0]
    first_quarter = int((in_training <= per_epoch / 4).sum())
    assert first_quarter >= 4, steps
    assert first_quarter > int((in_training > 3 * per_epoch / 4).sum()) and steps[-1] == per_epoch


def simulate(schedule, steps: int, step_s: float, cost_s: float) -> list[int]:
    """The steps a schedule takes frames at over `steps` steps of `step_s` seconds each,
    every frame costing `cost_s` (the frame before training included)."""
    taken, t = [0], 0.0
    schedule.done(0, 0.0, cost_s)
    for step in range(1, steps + 1):
        t += step_s
        if schedule.due(step, t):
            taken.append(step)
            t += cost_s
            schedule.done(step, t, cost_s)
    return taken


def test_front_loaded_frames_spend_the_budget_on_a_log_scale_of_images_seen():
    from digits_core.training.frame_schedule import MIN_FIRST_EPOCH, FrontLoaded
    from digits_core.training.monitor import Cadence

    def schedule():
        return FrontLoaded(1200, budget=0.1, later=Cadence(1200, per_epoch=12, every_s=4.0, budget=0.1))

    # S4's epoch: 1,200 steps of 30 ms, frames of 0.2 s: 10 % of 36 s is 18 frames' worth.
    taken = simulate(schedule(), 1200, 0.03, 0.2)
    assert 12 <= len(taken) <= 19 and taken[-1] == 1200
    assert sum(s <= 300 for s in taken[1:]) >= len(taken) // 2  # most where the clusters form
    gaps = [b / a for a, b in itertools.pairwise(taken[1:])]
    assert max(gaps) < 3 * min(gaps)  # a steady ratio of images seen
    # Costly frames (1 s): the budget affords 3; the few the demo needs are taken anyway.
    assert len(simulate(schedule(), 1200, 0.03, 1.0)) == MIN_FIRST_EPOCH
