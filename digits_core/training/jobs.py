"""One training run in a background thread that any thread can watch and stop.

`TrainingJob` runs `train.train()` in a thread, folds its events into a lock-guarded
`History` that anyone can snapshot, measures the run live (`monitor`) and, given a
`recorder.RunRecorder`, keeps its run folder up to date as it trains. It never touches a UI.
Deciding which jobs may run, and for whom, is `runner`'s business.
"""

from __future__ import annotations

import copy
import threading
import time

import numpy as np

from digits_core.config import Experiment
from digits_core.data.datasets import Dataset, load_dataset
from digits_core.errors import DigitLabError
from digits_core.nn.classifier import Classifier
from digits_core.nn.models import build_model, first_layer_weights
from digits_core.store.history import History
from digits_core.threads import ThreadShare, lower_thread_priority
from digits_core.training.learners import make_learner
from digits_core.training.monitor import Monitor
from digits_core.training.train import Done, Epoch, Start, Step, accuracy, steps_per_epoch, train

EPOCH_CHECKPOINT_GAP = 1.0  # seconds: epochs shorter than this do not each write a checkpoint


def record(h: History, ev: Start | Step | Epoch | Done) -> None:
    """Fold one training event into `h`."""
    if isinstance(ev, Start):
        if ev.step == 0:  # a continued run keeps the start of its first part
            h.start_loss = ev.loss
    elif isinstance(ev, Step):
        h.steps.append(ev.step)
        h.loss.append(ev.loss)
        h.step, h.epoch, h.total_steps = ev.step, ev.epoch, ev.total_steps
        h.images_per_s, h.eta = ev.images_per_s, ev.eta
        h.elapsed = h.elapsed_before + ev.elapsed
        h.steps_per_epoch = ev.steps_per_epoch
        if h.status != "stopping":
            h.status = "running"
    elif isinstance(ev, Epoch):
        h.epochs.append(ev.epoch)
        h.train_acc.append(ev.train_acc)
        h.test_acc.append(ev.test_acc)
        h.epoch_loss.append(ev.train_loss)
    else:
        h.status, h.message = ev.status, ev.message
        h.final_test_acc, h.eta = ev.test_acc, 0.0


class WatchedJob:
    """What every job has, wherever it trains: a lock-guarded `History` that any thread can
    snapshot, a stop flag that shows "stopping" at once, and the daemon thread that runs
    `_background` (a subclass's)."""

    slots = None  # runner.JobSlots, when the job waits for a slot

    def _setup(self) -> None:
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._history = History()
        self._thread: threading.Thread | None = None
        self.created = time.time()
        self.id = f"{int(self.created * 1000):x}"

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def start(self):
        if self._thread is not None:
            raise RuntimeError("a job can only be started once")
        self._thread = threading.Thread(target=self._background, name=f"job-{self.id}", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._history.active:
                self._history.status = "stopping"

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the job's thread ends; True if it did within `timeout`."""
        if self._thread is None or self._thread is threading.current_thread():
            return True
        self._thread.join(timeout)
        return not self._thread.is_alive()

    def snapshot(self) -> History:
        """A consistent copy of the history, safe to read from any thread."""
        with self._lock:
            h = History.from_dict(self._history.to_dict())
        if h.status == "queued" and self.slots is not None:
            pos = self.slots.position(self)
            if pos is not None:
                h.message = f"waiting for a free training slot ({pos} in queue)"
        return h

    def brief(self) -> tuple[str, float | None, float | None]:
        """(status, progress while it is active else None, the newest full-test accuracy or
        None): a one-line description without copying the whole history."""
        with self._lock:
            h = self._history
            return h.status, h.progress if h.active and h.total_steps else None, h.newest_test_acc

    @property
    def done(self) -> bool:
        return not self.snapshot().active

    def _set(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self._history, k, v)

    def _background(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError


class TrainingJob(WatchedJob):
    """One training run in a background thread: start, watch (`snapshot`), stop.

    The thread loads the data, builds the model (or takes a saved run's, to continue it)
    and consumes `train()`. `stop()` shows "stopping" at once and ends the run within one
    batch; the model is kept as trained so far and its test accuracy measured after.
    """

    def __init__(
        self,
        experiment: Experiment,
        *,
        data: Dataset | None = None,
        slots=None,
        recorder=None,
        resume=None,
        extra_epochs: int = 0,
        on_event=None,
        on_done=None,
        stop_event=None,
    ):
        experiment.validate()
        self.experiment = experiment
        self.data = data
        self.model: Classifier | None = None
        self.learner = None
        self.monitor: Monitor | None = None
        self.initial_first_layer: np.ndarray | None = None
        self.slots = slots
        self.recorder = recorder  # recorder.RunRecorder, or None for an in-memory run
        self.resume = resume  # a runs.Run to train further, or None
        self.extra_epochs = extra_epochs
        self.on_event = on_event  # called in the job's thread with every event
        self.on_done = on_done  # called in the job's thread when it ends, however it ends
        self._setup()
        if stop_event is not None:
            # Anything with set/is_set: a worker process trains with its pool's shared Event,
            # so the server's Stop reaches the batch loop without a message round trip.
            self._stop = stop_event
        if resume is not None:
            self._history = History.from_dict(resume.history.to_dict())
            self._history.status, self._history.final_test_acc = "queued", None
            self._history.elapsed_before = self._history.elapsed

    @property
    def name(self) -> str:
        """The run's folder name when it has one, else the job id."""
        return self.recorder.path.name if self.recorder is not None else self.id

    def optimizer_state(self) -> dict[str, np.ndarray]:
        return self.learner.state_dict() if self.learner is not None else {}

    def _background(self) -> None:
        lower_thread_priority()
        self._run()

    def _run(self) -> None:
        acquired = False
        try:
            if self.slots is not None:
                acquired = self.slots.acquire(self)
                if not acquired:
                    self._set(status="stopped", message="stopped before it started")
                    return
            self._set(status="loading", message="loading data and building the model")
            self._prepare()
            self._set(status="running", message="training")
            self._train()
        except DigitLabError as e:
            self._set(status="failed", message=str(e))
        except MemoryError:
            self._set(status="failed", message="out of memory: try a smaller model, batch or subset")
        except Exception as e:  # the UI shows it; the thread must never die silently
            self._set(status="failed", message=f"{type(e).__name__}: {e}")
        finally:
            if acquired:
                self.slots.release(self)
            self._save()
            if self.on_done is not None:
                self.on_done(self)

    def _prepare(self) -> None:
        exp = self.experiment
        if self.data is None:
            self.data = load_dataset(exp.data)
        if self.resume is not None:
            self.model = self.resume.model
            self.initial_first_layer = self.resume.first_layer_before
        else:
            self.model = build_model(exp.model, self.data.image_shape, seed=exp.train.seed,
                                     device=exp.train.device)
            self.initial_first_layer = first_layer_weights(self.model)
        per_epoch = steps_per_epoch(len(self.data.labels_train), exp.train)
        self.monitor = Monitor(self.data, per_epoch, seed=exp.data.seed, tsne=exp.train.live_embedding)
        if self.recorder is not None:
            self.recorder.begin(self.model, self.data, self.initial_first_layer)
            self._set(warning=self.recorder.error)
        self._frame(self._history.step, charged=True)

    def _train(self) -> None:
        exp, h = self.experiment, self._history
        tc = exp.train
        if self.resume is not None:  # the new epochs only, counted on from the old ones
            tc = copy.deepcopy(tc)
            tc.epochs = self.extra_epochs
        self.learner = make_learner(self.model, tc)
        if self.resume is not None and self.resume.optimizer_state:
            self.learner.load_state_dict(self.resume.optimizer_state)
        events = train(self.model, self.data, tc, learner=self.learner, stop=self._stop,
                       step_offset=h.step, epoch_offset=len(h.epochs),
                       start_loss=self._first_loss() if self.resume is not None else None)
        if not exp.model.kind.torch:
            self._follow(events)
            return
        # This thread's torch threads, its share of the cores: picked once (a continued run
        # keeps the count it recorded), so the curve does not follow the machine's load.
        with ThreadShare(h.threads or tc.threads) as share:
            self._set(threads=share.threads)
            self._follow(events)

    def _first_loss(self) -> float | None:
        """The loss the run began at: its recorded start, else (saved before that was kept)
        its first step's."""
        h = self._history
        return h.start_loss if h.start_loss is not None else (h.loss[0] if h.loss else None)

    def _follow(self, events) -> None:
        h = self._history
        for ev in events:
            with self._lock:
                record(h, ev)
            if isinstance(ev, Step):
                self._measure(ev)
            elif isinstance(ev, Epoch):
                if self.monitor.framing.due(h.step, ev.elapsed):
                    self._frame(h.step, elapsed=ev.elapsed)
                if self.recorder is not None and self.recorder.due(EPOCH_CHECKPOINT_GAP):
                    self._save(background=True)
            if self.on_event is not None:
                self.on_event(ev)
            if isinstance(ev, Done) and ev.status == "stopped":
                # Measured after the UI already shows "stopped": a Stop never waits for it.
                acc = accuracy(self.model, self.data.x_test, self.data.labels_test)
                self._set(final_test_acc=acc)
            if isinstance(ev, Done) and ev.status != "diverged":
                self._frame(h.step)

    def _measure(self, ev: Step) -> None:
        """The live accuracy and embedding frames, as often as their budgets allow."""
        m = self.monitor
        if m.probes.due(ev.step, ev.elapsed):
            t0 = time.perf_counter()
            p = m.probe(self.model, ev.step, ev.train_acc)
            with self._lock:
                self._history.probe_steps.append(p.step)
                self._history.probe_test_acc.append(p.test_acc)
                self._history.probe_train_acc.append(p.train_acc)
            step_s = self.experiment.train.batch_size / ev.images_per_s if ev.images_per_s > 0 \
                else ev.elapsed
            expected = m.fit_probe(time.perf_counter() - t0, step_s)
            # the first probe pays the model's first inference at that size (a warm-up): its
            # cost would space the second far apart; the next probe measures the real one
            m.probes.done(ev.step, ev.elapsed, expected if len(self._history.probe_steps) > 1 else 0.0)
        if m.framing.due(ev.step, ev.elapsed):
            self._frame(ev.step, elapsed=ev.elapsed)
        if self.recorder is not None and self.recorder.due():
            self._save(background=True)

    def _frame(self, step: int, *, elapsed: float | None = None, charged: bool = False) -> None:
        """A frame of the model as it is at `step`. With `elapsed` (seconds into this
        segment's training) its cost spaces the next one (`Cadence.done`); `charged`: the
        frame before the first step, whose cost the first frame in training waits out too."""
        if self.monitor is None or self.model is None:
            return
        if self.monitor.frames.steps and self.monitor.frames.steps[-1] == step:
            return
        t0 = time.perf_counter()
        frame = self.monitor.frame(self.model, step)
        if elapsed is not None or charged:
            self.monitor.framing.done(step, elapsed or 0.0, time.perf_counter() - t0)
        if frame is not None:
            with self._lock:
                self.monitor.frames.add(*frame)
                self._history.frames = len(self.monitor.frames)

    def frames(self) -> dict[str, np.ndarray] | None:
        """The embedding frames so far, as `monitor.Frames.to_arrays` gives them."""
        if self.monitor is None:
            return None
        with self._lock:
            return self.monitor.frames.to_arrays()

    def _save(self, *, background: bool = False) -> None:
        """A checkpoint of the run folder (when there is one and a model to save); while it
        trains, written by the recorder's writer thread (`background`), off the training path."""
        if self.recorder is None:
            return
        h = self.snapshot()
        if self.model is None:
            self.recorder.mark(h)
            return
        frames = self.frames() if self.monitor is not None else None
        self.recorder.checkpoint(self.model, h, optimizer=self.optimizer_state(), snapshots=frames,
                                 background=background)
        self._set(warning=self.recorder.error)


def run_experiment(
    experiment: Experiment, *, data: Dataset | None = None, recorder=None, on_event=None
) -> TrainingJob:
    """Train synchronously in the calling thread (CLI, tests, benchmark); returns the ended job."""
    job = TrainingJob(experiment, data=data, recorder=recorder, on_event=on_event)
    job._thread = threading.current_thread()
    job._run()
    return job


__all__ = ["TrainingJob", "WatchedJob", "record", "run_experiment"]
