"""Writing an ended in-memory job as a run folder, the way a training job's recorder does
(`RunRecorder.begin`, then a checkpoint): for tests that share one trained job (`tiny_job`)
among many folders instead of training once per folder."""

from pathlib import Path

from digits_core.store.recorder import RunRecorder


def record(job, runs_dir, *, label: str = "", owner: str = "") -> Path:
    """A new run folder in `runs_dir` holding `job` as it ended; its path. Without `owner`
    (a session id, or a class server's owner key) it is no session's: not the person's own."""
    recorder = RunRecorder(runs_dir, job.experiment, label=label, owner=owner)
    recorder.begin(job.model, job.data, job.initial_first_layer)
    saved = recorder.checkpoint(job.model, job.snapshot(), optimizer=job.optimizer_state(),
                                snapshots=job.frames())
    assert saved and not recorder.error, recorder.error
    return recorder.path
