"""The collected drawings a person sees, grouped by the shape of their model input, so a
model is scored only on the drawings it can read: an MNIST run on the 28x28 ones, a
bundled-digits run on the 8x8 ones. Used by the race's leaderboard."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from digits_core.analysis.drawing_scores import score_drawings
from digits_core.store import drawings as dr

Inputs = dict[tuple[int, int], tuple[np.ndarray, np.ndarray]]  # shape -> (images, labels)


def inputs_by_shape(runs_dir: str | Path, drawings: list[dr.Drawing]) -> Inputs:
    """The model inputs and labels of `drawings` that read whole, per input shape."""
    groups: dict[tuple[int, int], tuple[list, list]] = {}
    for d in drawings:
        try:
            x = dr.model_input(runs_dir, d.id)
        except dr.DrawingStoreError:
            continue
        xs, ys = groups.setdefault(x.shape, ([], []))
        xs.append(x)
        ys.append(d.label)
    return {s: (np.stack(xs), np.asarray(ys, np.int64)) for s, (xs, ys) in groups.items()}


def visible_inputs(runs_dir: str | Path, owner: str, *, class_server: bool) -> Inputs:
    """What `owner` sees of the drawings store (`drawings.visible`), per input shape."""
    return inputs_by_shape(runs_dir, dr.visible(dr.list_drawings(runs_dir), owner, class_server=class_server))


def accuracy_on(run, inputs: Inputs, shape: tuple[int, int]) -> tuple[float | None, int]:
    """(accuracy, count) of `run` on the drawings of input `shape`; (None, 0) with none."""
    if shape not in inputs:
        return None, 0
    images, labels = inputs[shape]
    return score_drawings(run, images, labels).accuracy, len(labels)


__all__ = ["Inputs", "accuracy_on", "inputs_by_shape", "visible_inputs"]
