"""AppTest of the inside views on the Draw page (each view, for the three families and the
ready-made model), on Evaluate (a test image's saliency and landing), and their refusals:
an empty pad, a speck, a diverged model.

The pad is set the way the browser sets it (`{"drawing": <PNG data URL>}`), as in
test_app_analysis_pages.py; the view is chosen through its session-state key."""

import base64
import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from saved_runs import record
from sklearn.datasets import load_digits
from streamlit.testing.v1 import AppTest

from dashboard.inside_view import VIEWS
from digits_core.config import ConvBlock, DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.store.runs import load_run
from digits_core.training.jobs import run_experiment

PAGES = Path(__file__).resolve().parents[1] / "pages"
FAMILIES = {
    "numpy-mlp": ModelConfig(family="numpy-mlp", hidden=[32]),
    "torch-mlp": ModelConfig(family="torch-mlp", hidden=[32]),
    "cnn": ModelConfig(family="cnn", hidden=[16], conv=[ConvBlock(channels=4, kernel=3, padding=1, pool=2)]),
}


@pytest.fixture(scope="module", params=list(FAMILIES))
def run(request, tmp_path_factory):
    exp = Experiment(DataConfig(), FAMILIES[request.param], TrainConfig(epochs=2), name=request.param)
    return load_run(record(run_experiment(exp), tmp_path_factory.mktemp("runs")))


def _pad(rgba: np.ndarray) -> dict:
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    return {"drawing": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}


def _digit() -> np.ndarray:
    grey = Image.fromarray((load_digits().images[0] / 16 * 255).astype(np.float32), mode="F")
    ink = np.clip(np.pad(np.asarray(grey.resize((200, 200), Image.Resampling.BICUBIC)), 40), 0, 255).astype(np.uint8)
    return np.dstack([ink, ink, ink, np.full_like(ink, 255)])


def _draw(run, view: str | None, rgba=None) -> AppTest:
    """The Draw page reading `rgba` (a drawn digit) with `run`, or the ready-made model when None."""
    os.environ["DIGITLAB_RUNS"] = str(run.path.parent) if run is not None else tempfile.mkdtemp()
    at = AppTest.from_file(str(PAGES / "6_Draw.py"), default_timeout=90)
    at.run()
    at.session_state["draw_canvas"] = _pad(_digit() if rgba is None else rgba)
    if view is not None:
        at.session_state["inside_view"] = view
    return at.run()


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _html(at: AppTest) -> str:
    return " ".join(m.value for m in at.markdown)


@pytest.mark.parametrize("view", VIEWS)
def test_every_view_appears_for_every_family(run, view):
    at = _draw(run, view)
    _ok(at)
    html = _html(at)
    if view == VIEWS[0]:
        assert "inside-layer" in html and "logits" in html and "white = 0" in html
        if run.experiment.model.family == "cnn":
            assert "conv 1" in html and "pool 1" in html and "the filters that made them" in html
        assert "drive it hardest" in html
    elif view == VIEWS[1]:
        assert "towards" in html and "Red pixels pushed" in html
    elif view == VIEWS[2]:
        assert "1. canvas" in html and "normalised" in html
    else:
        assert "nearest test images" in html and "sits among" in html
        assert at.get("plotly_chart")


def test_the_ready_made_model_shows_every_view():
    for view in VIEWS:
        at = _draw(None, view)
        _ok(at)
    assert "nearest test images" in _html(at) or any("test set" in i.value for i in at.info)


def test_switching_off_centring_reads_the_uncentred_input():
    at = _draw(None, VIEWS[2])  # the ready-made MNIST model: the 8x8 pipeline has no switches
    at.session_state["inside_centre"] = False
    at.run()
    _ok(at)
    assert "With centring off, the model reads" in _html(at)


@pytest.mark.parametrize("what", ["empty", "speck"])
def test_an_empty_pad_or_a_speck_gets_the_usual_message_and_no_view(run, what):
    rgba = np.zeros((280, 280, 4), np.uint8)
    rgba[..., 3] = 255
    if what == "speck":
        rgba[100:104, 100:104, :3] = 255
    at = _draw(run, VIEWS[0], rgba)
    assert not at.exception
    assert "inside-layer" not in _html(at)
    assert at.info or at.warning


def test_a_diverged_model_says_so_in_every_view(run, tmp_path):
    state = {k: np.full_like(v, np.nan) for k, v in run.model.state_dict().items()}
    run.model.load_state_dict(state)
    folder = save_run_copy(run, tmp_path)
    for view in VIEWS:
        at = _draw(folder, view)
        assert not at.exception, [e.value for e in at.exception]


def save_run_copy(run, tmp_path):
    """The run saved again with its (changed) weights, in a runs folder of its own."""
    import shutil

    from digits_core.nn.models import save_weights, weights_file

    dest = tmp_path / "runs" / run.path.name
    shutil.copytree(run.path, dest)
    save_weights(run.model.state_dict(), dest / weights_file(run.experiment.model.family))
    return load_run(dest)


def test_evaluate_explains_a_chosen_test_image(run):
    os.environ["DIGITLAB_RUNS"] = str(run.path.parent)
    at = AppTest.from_file(str(PAGES / "4_Evaluate.py"), default_timeout=90).run()
    _ok(at)
    at.selectbox(key="inside_example").set_value(0).run()
    _ok(at)
    html = _html(at)
    assert "towards" in html and "nearest test images" in html


def test_presenter_mode_shows_every_view_larger():
    """Through the whole app (the presenter toggle lives in its sidebar), ready-made model."""
    os.environ["DIGITLAB_RUNS"] = tempfile.mkdtemp()
    at = AppTest.from_file(str(PAGES.parent / "streamlit_app.py"), default_timeout=90).run()
    at.switch_page("pages/6_Draw.py").run()
    at.session_state["draw_canvas"] = _pad(_digit())
    at.run()
    normal = _html(at)
    at.toggle(key="presenter").set_value(True).run()
    for view in VIEWS:
        at.session_state["inside_view"] = view
        at.run()
        _ok(at)
        if view == VIEWS[0]:
            assert len(_html(at)) > len(normal)  # maps drawn at twice the size: larger pictures


def test_an_uploaded_image_lands_among_the_test_digits_and_a_strip_is_refused(run):
    os.environ["DIGITLAB_RUNS"] = str(run.path.parent)
    buf = io.BytesIO()
    Image.fromarray(_digit()).convert("L").save(buf, format="PNG")
    at = AppTest.from_file(str(PAGES / "6_Draw.py"), default_timeout=90).run()
    at.session_state["inside_view"] = VIEWS[3]
    at.file_uploader[0].upload("digit.png", buf.getvalue(), "image/png")
    at.run()
    _ok(at)
    assert "nearest test images" in _html(at)
    strip = io.BytesIO()
    Image.fromarray(np.full((1, 4096), 255, np.uint8)).save(strip, format="PNG")
    at = AppTest.from_file(str(PAGES / "6_Draw.py"), default_timeout=90).run()
    at.session_state["inside_view"] = VIEWS[0]
    at.file_uploader[0].upload("strip.png", strip.getvalue(), "image/png")
    at.run()
    assert not at.exception
    assert "inside-layer" not in _html(at)
