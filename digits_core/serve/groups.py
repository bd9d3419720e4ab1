"""Runs started together and watched as one: a race, a sweep.

A group starts its experiments through `JobRunner.start_group` (one queue, one person's
limit, a worker each) and a daemon thread looks at them every `every` seconds until none is
busy, then once more: what the look does (sample the curves, stop the hopeless) is the
subclass's `look`. The runs stay ordinary runs; the group only remembers their names.
"""

from __future__ import annotations

import threading
import time

from digits_core.config import Experiment
from digits_core.serve.runner import JobRunner


class RunGroup:
    runner: JobRunner
    names: list[str]
    every: float = 0.25  # seconds between two looks
    _thread: threading.Thread | None = None

    def _launch(self, experiments: list[Experiment], owner: str, person: str) -> None:
        self.names = self.runner.start_group(experiments, owner, person)
        self._started()
        self._thread = threading.Thread(target=self._watch, name=f"digitlab-{type(self).__name__}",
                                        daemon=True)
        self._thread.start()

    def _started(self) -> None:
        """Called once the runs have names, before the first look."""

    def look(self) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def _watch(self) -> None:
        while not self.done:
            self.look()
            time.sleep(self.every)
        self.look()  # the end as measured (a stopped run's whole-test accuracy)

    @property
    def done(self) -> bool:
        return bool(self.names) and not any(self.runner.busy(n) for n in self.names)

    def wait(self, timeout: float | None = None) -> bool:
        """Until every run has ended and the last look is taken; True if so within `timeout`."""
        if self._thread is not None:
            self._thread.join(timeout)
        return self.done and (self._thread is None or not self._thread.is_alive())

    def stop(self) -> None:
        for n in self.names:
            self.runner.stop(n)


__all__ = ["RunGroup"]
