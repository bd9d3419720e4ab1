"""AppTest of the Evaluate, Embedding and Draw pages, with and without a model in the session.

The model is a tiny NumPy MLP trained once per module and saved as a run folder in a
runs folder of its own, which `$DIGITLAB_RUNS` points the pages at.

Two things AppTest cannot do the way a browser does, and how these tests stand in for them:
- The canvas is a custom component that AppTest does not render. The tests set the
  component's state (`st.session_state["draw_canvas"]`) to what the browser sends after a
  stroke, `{"drawing": <PNG data URL>}`, so the page's real code path runs:
  `sketchpad` -> `decode_data_url` (PNG decoding) -> `predict_canvas`. The shape of that
  state is the pad's own (dashboard/sketchpad.py).
- Plotly selection events need a browser; the Evaluate tests use the fallback selectboxes
  and the Embedding tests the "Misclassified point" selectbox.
"""

import base64
import copy
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from saved_runs import record
from sklearn.datasets import load_digits
from streamlit.testing.v1 import AppTest

from dashboard import state
from dashboard.pictures import png_data_url
from dashboard.plain import plain
from dashboard.state import NO_MODEL
from digits_core.analysis.evaluate import misclassified
from digits_core.analysis.predict import predict_canvas
from digits_core.config import ConvBlock, DataConfig, Experiment, ModelConfig, TrainConfig
from digits_core.data.datasets import MAX_VALUE
from digits_core.images.pictures import display_image
from digits_core.store.runs import load_run, run_dataset
from digits_core.training.jobs import run_experiment

PAGES = Path(__file__).resolve().parents[1] / "pages"
TIMEOUT = 300  # a deadline for one script run (minutes on a machine whose cores are taken)


def _saved(job, folder: Path):
    """Save `job` as the only run in `folder`; the loaded Run (what the pages will see)."""
    return load_run(record(job, folder))


@pytest.fixture(scope="module")
def job(tiny_job):
    return tiny_job


@pytest.fixture(scope="module")
def run(job, tmp_path_factory):
    return _saved(job, tmp_path_factory.mktemp("runs"))


def _app(page: str, run=None) -> AppTest:
    import os

    os.environ["DIGITLAB_RUNS"] = str(run.path.parent) if run is not None else os.environ["DIGITLAB_RUNS"]
    at = AppTest.from_file(str(PAGES / page), default_timeout=TIMEOUT)
    return at.run()


DRAW_PICKER = "Model that reads your drawing"


def _draw(run) -> AppTest:
    """The Draw page with `run` picked in its picker, as a person picks it: a saved run this
    session did not start is not theirs, so the page opens on the ready-made model."""
    at = _app("6_Draw.py", run)
    next(s for s in at.selectbox if s.label == DRAW_PICKER).set_value(run.path.name).run()
    return at


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _plotly_spec(at: AppTest, key: str) -> dict:
    charts = [c for c in at.get("plotly_chart") if c.proto.id.endswith(f"-{key}")]
    assert charts, f"no plotly chart {key!r}"
    return json.loads(charts[0].proto.spec)


def _array(value) -> np.ndarray:
    """A figure field as an array: Plotly serialises numpy arrays as base64 typed arrays."""
    if isinstance(value, dict) and "bdata" in value:
        a = np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
        shape = value.get("shape")
        return a.reshape([int(n) for n in str(shape).split(",")]) if shape else a
    return np.asarray(value)


@pytest.mark.parametrize("page", ["4_Evaluate.py", "5_Embedding.py"])
def test_page_without_a_model_shows_the_guard(page):
    at = _app(page)
    assert not at.exception
    assert [i.value for i in at.info] == [NO_MODEL]


def test_draw_without_a_run_reads_with_the_ready_made_model():
    at = _app("6_Draw.py")
    _ok(at)
    caption = " ".join(c.value for c in at.caption)
    assert f"Read by **{plain('ready-made MNIST CNN')}**: PyTorch CNN on mnist" in caption  # the label as text
    assert "the ready-made model that ships with Digit Lab" in caption
    at.session_state["draw_canvas"] = _canvas_state(_drawn_digit())
    at.run()
    _ok(at)
    assert [m.label for m in at.metric] == ["Prediction"]
    # every view the model read is shown (a second, narrowed one when it was unsure)
    [seen] = [m.value for m in at.markdown if 'class="model-input"' in m.value]
    from digits_core.store.pretrained import load_ready_made

    read = predict_canvas(load_ready_made(), _drawn_digit())
    assert seen.count("data:image/png;base64,") == len(read.views)
    assert ("also read a thinner copy of your drawing" in seen) == (len(read.views) == 2)


# ------------------------------------------------------------------ Evaluate


def test_evaluate_shows_accuracy_heatmap_and_a_cells_images(run):
    at = _app("4_Evaluate.py", run)
    _ok(at)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Test accuracy"] == f"{run.history.final_test_acc:.2%}"
    assert "Percent correct (strict)" not in metrics  # cross-entropy run
    spec = _plotly_spec(at, "confusion_chart")
    assert spec["data"][0]["type"] == "heatmap"
    assert _array(spec["data"][0]["z"]).sum() == int(metrics["Test images"])

    data = run_dataset(run)
    x = run.normalizer(data.images_test)
    worst = misclassified(run.model.probs(x), data.labels_test)[0]
    t, p = int(data.labels_test[worst]), int(run.model.probs(x[worst : worst + 1]).argmax())
    at.selectbox(key="cell_true").select(t)
    at.selectbox(key="cell_pred").select(p)
    at.run()
    _ok(at)
    images = at.get("image")
    assert images, "choosing a cell shows its images"
    captions = [img.caption for img in images[0].proto.imgs]
    assert captions[0].startswith(f"true {t} -> predicted {p} (")


def test_evaluate_empty_cell_says_so(run):
    at = _app("4_Evaluate.py", run)
    at.selectbox(key="cell_true").select(0)
    at.selectbox(key="cell_pred").select(0)
    at.run()
    _ok(at)
    assert at.get("image")  # the diagonal shows the least sure correct answers
    # find an empty off-diagonal cell from the chart itself
    z = _array(_plotly_spec(at, "confusion_chart")["data"][0]["z"]).copy()
    np.fill_diagonal(z, 1)
    t, p = map(int, np.argwhere(z == 0)[0])
    at.selectbox(key="cell_true").select(t)
    at.selectbox(key="cell_pred").select(p)
    at.run()
    _ok(at)
    assert any(f"No test image of a {t} was read as {p}" in i.value for i in at.info)


def test_evaluate_squared_error_run_adds_the_strict_rule(job, tmp_path):
    mse = copy.copy(job)
    mse.experiment = copy.deepcopy(job.experiment)
    mse.experiment.train.loss = "mse-softmax"
    at = _app("4_Evaluate.py", _saved(mse, tmp_path))
    _ok(at)
    assert "Percent correct (strict)" in {m.label for m in at.metric}
    strict = _plotly_spec(at, "strict_chart")
    assert strict["data"][0]["x"][-1] == "none" and len(strict["data"][0]["x"]) == 11


# ------------------------------------------------------------------ Embedding


def test_embedding_computes_pca_and_tsne(run):
    at = _app("5_Embedding.py", run)
    _ok(at)
    assert [i.value for i in at.info] == ["Choose the settings and press Compute."]
    frames = _plotly_spec(at, "embedding_live_fig")  # how the layer formed while it trained
    assert sum(len(_array(tr["x"])) for tr in frames["data"]) == 360
    assert "epoch 3.00" in frames["layout"]["title"]["text"]

    at.radio[0].set_value("PCA")
    at.button[0].click()
    at.run()
    _ok(at)
    spec = _plotly_spec(at, "embedding_chart")
    assert sum(len(_array(tr["x"])) for tr in spec["data"]) == 360  # the whole digits test split

    at.radio[0].set_value("t-SNE")
    at.slider[0].set_value(200)
    at.button[0].click()
    at.run()
    _ok(at)
    spec = _plotly_spec(at, "embedding_chart")
    assert sum(len(_array(tr["x"])) for tr in spec["data"]) == 200
    assert any(tr["marker"]["symbol"] == "x" for tr in spec["data"])  # mistakes are marked

    # revisiting the same settings needs no Compute: the result is kept in the session
    at.radio[0].set_value("PCA")
    at.slider[0].set_value(1000)
    at.run()
    _ok(at)
    assert sum(len(_array(tr["x"])) for tr in _plotly_spec(at, "embedding_chart")["data"]) == 360

    pick = [s for s in at.selectbox if s.label == "Misclassified point"][0]
    pick.select_index(0)
    at.run()
    _ok(at)
    caption = at.get("image")[-1].proto.imgs[0].caption
    assert caption.startswith("#") and "-> predicted" in caption


# ------------------------------------------------------------------ Draw


def _canvas_state(rgba: np.ndarray) -> dict:
    """What the Draw page's pad (dashboard/sketchpad.py) sends after a stroke: a PNG data URL."""
    buf = io.BytesIO()
    Image.fromarray(rgba).save(buf, format="PNG")
    url = "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()
    return {"drawing": url}


def _drawn_digit() -> np.ndarray:
    """A real handwritten 8x8 digit (the bundled set's first: a 0), smoothly upscaled to a
    white-on-black 280x280 canvas."""
    digits = load_digits()
    grey = Image.fromarray((digits.images[0] / 16 * 255).astype(np.float32), mode="F")
    big = np.asarray(grey.resize((200, 200), Image.Resampling.BICUBIC))
    ink = np.clip(np.pad(big, 40), 0, 255).astype(np.uint8)
    rgba = np.dstack([ink, ink, ink, np.full_like(ink, 255)])
    return rgba


def test_draw_reads_an_injected_drawing(run):
    rgba = _drawn_digit()
    at = _draw(run)
    _ok(at)
    assert any("Draw a digit" in i.value for i in at.info)  # nothing drawn yet
    at.session_state["draw_canvas"] = _canvas_state(rgba)
    at.run()
    _ok(at)
    assert [(m.label, m.value) for m in at.metric] == [("Prediction", "0")]  # the digit drawn
    [bars] = [m.value for m in at.markdown if 'class="digit-probs"' in m.value]
    shown = [float(p) for p in bars.split('data-probs="')[1].split('"')[0].split(",")]
    assert len(shown) == 10 and abs(sum(shown) - 1) < 1e-3 and int(np.argmax(shown)) == 0
    np.testing.assert_allclose(shown, predict_canvas(run, rgba).probs, atol=1e-6)  # the model's own
    assert bars.count("#d62728") == 1  # the chosen digit's bar, in red
    [seen] = [m.value for m in at.markdown if 'class="model-input"' in m.value]
    assert "data:image/png;base64," in seen and "what the model sees (8x8)" in seen


def test_draw_cleared_pad_asks_for_a_digit(run):
    """After the bin (or undoing every stroke) the pad sends None instead of a blank image."""
    at = _draw(run)
    at.session_state["draw_canvas"] = _canvas_state(_drawn_digit())
    at.run()
    assert at.metric
    at.session_state["draw_canvas"] = {"drawing": None}
    at.run()
    _ok(at)
    assert not at.metric
    assert any("Draw a digit" in i.value for i in at.info)


def test_draw_empty_canvas_asks_for_a_digit(run):
    at = _draw(run)
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    at.session_state["draw_canvas"] = _canvas_state(blank)
    at.run()
    _ok(at)
    assert not at.metric
    assert any("Draw a digit" in i.value for i in at.info)


def test_draw_accepts_an_uploaded_image_and_refuses_garbage(run):
    rgba = _drawn_digit()
    buf = io.BytesIO()
    Image.fromarray(rgba).convert("L").save(buf, format="PNG")
    at = _draw(run)
    at.file_uploader[0].upload("digit.png", buf.getvalue(), "image/png")
    at.run()
    _ok(at)
    assert [m.label for m in at.metric] == ["Prediction"]

    at = _draw(run)
    at.file_uploader[0].upload("broken.png", b"\x89PNG not really", "image/png")
    at.run()
    assert not at.exception
    assert at.error and "cannot read" in at.error[0].value
    # said where the reading would be (the result column), not under the folded tools
    result = at.columns[1]
    assert [e.value for e in result.error] == [at.error[0].value] and not result.info
    assert at.file_uploader[0].value is None  # cleared: the canvas reads drawings again
    at.session_state["draw_canvas"] = _canvas_state(rgba)
    at.run()
    assert [m.label for m in at.metric] == ["Prediction"]
    assert not at.error  # the refusal was said once: a new drawing clears it


def test_pages_render_a_cnn_run():
    """A CNN's first layer is conv kernels and its features the flattened conv output."""
    exp = Experiment(
        DataConfig(),
        ModelConfig(family="cnn", hidden=[16], conv=[ConvBlock(8, kernel=3, padding=1, pool=2)]),
        TrainConfig(epochs=1, device="cpu"),
    )
    cnn = _saved(run_experiment(exp), Path(os.environ["DIGITLAB_RUNS"]))
    at = _app("4_Evaluate.py", cnn)
    _ok(at)
    assert "convolution kernels" in " ".join(c.value for c in at.caption)
    at = _app("5_Embedding.py", cnn)
    at.radio[0].set_value("PCA")
    at.button[0].click()
    at.run()
    _ok(at)
    assert _plotly_spec(at, "embedding_chart")["data"]
    at = _draw(cnn)
    at.session_state["draw_canvas"] = _canvas_state(_drawn_digit())
    at.run()
    _ok(at)
    assert [m.label for m in at.metric] == ["Prediction"]


@pytest.mark.parametrize("sent, why", [
    ("data:image/jpeg;base64,AAAA", "not a PNG drawing"),
    ("data:image/png;base64,@@@not-base64", "not valid base64"),
    ("data:image/png;base64," + base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 50).decode(), "cannot read"),
    (12345, "not a PNG drawing"),
])
def test_draw_says_so_when_the_pad_sends_something_that_is_not_a_drawing(run, sent, why):
    """The pad's value comes from a browser: a tampered one gets a message, never a crash."""
    at = _draw(run)
    at.session_state["draw_canvas"] = {"drawing": sent}
    at.run()
    assert not at.exception and not at.metric
    assert any(why in e.value and "could not be read" in e.value for e in at.error), [e.value for e in at.error]


def test_a_drawing_too_large_is_refused_before_it_is_decoded():
    from dashboard.sketchpad import MAX_PAD_SIDE, decode_data_url
    from digits_core.errors import DrawingError

    huge = np.zeros((MAX_PAD_SIDE + 1, 8, 4), np.uint8)
    with pytest.raises(DrawingError, match=f"at most {MAX_PAD_SIDE} pixels"):
        decode_data_url(_canvas_state(huge)["drawing"])
    assert decode_data_url(None) is None and decode_data_url("") is None
    rgba = _drawn_digit()
    np.testing.assert_array_equal(decode_data_url(_canvas_state(rgba)["drawing"]), rgba)


VISITOR = "visitor-0001"  # the session id of the person in the tests below (a run's owner)


def _draw_as(person: str, runs: Path) -> AppTest:
    """The Draw page in the session `person` (their session id), over the runs folder `runs`."""
    os.environ["DIGITLAB_RUNS"] = str(runs)
    at = AppTest.from_file(str(PAGES / "6_Draw.py"), default_timeout=TIMEOUT)
    at.session_state["sid"] = person
    return at.run()


def _draw_picker(at: AppTest):
    return next(s for s in at.selectbox if s.label == DRAW_PICKER)


def test_draw_opens_on_the_ready_made_model_for_a_visitor_with_no_run_of_their_own(job, tmp_path):
    """One-person server (no class mode), a shared screen: a visitor who trained nothing opens
    Draw on the model that ships with Digit Lab, not on the run someone else left (a 1-epoch
    try), which is listed as another session's. Once they train one, theirs comes first."""
    runs = tmp_path / "runs"
    theirs = record(job, runs, label="one-epoch try", owner="someone-else-01")
    at = _draw_as(VISITOR, runs)
    _ok(at)
    picker = _draw_picker(at)
    assert picker.value == state.READY_MADE
    assert picker.options[0].startswith("ready-made MNIST CNN (ships with Digit Lab) · mnist")
    assert picker.options[1].startswith("Another session's one-epoch try · digits · finished")
    assert any("ready-made model that ships with Digit Lab" in c.value for c in at.caption)
    assert not any(plain("one-epoch try") in c.value for c in at.caption)

    mine = record(job, runs, label="my run", owner=VISITOR)
    at.run()
    _ok(at)
    picker = _draw_picker(at)
    assert picker.value == mine.name
    assert [o.split(" · ")[0] for o in picker.options] == [
        "my run", "ready-made MNIST CNN (ships with Digit Lab)", "Another session's one-epoch try"]
    assert any("my run" in c.value for c in at.caption)
    picker.set_value(theirs.name).run()  # still theirs to pick
    _ok(at)
    assert any(plain("one-epoch try") in c.value for c in at.caption)


def test_draw_keeps_the_ready_made_model_as_a_choice_beside_the_runs(job, tmp_path):
    """On a one-person server the person's newest run reads the drawing; the model that
    ships with Digit Lab is the picker's next choice, and picking it reads with it."""
    mine = record(job, tmp_path / "runs", owner=VISITOR)
    at = _draw_as(VISITOR, tmp_path / "runs")
    _ok(at)
    picker = _draw_picker(at)
    assert picker.value == mine.name and picker.options[-1].startswith("ready-made MNIST CNN")
    picker.set_value(state.READY_MADE).run()
    _ok(at)
    assert any("ready-made model that ships with Digit Lab" in c.value for c in at.caption)


def test_draw_says_a_dot_is_too_small_and_an_empty_pad_is_empty(run):
    """A click of the pen (a dot) is not a digit: the page asks for a larger one, where an
    empty pad asks for a digit."""
    dot = np.zeros((280, 280, 4), np.uint8)
    dot[..., 3] = 255
    dot[136:144, 136:144, :3] = 255  # an 8 px dot in the middle
    assert predict_canvas(run, dot).message.startswith("that mark is too small")
    blank = np.zeros((280, 280, 4), np.uint8)
    blank[..., 3] = 255
    assert "canvas is empty" in predict_canvas(run, blank).message
    at = _draw(run)
    at.session_state["draw_canvas"] = _canvas_state(dot)
    at.run()
    _ok(at)
    assert not at.metric and not at.info
    assert any("too small to read" in w.value for w in at.warning)



def _shown_reading(at: AppTest) -> tuple[str, list[float], list[str]]:
    """(the digit shown, the bar chart's probabilities, the captions beside the prediction)."""
    [metric] = [m for m in at.metric if m.label == "Prediction"]
    [bars] = [m.value for m in at.markdown if 'class="digit-probs"' in m.value]
    probs = [float(p) for p in bars.split('data-probs="')[1].split('"')[0].split(",")]
    return metric.value, probs, [c.value for c in at.caption if "second choice" in c.value]


def test_an_unsure_reading_names_its_second_choice_and_a_sure_one_does_not():
    """The Draw page with the ready-made model: a drawing it reads under 70 % sure gets the
    line "Not sure: second choice **k** (p %)", k being the runner-up of the bar chart shown;
    a drawing it is sure of gets no such line."""
    from hard_drawn_digits import make_hard_set

    from digits_core.store.pretrained import load_ready_made

    ready = load_ready_made()
    drawings = [rgba for rgba, _, _ in make_hard_set(seed=11, n=80)]
    tops = [float(predict_canvas(ready, d).probs.max()) for d in drawings]  # only to pick the two cases
    sure, unsure = drawings[int(np.argmax(tops))], drawings[int(np.argmin(tops))]
    assert max(tops) >= 0.9 and min(tops) < 0.6  # the sample holds both cases
    at = _app("6_Draw.py")
    at.session_state["draw_canvas"] = _canvas_state(sure)
    at.run()
    _ok(at)
    digit, probs, second = _shown_reading(at)
    assert second == [] and int(digit) == int(np.argmax(probs))
    at.session_state["draw_canvas"] = _canvas_state(unsure)
    at.run()
    _ok(at)
    digit, probs, [line] = _shown_reading(at)
    runner_up = int(np.argsort(probs)[-2])
    assert int(digit) == int(np.argmax(probs)) and max(probs) < 0.7
    assert line == f"Not sure: second choice **{runner_up}** ({probs[runner_up]:.0%})"


def test_evaluate_ranks_the_hardest_examples_by_loss_and_filters_them(run):
    at = _app("4_Evaluate.py", run)
    _ok(at)
    data = run_dataset(run)
    probs = run.model.probs(run.normalizer(data.images_test))
    worst = int(np.argmax(-np.log(probs[np.arange(len(probs)), data.labels_test])))
    captions = [img.caption for img in at.get("image")[1].proto.imgs]
    assert captions[0].startswith(f"a {int(data.labels_test[worst])}, ")  # the highest loss first
    t = int(data.labels_test[worst])
    at.selectbox(key="hard_true").select(t)
    at.run()
    _ok(at)
    captions = [img.caption for img in at.get("image")[1].proto.imgs]
    assert captions and all(c.startswith(f"a {t}, ") for c in captions)
    # a filter nothing matches says so in one line
    preds = probs.argmax(1)
    empty = next(p for p in range(10) if not ((data.labels_test == t) & (preds == p)).any())
    at.selectbox(key="hard_pred").select(empty)
    at.run()
    _ok(at)
    assert any(f"No test image is a {t} read as {empty}" in i.value for i in at.info)


def test_evaluate_opens_a_picked_hardest_example_in_the_inside_view(run):
    at = _app("4_Evaluate.py", run)
    _ok(at)
    assert "towards" not in " ".join(m.value for m in at.markdown)  # no inside view until one is picked
    data = run_dataset(run)
    probs = run.model.probs(run.normalizer(data.images_test))
    worst = int(np.argmax(-np.log(probs[np.arange(len(probs)), data.labels_test])))
    first = at.get("image")[1].proto.imgs[0].caption  # the hardest example, first in the panel
    at.selectbox(key="hard_inside").set_value(0).run()
    _ok(at)
    html = " ".join(m.value for m in at.markdown)
    assert f"**{first}**" in html and "towards" in html  # its saliency maps
    picture = png_data_url(display_image(data.images_test[worst], MAX_VALUE[run.experiment.data.dataset], size=1))
    assert picture in html  # of that very image
    assert any(c.proto.id.endswith("-inside_landing_chart_hard") for c in at.get("plotly_chart"))  # where it lands


def test_the_second_view_is_explained_in_a_students_words():
    from dashboard.draw import seen_caption

    one, two = seen_caption((28, 28), 1, 0.99), seen_caption((28, 28), 2, 0.99)
    assert one == "what the model sees (28x28)"
    assert "narrowed" not in two and "less than 99% sure" in two and "thinner copy of your drawing" in two


def test_evaluate_shows_what_training_changed_in_the_first_layer(run):
    """Before and after looked alike on a small CNN (small steps from a random start): the
    change itself is shown beside them."""
    at = _app("4_Evaluate.py", run)
    _ok(at)
    captions = [img.caption for image in at.get("image") for img in image.proto.imgs]
    assert "before training" in captions and "after training" in captions
    assert any(c.startswith("what training changed") for c in captions), captions
