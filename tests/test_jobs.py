"""SessionJobs: the jobs of a closed browser tab stop after the grace period, no sooner."""

from digits_core.config import DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.jobs import SessionJobs
from digits_core.jobs import TrainingJob


class FakeJob:
    def __init__(self):
        self.done = False
        self.stopped = 0

    def stop(self):
        self.stopped += 1
        self.done = True


class Clock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def test_gone_session_is_stopped_after_grace_only():
    clock = Clock()
    reg = SessionJobs(grace=10, clock=clock)
    mine, other = FakeJob(), FakeJob()
    reg.register("a", mine)
    reg.register("b", other)
    alive = {"a": False, "b": True}

    assert reg.sweep(alive.get) == []  # first seen gone: the grace starts now
    clock.t = 9.9
    assert reg.sweep(alive.get) == []
    clock.t = 10.0
    assert reg.sweep(alive.get) == [mine]
    assert mine.stopped == 1 and other.stopped == 0
    assert reg.sessions() == {"b"}
    clock.t = 100.0
    assert reg.sweep(alive.get) == []  # the live session keeps its job forever
    assert other.stopped == 0


def test_session_that_comes_back_within_grace_keeps_its_job():
    clock = Clock()
    reg = SessionJobs(grace=10, clock=clock)
    job = FakeJob()
    reg.register("a", job)
    reg.sweep(lambda sid: False)
    clock.t = 8
    reg.sweep(lambda sid: True)  # reconnected: the clock starts over next time it goes
    clock.t = 15
    assert reg.sweep(lambda sid: False) == []
    clock.t = 24.9
    assert reg.sweep(lambda sid: False) == []
    clock.t = 25
    assert reg.sweep(lambda sid: False) == [job]


def test_ended_jobs_are_forgotten_and_never_stopped():
    reg = SessionJobs(grace=0)
    job = FakeJob()
    reg.register("a", job)
    reg.register("a", job)  # registering twice keeps one entry
    assert len(reg) == 1
    job.done = True
    assert reg.sweep(lambda sid: False) == []
    assert len(reg) == 0 and job.stopped == 0


def test_watchdog_thread_stops_a_real_training_job():
    exp = Experiment(
        data=DataConfig(dataset="digits"),
        model=ModelConfig(family="numpy-mlp", hidden=[16]),
        train=TrainConfig(epochs=1000, batch_size=32),
    )
    job = TrainingJob(exp).start()
    reg = SessionJobs(grace=0.2)
    reg.register("closed-tab", job)
    reg.watch(lambda sid: False, every=0.05)
    assert job.wait(timeout=20), "the watchdog did not stop the job"
    assert job.snapshot().status == "stopped"
    assert len(reg) == 0


def test_preflight_accepts_every_preset_and_refuses_a_memory_hog():
    import pytest

    from digits_core.config import ConvBlock
    from digits_core.errors import ConfigError
    from digits_core.jobs import preflight
    from digits_core.models import count_params
    from digits_core.presets import ALL

    for preset in ALL.values():
        exp = preset.build()
        assert preflight(exp) == count_params(
            exp.model, (28, 28) if exp.data.dataset == "mnist" else (8, 8)
        )
    hog = Experiment(
        data=DataConfig(dataset="mnist", split="official"),
        model=ModelConfig(family="cnn", hidden=[64], conv=[ConvBlock(128, 3, 1, True, 1)] * 2),
        train=TrainConfig(batch_size=4096),
    )
    with pytest.raises(ConfigError, match="MB of memory"):
        preflight(hog)
    hog.train.batch_size = 8
    hog.model.conv = [ConvBlock(32, 3, 1, True, 2)]
    assert preflight(hog) > 0
    with pytest.raises(ConfigError, match="learning rate"):
        hog.train.lr = -1
        preflight(hog)
