"""Teaching a model people's drawings: drawings it misread are read right afterwards, MNIST
test holds (within 0.1 points), the source is untouched and the taught run is the person's."""

import hashlib

import numpy as np
import pytest
from hard_drawn_digits import make_hard_set
from waiting import wait_for

from digits_core.analysis.drawing_scores import read_inputs
from digits_core.errors import RunError
from digits_core.images.drawing import canvas_to_image
from digits_core.serve.runner import JobRunner
from digits_core.store.pretrained import READY_MADE, load_ready_made
from digits_core.store.runs import load_run
from digits_core.training.teach import compare, repeats, taught_info, teach


def _digest(folder) -> str:
    return hashlib.sha256(b"".join(p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file())).hexdigest()


def test_repeats_make_a_few_drawings_count_and_many_not_swamp_mnist():
    assert repeats(0) == 0
    assert repeats(3) > repeats(100) >= 1
    assert repeats(100_000) == 1


@pytest.fixture(scope="module")
def misread():
    """Procedural drawings (tests/hard_drawn_digits.py) the ready-made model misreads."""
    ready = load_ready_made()
    hard = make_hard_set(1, 400)
    x = np.stack([canvas_to_image(r, "mnist") for r, _, _ in hard])
    y = np.array([label for _, label, _ in hard])
    bad = np.flatnonzero(read_inputs(ready, x) != y)
    assert len(bad) >= 3
    return x[bad], y[bad], np.delete(x, bad, 0), np.delete(y, bad)


def test_taught_drawings_are_read_right_afterwards_and_mnist_holds(tmp_path, mnist_dir, misread):
    ready = load_ready_made()
    before = _digest(READY_MADE)
    x, y, x_ok, y_ok = misread
    runner = JobRunner(tmp_path, max_jobs=1)
    name = teach(runner, ready, x, y, owner="me", person="Ada", mnist_dir=str(mnist_dir))
    job = runner.job(name)
    assert wait_for(lambda: job.wait(0), timeout=600)
    assert job.snapshot().status == "finished", job.snapshot().message
    after = load_run(tmp_path / name)
    c = compare(ready, after, x, y)
    assert c.drawings_before == 0.0 and c.drawings_after == 1.0
    assert not c.mnist_dropped, (c.mnist_before, c.mnist_after)
    assert (read_inputs(after, x_ok) == y_ok).mean() >= 0.99  # the others it read are still read
    assert after.meta["owner"] == "me" and taught_info(after.path)["drawings"] == len(y)
    assert len(after.history.epochs) == len(ready.history.epochs) + 1
    assert _digest(READY_MADE) == before  # the ready-made model is never changed


def test_nothing_to_teach_says_so_and_leaves_no_folder(tmp_path, mnist_dir):
    runner = JobRunner(tmp_path)
    with pytest.raises(RunError, match="no drawings to teach"):
        teach(runner, load_ready_made(), np.zeros((0, 28, 28), np.float32), np.zeros(0, np.int64),
              owner="me", mnist_dir=str(mnist_dir))
    assert list(tmp_path.iterdir()) == []


def test_an_8x8_model_is_not_taught_28x28_drawings(tmp_path, tiny_job):
    from saved_runs import record

    run = load_run(record(tiny_job, tmp_path))
    with pytest.raises(RunError, match="needs an MNIST model"):
        teach(JobRunner(tmp_path), run, np.zeros((2, 28, 28), np.float32), np.zeros(2, np.int64), owner="me")


def test_a_drawing_score_counts_each_cell_and_class(misread):
    from digits_core.analysis.drawing_scores import score_drawings

    x, y, x_ok, y_ok = misread
    s = score_drawings(load_ready_made(), np.concatenate([x, x_ok[:20]]), np.concatenate([y, y_ok[:20]]))
    assert s.confusion.sum() == len(y) + 20 and np.trace(s.confusion) == 20
    assert s.accuracy == pytest.approx(20 / (len(y) + 20))
    t, p = int(y[0]), int(s.preds[0])
    assert 0 in s.cell(t, p) and s.confusion[t, p] == len(s.cell(t, p))
    assert np.isnan(s.per_class[[c for c in range(10) if c not in s.labels]]).all()
