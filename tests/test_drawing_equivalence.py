"""`canvas_to_image` gives exactly what it gave before it was made faster.

The canvas's preprocessing was rewritten for speed (issue 12: whole-pixel work on a
canvas's uint32 words, a one-gather thinning, speck labelling inside the ink's box); the
model sees the same numbers only if every output is the same. `tests/data/canvas_outputs.npz`
holds the outputs of the code before that rewrite (commit 7c98d71) for the drawings of
`cases()`: both drawn-digit generators, every input layout the function reads (RGBA with
the strokes in the colour or in the alpha, coloured ink, RGB, grey, float), both datasets.

Regenerate it only for a change that is meant to change the outputs, from the code that
should be pinned:

    .venv/bin/python tests/test_drawing_equivalence.py --write
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_digits

sys.path.insert(0, str(Path(__file__).resolve().parent))
from drawn_digits import STYLES, draw_digit  # noqa: E402
from hard_drawn_digits import make_hard_set  # noqa: E402

FIXTURE = Path(__file__).resolve().parent / "data" / "canvas_outputs.npz"
N_HARD = 30  # procedural drawings (tests/hard_drawn_digits.py), three of each class
N_WRITERS = 18  # the bundled 8x8 digits' writers, redrawn with a pen (tests/drawn_digits.py)


def cases() -> dict[str, np.ndarray]:
    """name -> a drawing, each read for both datasets. Seeded: the same on every run."""
    out = {}
    for i, (rgba, label, _) in enumerate(make_hard_set(12, N_HARD)):
        out[f"hard{i}-{label}"] = rgba
    digits = load_digits()
    rng = np.random.default_rng(12)
    for i in range(N_WRITERS):
        small = digits.images[i] / 16 * 255  # (8, 8) -> the 28x28 the generator expects
        image = np.kron(small, np.ones((3, 3)))
        image = np.pad(image, 2).astype(np.uint8)
        style = STYLES[i % len(STYLES)]
        out[f"writer{i}-{style}"] = draw_digit(image, rng, style)
    # the other layouts, from a few of the above
    for i in range(4):
        rgba = out[f"hard{i}-{i}"]
        ink = rgba[..., 0]
        out[f"rgb{i}"] = rgba[..., :3].copy()
        out[f"grey{i}"] = ink.copy()
        out[f"float{i}"] = rgba.astype(np.float32) / 255
        coloured = np.full(rgba.shape, 255, np.uint8)  # blue ink on white paper, opaque
        coloured[..., 0] = coloured[..., 1] = 255 - ink
        coloured[..., 2] = 255 - ink // 3
        out[f"blue-on-white{i}"] = coloured
        out[f"small{i}"] = np.ascontiguousarray(rgba[::4, ::4])  # 70x70: read at full size
        out[f"strided{i}"] = rgba[:, ::-1]  # a view, not contiguous
    return out


def outputs() -> dict[str, np.ndarray]:
    """'<case>/<dataset>' -> canvas_to_image's output; an empty (0,) array for None."""
    from digits_core.images.drawing import canvas_to_image

    res = {}
    for name, image in cases().items():
        for dataset in ("mnist", "digits"):
            out = canvas_to_image(image, dataset)
            res[f"{name}/{dataset}"] = np.zeros(0, np.float32) if out is None else out
    return res


@pytest.fixture(scope="module")
def pinned() -> dict[str, np.ndarray]:
    with np.load(FIXTURE) as f:
        return {k: f[k] for k in f.files}


def test_every_output_is_the_pinned_one(pinned):
    got = outputs()
    assert sorted(got) == sorted(pinned)
    differ = [k for k in got if got[k].shape != pinned[k].shape or not np.array_equal(got[k], pinned[k])]
    assert not differ, f"{len(differ)} of {len(got)} outputs changed, e.g. {differ[:5]}"


def test_the_pinned_outputs_are_real_readings(pinned):
    """A fixture of Nones would pin nothing: nearly every case is a digit, in range."""
    mnist = [v for k, v in pinned.items() if k.endswith("/mnist")]
    assert sum(v.shape == (28, 28) for v in mnist) >= len(mnist) - 2
    assert all(v.max() > 200 for v in mnist if v.size)
    digits = [v for k, v in pinned.items() if k.endswith("/digits") and v.size]
    assert all(v.shape == (8, 8) and v.max() <= 16 for v in digits)


def test_a_changed_step_is_caught(pinned, monkeypatch):
    """Negative control: a one-grey-level change in how the canvas is halved shows."""
    from digits_core.images import drawing

    halve = drawing._halve_canvas

    def darker(image):
        out = halve(image)
        return out if out is image else np.maximum(out, 1) - 1

    monkeypatch.setattr(drawing, "_halve_canvas", darker)
    got = outputs()
    assert any(not np.array_equal(got[k], pinned[k]) for k in got if k.endswith("/mnist"))


if __name__ == "__main__":
    if sys.argv[1:] != ["--write"]:
        sys.exit(__doc__)
    sys.path.append(str(Path(__file__).resolve().parents[1]))  # after PYTHONPATH: which code to pin
    FIXTURE.parent.mkdir(exist_ok=True)
    np.savez_compressed(FIXTURE, **outputs())
    print(f"wrote {FIXTURE} ({FIXTURE.stat().st_size // 1024} KiB)")
