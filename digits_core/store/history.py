"""A run's curves and status as events arrive: `History`, saved as history.json.

Plain data (no thread, no model): a training job folds its events into one
(`training.jobs.record`), the recorder writes it, the readers read it back, and the pages chart it.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

ACTIVE = ("queued", "loading", "running", "stopping")


@dataclass
class History:
    """Everything a chart needs, appended as events arrive. Saved as history.json."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    start_loss: float | None = None  # the loss before the first update (step 0); None: saved before it was kept
    epochs: list[int] = field(default_factory=list)
    train_acc: list[float] = field(default_factory=list)
    test_acc: list[float | None] = field(default_factory=list)
    epoch_loss: list[float] = field(default_factory=list)
    probe_steps: list[int] = field(default_factory=list)  # live accuracy, within epochs
    probe_test_acc: list[float] = field(default_factory=list)  # on a fixed test subset
    probe_train_acc: list[float] = field(default_factory=list)  # running, this epoch's batches
    steps_per_epoch: int = 0
    images_per_s: float = 0.0
    elapsed: float = 0.0
    eta: float | None = None
    step: int = 0
    total_steps: int = 0
    epoch: int = 0
    frames: int = 0  # embedding frames recorded so far
    threads: int = 0  # torch threads it trains on, picked when it started (0: NumPy, or not yet)
    elapsed_before: float = 0.0  # seconds trained before this segment (a continued run)
    status: str = "queued"  # queued | loading | running | stopping | finished | stopped | diverged | failed
    message: str = ""
    warning: str = ""  # e.g. the run folder could not be written
    final_test_acc: float | None = None

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def active(self) -> bool:
        return self.status in ACTIVE

    @property
    def newest_test_acc(self) -> float | None:
        """The final test accuracy, else the last epoch end's (the full test set); None yet."""
        if self.final_test_acc is not None:
            return self.final_test_acc
        return next((a for a in reversed(self.test_acc) if a is not None), None)

    def loss_curve(self) -> tuple[list[int], list[float]]:
        """(steps, loss) from step 0 when the starting loss is known: a diverged run's curve
        begins where it started, not after the blow-up (an older run from its first step)."""
        if self.start_loss is None:
            return self.steps, self.loss
        return [0, *self.steps], [self.start_loss, *self.loss]

    def to_dict(self) -> dict:
        return {k: copy.copy(v) for k, v in self.__dict__.items()}

    @classmethod
    def from_dict(cls, d: dict) -> History:
        h = cls()
        for k, v in d.items():
            if hasattr(h, k) and not k.startswith("_"):
                setattr(h, k, v)
        return h


__all__ = ["ACTIVE", "History"]
