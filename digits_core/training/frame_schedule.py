"""When a live t-SNE frame is taken: front-loaded, where the picture changes.

A network's last layer changes most in its first few hundred images: S4's embedding goes
from a random blob to finished clusters within a fraction of its one epoch. Frames spaced
evenly in time caught the blob and then the clusters, never the minutes between. So in a
segment's first epoch the frames are spaced by images seen on a log scale: each frame comes
once the images seen since the segment began have grown by one factor, the factor chosen
after every frame so that the frames the budget still affords reach the epoch's end. The
budget is a share of the epoch's projected training time (known after the first steps);
a few frames are taken whatever it says (`MIN_FIRST_EPOCH`), since they are the demo. Past
the first epoch the frames come at the steady `Cadence` of the monitor.
"""

from __future__ import annotations

import math
from typing import Protocol

FIRST_FRACTION = 1 / 128  # the first frame in training after this share of the epoch...
MIN_FIRST_EPOCH = 7  # ...and at least this many in the first epoch (4 of them in its first quarter)
MAX_FIRST_EPOCH = 24  # at most this many (S4's write-up drew 24 an epoch)


class Schedule(Protocol):
    def due(self, step: int, train_s: float) -> bool: ...
    def done(self, step: int, train_s: float, cost_s: float) -> None: ...


class FrontLoaded:
    """Frames on a log scale of images seen in a segment's first epoch, then `later`'s.

    `due(step, train_s)` and `done(step, train_s, cost_s)` as the monitor's `Cadence`; the
    segment begins at the step of its first `done` (the frame before training); `budget` is
    the share of the first epoch's training time its frames may take."""

    def __init__(self, steps_per_epoch: int, *, budget: float, later: Schedule):
        self.epoch_steps, self.budget, self.later = max(1, steps_per_epoch), budget, later
        self.start: int | None = None  # the segment's first step (its frame before training)
        self.spent = 0.0  # seconds the segment's frames took
        self.spent_training = 0.0  # ...of them, those inside its training time
        self.taken = 0  # frames in the segment's first epoch, the one before training included
        self.next = max(1, round(self.epoch_steps * FIRST_FRACTION))  # images seen, in steps

    def due(self, step: int, train_s: float) -> bool:
        n = step - (self.start or 0)
        if n >= self.epoch_steps and self.taken > 1:  # past the first epoch: the steady cadence
            return self.later.due(step, train_s)
        return n >= self.next

    def done(self, step: int, train_s: float, cost_s: float) -> None:
        self.later.done(step, train_s, cost_s)  # so that it spaces from the latest frame
        if self.start is None:
            self.start = step
        n = step - self.start
        self.spent += cost_s
        if n > 0:
            self.spent_training += cost_s
        self.taken += 1
        if n <= 0 or n >= self.epoch_steps:
            return
        step_s = max(train_s - self.spent_training, 1e-9) / n  # training alone, per step
        afford = (self.budget * step_s * self.epoch_steps - self.spent) / max(cost_s, 1e-9)
        wanted = max(MIN_FIRST_EPOCH - self.taken, 0)
        left = int(min(max(afford, wanted), MAX_FIRST_EPOCH - self.taken))
        if left < 1:
            self.next = self.epoch_steps  # only the epoch's end
            return
        self.next = max(n + 1, math.ceil(n * (self.epoch_steps / n) ** (1 / left)))

    def __getattr__(self, name: str):  # last_step, last_t, cost: the latest frame's, as `later` keeps them
        return getattr(self.__dict__["later"], name)


__all__ = ["FIRST_FRACTION", "MAX_FIRST_EPOCH", "MIN_FIRST_EPOCH", "FrontLoaded"]
