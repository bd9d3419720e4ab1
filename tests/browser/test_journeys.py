"""What people did in a real browser, step by step, and what they saw go wrong: each test
follows one reported journey and checks both what the page shows and what was trained
(the run folders under the server's $DIGITLAB_RUNS).

The long ones (real MNIST runs, Stop medians, a kill -9 of the server) are marked
`journeys_slow`: `make test-journeys` runs them.
"""

from __future__ import annotations

import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from browser_app import (
    LONG,
    SCREENSHOTS,
    VIEWPORT,
    App,
    fake_mnist,
    new_run,
    read_json,
    start_server,
)
from repo_paths import REPO

from digits_core.config import Experiment
from digits_core.presets import ALL
from digits_core.store.runs import list_runs

pytestmark = pytest.mark.browser

LONG_EPOCHS = 1000  # with batches of 8: 180,000 steps, a digits run that outlasts any test (each stops it)


def checked(app: App, field: str) -> str:
    """The label of the chosen option of the form's radio `field`."""
    return app.form(field).locator("label:has(input:checked)").inner_text().strip()


def box_text(box) -> str:
    """What a selectbox shows: its label and its value (which lives in its input or its text)."""
    value = box.locator("input").first.input_value() if box.locator("input").count() else ""
    return f"{box.inner_text()} {value}"


def shown(app: App, field: str) -> str:
    return box_text(app.form(field))


def form_experiment(run: Path) -> Experiment:
    return Experiment.from_dict(read_json(run / "experiment.json"))


def same_settings(got: Experiment, want: Experiment) -> None:
    """Equal but for the name ('S1b (edited)') and where MNIST lies (not a setting)."""
    got.name = want.name
    got.data.mnist_dir = want.data.mnist_dir
    assert got.to_dict() == want.to_dict()


def main_text(app: App) -> str:
    return app.main().inner_text()


def start_long_digits_run(app: App, server) -> tuple[Path, float]:
    """The default NumPy MLP on the digits for LONG_EPOCHS, running; (its folder, when Start was pressed)."""
    before = set(server.run_dirs())
    app.set_number("Batch size", 8)  # a quiet machine trains the digits MLP at thousands of steps/s
    pressed = app.start_training(LONG_EPOCHS)
    run = new_run(server, before)
    app.wait_running()
    return run, pressed


# ------------------------------------------------------------------ 1. presets


def start_with_epochs(app: App, server, preset: str, epochs: int) -> tuple[Path, Experiment]:
    """Set Epochs on the preset shown in the form and Start: (the new run's folder, the
    experiment it should have trained: the preset with those epochs)."""
    app.fill("Epochs", epochs)
    before = set(server.run_dirs())
    app.start()
    want = ALL[preset].build()
    want.train.epochs = epochs
    return new_run(server, before), want


def test_a_preset_fills_the_form_and_trains_exactly_that(app, server):
    """Pick S1b in the preset picker: the form shows it; Epochs 5; Start: experiment.json
    is S1b with 5 epochs. The same for S1c (a CNN), with 1 epoch."""
    app.nav("Train")
    app.pick_preset(ALL["S1b"].title)
    assert checked(app, "family") == "PyTorch MLP"
    assert app.form("hidden").locator("input").input_value() == "50"
    for field, value in (("init", "pytorch"), ("loss", "mse-softmax"), ("optimizer", "sgd")):
        assert value in shown(app, field), (field, shown(app, field))
    assert app.form("epochs").locator("input").input_value() == "100"
    run, want = start_with_epochs(app, server, "S1b", 5)
    got = form_experiment(run)
    assert (got.model.family, got.model.hidden, got.train.loss) == ("torch-mlp", [50], "mse-softmax")
    same_settings(got, want)
    app.stop_shown_run()

    app.pick_preset(ALL["S1c"].title)
    assert checked(app, "family") == "PyTorch CNN"
    assert app.form("hidden").locator("input").input_value() == ""
    run, want = start_with_epochs(app, server, "S1c", 1)
    same_settings(form_experiment(run), want)
    app.wait_trained()
    app.assert_no_errors()


# ------------------------------------------------------------------ 2. reload


def test_a_reload_keeps_the_run_and_the_form(app, server):
    """Start a long run, F5 after ~3 s: the same run is shown and still progressing, the
    form keeps its edited values, and no "no runs" message."""
    app.nav("Train")
    app.fill("Hidden layer widths", "40")
    run, _ = start_long_digits_run(app, server)
    app.page.wait_for_timeout(3000)
    url = app.page.url
    app.page.reload()
    assert app.page.url == url and "sid=" in url
    stop = app.main().locator(f".st-key-stop_{run.name}")
    stop.wait_for(timeout=LONG)  # the same run's live panel
    app.wait_running()
    first = app.progress_step()
    deadline = time.monotonic() + 60
    while (app.progress_step() or 0) <= first:
        assert time.monotonic() < deadline, "the run shown after the reload does not progress"
        app.page.wait_for_timeout(250)
    assert app.form("hidden").locator("input").input_value() == "40"
    assert app.form("epochs").locator("input").input_value() == str(LONG_EPOCHS)
    text = main_text(app) + app.page.locator('[data-testid="stSidebar"]').inner_text()
    assert "No runs" not in text and "Nothing trained" not in text, text
    assert [p.name for p in server.run_dirs() if read_json(p / "meta.json")["owner"] in url] == [run.name]
    app.stop_shown_run()


# ------------------------------------------------------------------ 3. a custom MNIST folder


def test_a_custom_mnist_folder_is_known_to_every_page(app, tmp_path):
    """A folder with the four MNIST files set on the Data page: Home's MNIST presets are
    enabled, S4 can start, and the Data page still shows the folder."""
    folder = str(fake_mnist(tmp_path / "my-mnist"))
    app.use_mnist(folder)
    assert "300 training and 100 test images" in app.main().locator(
        '[data-testid="stAlertContentSuccess"]').inner_text()
    app.nav("Home")
    assert app.main().locator(".st-key-preset_S2a button").is_enabled()
    assert "Needs MNIST" not in main_text(app)
    app.nav("Train")
    app.pick_preset(ALL["S4"].title)
    assert app.main().locator(".st-key-start button").is_enabled()
    assert "MNIST is not on this machine" not in main_text(app)
    app.nav("Data")
    assert app.main().locator('input[aria-label="Custom MNIST folder (optional)"]').input_value() == folder
    app.assert_no_errors()


# ------------------------------------------------------------------ 4. double click


def test_a_double_click_on_start_is_one_run(app, server):
    app.nav("Train")
    app.fill("Epochs", LONG_EPOCHS)
    before = set(server.run_dirs())
    app.main().locator(".st-key-start button").dblclick()
    run = new_run(server, before)
    app.wait_running()
    app.page.wait_for_timeout(1500)
    assert [p for p in server.run_dirs() if p not in before] == [run]
    app.stop_shown_run()
    assert [p for p in server.run_dirs() if p not in before] == [run]


def test_stopping_the_run_shown_keeps_it_shown_while_another_trains(app, server):
    """Two runs train; Stop the one shown: the page goes on showing it, stopped, and its
    picker names it with its new status; the same for the other, picked in the list.

    A picker's choice comes back from the browser as the label it showed when chosen
    ("... · running 3 % · ..."); once the label had moved on it matched no option, and the
    page fell back to the other run: a Stop showed the run still training, and a second
    Stop showed the first run's result under the second one's name."""
    app.nav("Train")
    first, _ = start_long_digits_run(app, server)
    second, _ = start_long_digits_run(app, server)
    app.page.wait_for_timeout(1500)  # both labels move on ("running 1 %", "2 %", ...)
    picker = app.main().locator(".st-key-train_view")
    for run in (second, first):
        label = read_json(run / "meta.json")["label"]
        if run == first:  # pick it: the option whose label names it
            picker.get_by_role("combobox").click()
            app.page.get_by_role("option").filter(has_text=f"{label} · ").first.click()
            app.wait_idle()
            app.wait_running()
        stop_and_time(app, run)
        app.page.wait_for_timeout(1000)  # the other run's next polls: the page must not move
        app.wait_idle()
        assert f"{label} · digits · stopped" in box_text(picker), box_text(picker)
        assert app.main().locator(f".st-key-stop_{run.name}").count() == 0
        steps = read_json(run / "meta.json")["steps_done"]  # its own result, not the other's
        assert app.status_alert().filter(has_text=f"Stopped by the user after {steps:,} steps").count() == 1
    app.assert_no_errors()


def test_a_closed_tab_stops_its_run_after_the_grace_and_keeps_it(app, server):
    """A real session: a tab starts a long run and is closed for good (its browser context
    ends). Once the server's grace has passed (DIGITLAB_TAB_GRACE, 6 s on the test server)
    the run is stopped, not lost: its folder says stopped and holds what it trained."""
    app.nav("Train")
    run, _ = start_long_digits_run(app, server)
    assert read_json(run / "meta.json")["status"] in ("loading", "running")
    app.page.context.close()  # the tab is gone: its websocket closes
    deadline = time.monotonic() + 180
    while read_json(run / "meta.json")["status"] != "stopped":
        assert time.monotonic() < deadline, read_json(run / "meta.json")
        time.sleep(0.5)
    [info] = [i for i in list_runs(server.runs) if i.name == run.name]
    assert info.ok and info.status == "stopped", info.reason
    assert read_json(run / "meta.json")["steps_done"] > 0


# ------------------------------------------------------------------ 5. Stop


def stop_and_time(app: App, run: Path) -> tuple[float, float]:
    """Press Stop of `run`: (s until "Stopping…" or the stopped line shows, s until
    "Stopped by the user" shows)."""
    t0 = time.perf_counter()
    app.main().locator(f".st-key-stop_{run.name} button").click()
    app.page.wait_for_function(
        """() => { const t = document.querySelector('[data-testid="stMain"]').innerText;
                   return t.includes('Stopping…') || t.includes('Stopped by the user'); }""",
        polling=50, timeout=LONG)
    seen = time.perf_counter() - t0
    app.main().get_by_text("Stopped by the user", exact=False).first.wait_for(timeout=LONG)
    ended = time.perf_counter() - t0
    app.wait_idle()
    assert read_json(run / "meta.json")["status"] == "stopped"
    return seen, ended


@pytest.mark.journeys_slow
def test_stop_is_seen_at_once_and_ends_the_run(app, server, tmp_path, timings):
    """Each Stop shows "Stopping…" (or the end), then "Stopped by the user", and its run's
    folder says stopped: 5 Stops of digits runs and 3 of MNIST runs (the default CNN on a
    small MNIST-format folder). How soon is recorded (the medians, in the timings), not
    asserted: on a busy machine it is the machine's speed, not the product's."""
    app.nav("Train")
    digits = []
    for _ in range(5):
        run, _ = start_long_digits_run(app, server)
        app.page.wait_for_timeout(500)
        digits.append(stop_and_time(app, run))
    app.use_mnist(str(fake_mnist(tmp_path / "mnist")))
    app.nav("Train")
    app.pick_preset(ALL["default-cnn"].title)
    app.fill("Epochs", 1000)  # ~70 s on the small folder: still running whenever the page shows it
    mnist = []
    for _ in range(3):
        before = set(server.run_dirs())
        app.start()
        run = new_run(server, before)
        app.wait_running()
        app.page.wait_for_timeout(500)
        mnist.append(stop_and_time(app, run))
    for name, values in (("digits", digits), ("mnist", mnist)):
        timings[f"stop_seen_median_{name}_s"] = round(statistics.median(v[0] for v in values), 2)
        timings[f"stop_ended_median_{name}_s"] = round(statistics.median(v[1] for v in values), 2)
        timings[f"stop_ended_all_{name}_s"] = str([round(v[1], 2) for v in values])
    assert len(digits) == 5 and len(mnist) == 3  # each Stop seen, ended and saved as stopped
    app.assert_no_errors()


# ------------------------------------------------------------------ 6, 7. after two runs


@pytest.fixture(scope="module")
def two_runs(chromium, server):
    """A tab whose person trained two short digits runs (nothing saved by hand); (app, runs)."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    app = App(page, server.url).open()
    app.nav("Train")
    runs = []
    for epochs in (2, 3):
        before = set(server.run_dirs())
        app.start_training(epochs)
        runs.append(new_run(server, before))
        app.wait_trained()
    yield app, runs
    context.close()


def test_the_analysis_pages_open_on_the_newest_run(two_runs):
    app, (older, newer) = two_runs
    label = read_json(newer / "meta.json")["label"]
    for page in ("Evaluate", "Embedding", "Draw"):
        app.nav(page)
        picker = app.main().locator(f".st-key-pick_run_{newer.name}")
        picker.wait_for(timeout=LONG)
        assert f"{label} · digits · finished" in box_text(picker), box_text(picker)
        app.assert_no_errors()


def test_the_runs_page_lists_compares_and_fits(two_runs):
    """Right after training: both runs listed, compared with their labels as legend names,
    and the table fits 1,280 px."""
    app, runs = two_runs
    app.nav("Runs")
    labels = [read_json(r / "meta.json")["label"] for r in runs]
    assert f"{labels[1]} · digits · finished" in box_text(app.main().locator(".st-key-runs_pick"))
    chosen = app.main().locator(".st-key-runs_compare").inner_text()
    assert all(label in chosen for label in labels), chosen  # compared by default
    app.main().locator(".st-key-runs_acc .main-svg").first.wait_for(timeout=LONG)
    names = app.chart("runs_acc").first.evaluate("el => el._fullData.map(t => t.name)")
    assert sorted(names) == sorted(labels), names  # the newest two: this person's
    assert all("/" not in n and len(n) <= 20 for n in names), names
    grid = app.main().locator('[data-testid="stDataFrame"]')
    widths = grid.evaluate(
        """el => { const s = el.querySelector('.dvn-scroller') || el;
                   return [s.scrollWidth, s.clientWidth]; }""")
    assert widths[0] <= widths[1], f"the runs table scrolls sideways: {widths}"
    app.assert_no_errors()


# ------------------------------------------------------------------ 8. Draw: a refused upload


def open_pad_tools(app) -> None:
    """Unfold the Draw page's "Pen width, or upload a photo" (folded under the reading)."""
    app.main().locator("summary").filter(has_text="Pen width, or upload a photo").click()
    app.main().get_by_role("slider", name="Pen width").wait_for(timeout=LONG)


def test_a_refused_upload_says_why_and_the_canvas_works_again(shared_app, tmp_path):
    app = shared_app
    app.nav("Draw")
    open_pad_tools(app)
    app.main().locator('.st-key-draw_upload_0 input[type="file"]').set_input_files(
        files=[{"name": "digit.png", "mimeType": "image/png", "buffer": b"not a picture at all\n"}])
    error = app.main().locator('[data-testid="stAlertContentError"]')
    error.wait_for(timeout=LONG)
    assert "That file was not used" in error.inner_text()
    app.main().locator('.st-key-draw_upload_1').wait_for(timeout=LONG)  # a fresh, empty uploader
    app.draw("1")
    digit, probs = app.prediction()
    assert digit == 1 and abs(sum(probs) - 1) < 1e-3, (digit, probs)
    app.clear_canvas()


# ------------------------------------------------------------------ 9. kill -9 of the server


@pytest.mark.journeys_slow
def test_a_run_survives_a_kill_9_of_the_server(chromium, tmp_path):
    """kill -9 of the server while a run trains, after its first checkpoint; a new server on
    the same runs folder lists it as interrupted, evaluates it, draws with it, and trains it
    further; no run folder is broken."""
    runs = tmp_path / "runs"
    first = start_server(runs, tmp_path / "home", tmp_path / "first.log")
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        app = App(page, first.url).open()
        app.nav("Train")
        run, _ = start_long_digits_run(app, first)
        # a checkpoint of 3 epochs or more: a model that reads digits, so that what the new
        # server shows of it can be checked against what it is, not against chance
        deadline = time.monotonic() + 300
        while not ((run / "weights.npz").exists() and (run / "history.json").exists()
                   and len(read_json(run / "history.json")["epochs"]) >= 3):
            assert time.monotonic() < deadline, "no 3-epoch checkpoint within 5 minutes"
            time.sleep(0.2)
        first.kill9()
    finally:
        first.stop()
        context.close()
    epochs = len(read_json(run / "history.json")["epochs"])

    second = start_server(runs, tmp_path / "home", tmp_path / "second.log")
    context = chromium.new_context(viewport=VIEWPORT)
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        app = App(page, second.url).open("runs")  # a new tab: another person, the next day
        # The first deep link into a freshly started server shows Streamlit's "Page not found"
        # over the right page (streamlit/streamlit#9624, still in 1.67): close it.
        if page.get_by_text("Page not found").count():
            page.keyboard.press("Escape")
            page.get_by_text("Page not found").wait_for(state="hidden")
        picker = app.main().locator(".st-key-runs_pick")
        assert f"{run.name} · digits · interrupted" in box_text(picker), box_text(picker)
        assert "broken" not in main_text(app)

        app.nav("Evaluate")
        metric = app.main().locator('[data-testid="stMetric"]', has_text="Test accuracy")
        metric.wait_for(timeout=LONG)
        shown = float(metric.locator('[data-testid="stMetricValue"]').inner_text().rstrip("%"))
        cli = subprocess.run([sys.executable, "-m", "digits_core", "evaluate", "--run", str(run)],
                             cwd=REPO, capture_output=True, text=True, timeout=300, check=True)
        saved = float(cli.stdout.strip().splitlines()[-1].split()[1])  # "accuracy 0.9xxx"
        assert abs(shown - 100 * saved) < 0.06, (shown, saved)  # the checkpoint's own weights
        app.assert_no_errors()

        app.nav("Draw")
        app.draw("1")
        digit, probs = app.prediction()
        assert digit == 1 and abs(sum(probs) - 1) < 1e-3, (digit, probs)
        app.assert_no_errors()

        app.nav("Runs")
        app.fill("More epochs", 1)
        app.main().locator(".st-key-runs_continue button").click()
        app.page.wait_for_url(re.compile(r".*/train(\?.*)?$"), timeout=LONG)
        app.main().get_by_text(re.compile(r"^Finished")).wait_for(timeout=3 * LONG)
        app.wait_idle()
        assert len(read_json(run / "history.json")["epochs"]) == epochs + 1
        app.assert_no_errors()
        assert [i.status for i in list_runs(runs)] == ["finished"], [(i.name, i.reason) for i in list_runs(runs)]
    finally:
        context.close()
        second.stop()


# ------------------------------------------------------------------ live training


@pytest.fixture(scope="module")
def mnist_app(chromium, server, mnist_dir):
    """A tab whose Data page uses the real MNIST folder."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    app = App(page, server.url).open()
    app.use_mnist(str(mnist_dir))
    yield app
    context.close()


def curve_during_run(app: App, run: Path, pressed: float, timeout: float = 600) -> tuple[int, float | None]:
    """Poll a running run's accuracy chart until the run ends: (most live points seen before
    the epoch-end diamond, seconds from Start to the first point)."""
    key = f"acc_{run.name}"
    most, first = 0, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        live = app.trace_x(key, "test (live subset)")
        if live and first is None:
            first = time.perf_counter() - pressed
        if app.trace_x(key, "test (full, epoch end)") or app.status_alert().count():
            break
        most = max(most, len(live))
        app.page.wait_for_timeout(200)
    return most, first


@pytest.mark.journeys_slow
def test_a_short_mnist_epoch_draws_its_accuracy_live(mnist_app, mnist_dir, server, timings):
    """The default CNN, 1 epoch of 12,000 MNIST images: the page draws live accuracy
    points before the epoch ends, and the run measured at least 5 within its epoch (the
    page polls once a second, so how many of them it happens to show depends on the
    machine's speed: recorded, not asserted). Records Start -> first point."""
    app = mnist_app
    app.nav("Train")
    app.pick_preset(ALL["default-cnn"].title)
    app.use_mnist(str(mnist_dir), train_size=12000)
    app.nav("Train")
    app.fill("Epochs", 1)
    before = set(server.run_dirs())
    pressed = app.start()
    run = new_run(server, before)
    most, first = curve_during_run(app, run, pressed)
    timings["mnist_start_to_first_point_s"] = None if first is None else round(first, 2)
    timings["mnist_live_points_in_epoch"] = most
    assert form_experiment(run).data.train_size == 12000
    assert most >= 1, "no live accuracy point was drawn before the epoch ended"
    app.wait_trained(timeout=10 * LONG)
    history = read_json(run / "history.json")
    within = [s for s in history["probe_steps"] if s < history["steps_per_epoch"]]
    assert len(within) >= 5, f"{len(within)} live accuracy points measured within the epoch"
    app.assert_no_errors()


@pytest.mark.journeys_slow
@pytest.mark.screenshots
def test_s4_shows_its_live_t_sne_and_replays_it(mnist_app, mnist_dir, server, timings):
    """S4 as the write-up ran it (1 epoch of all 60,000 images), Live t-SNE ticked by the preset: the
    embedding frame shown changes at least 3 times while it trains; after it, the frame
    slider replays the saved frames. (A live t-SNE frame continues the last one for 30
    iterations, ~0.1 s, so the frame budget allows one every second or two of training.)"""
    app = mnist_app
    app.nav("Train")
    app.pick_preset(ALL["S4"].title)
    app.use_mnist(str(mnist_dir), train_size=60000)
    app.nav("Train")
    # S4 is the live t-SNE demo: its preset ticks Live t-SNE by itself (no click here)
    assert app.form("live").locator("input").is_checked()
    before = set(server.run_dirs())
    app.start()
    run = new_run(server, before)
    assert form_experiment(run).train.live_embedding
    toggle = app.main().locator(".st-key-train_embedding")
    toggle.wait_for(timeout=LONG)
    if not toggle.locator("input").is_checked():  # on by itself for a live t-SNE run
        toggle.get_by_text("Show the last layer's embedding as it learns").click()
    key = f"emb_{run.name}_fig"
    titles: list[str] = []
    deadline = time.monotonic() + 600
    while time.monotonic() < deadline and not app.status_alert().count():
        chart = app.chart(key)
        try:
            title = chart.first.evaluate("el => el._fullLayout.title.text") if chart.count() else None
        except Exception:
            title = None
        title = title and re.sub(r"<[^>]+>", "", title)  # plotly's <b> around a title
        if title and (not titles or titles[-1] != title):
            titles.append(title)
            if len(titles) == 2:
                app.screenshot("embedding_live")  # for the README: the clusters forming
        app.page.wait_for_timeout(250)
    timings["s4_live_tsne_frame_changes"] = len(titles) - 1
    assert all(t.startswith("t-SNE") for t in titles), titles
    assert len(titles) >= 4, f"the live embedding changed {len(titles) - 1} times: {titles}\n{main_text(app)[:1500]}"
    app.wait_trained(timeout=LONG)
    # The frame slider's thumb is an <input type=range> (role slider implied, not written).
    slider = app.main().locator(f".st-key-emb_{run.name}_frame").get_by_role("slider")
    slider.focus()
    slider.press("Home")
    app.wait_idle()
    title = app.chart(key).first.evaluate("el => el._fullLayout.title.text.replace(/<[^>]+>/g, '')")
    assert "epoch 0.00" in title, title
    app.assert_no_errors()


@pytest.mark.screenshots
def test_the_running_train_page_fits_a_projector(app, server, timings):
    """At 1280x720 the running Train page shows the progress bar, Stop and both charts inside
    the viewport without scrolling, with the picker of a second run above them, and so does
    presenter mode, where the charts' tick labels are >= 16 px."""
    app.nav("Train")
    first, _ = start_long_digits_run(app, server)
    stop_and_time(app, first)  # a second run: the page shows the run picker too
    run, pressed = start_long_digits_run(app, server)
    app.main().locator(f".st-key-acc_{run.name} .main-svg").first.wait_for(timeout=LONG)
    summary = app.main().locator('[data-testid="stExpander"] summary', has_text="Settings").first
    if summary.locator("xpath=..").get_attribute("open") is not None:
        summary.click()  # folded again, as the page had it before the test opened it
        app.wait_idle()

    def all_in_view() -> None:
        app.main().evaluate("el => { el.scrollTop = 0; }")
        for selector in ('[data-testid="stProgress"]', f".st-key-stop_{run.name}",
                         f".st-key-loss_{run.name}", f".st-key-acc_{run.name}"):
            box = app.main().locator(selector).first.bounding_box()
            assert box and box["y"] >= 0 and box["x"] >= 0, (selector, box)
            assert box["y"] + box["height"] <= VIEWPORT["height"], (selector, box)
            assert box["x"] + box["width"] <= VIEWPORT["width"], (selector, box)

    assert app.main().locator(".st-key-train_view").count() == 1
    all_in_view()
    # (No wait_idle while it polls in presenter mode: on a busy machine its reruns overlap.)
    app.page.locator(".st-key-presenter label").click()
    app.page.wait_for_function(
        """keys => keys.every(k => { const el = document.querySelector(`.st-key-${k} .js-plotly-plot`);
                                     return el && el._fullLayout && el._fullLayout.xaxis.tickfont.size >= 16; })""",
        arg=[f"loss_{run.name}", f"acc_{run.name}"], timeout=LONG)
    for key in (f"loss_{run.name}", f"acc_{run.name}"):
        # read once the chart is laid out: each poll re-lays it, and between two it has no layout
        sizes = app.page.wait_for_function(
            """k => { const el = document.querySelector(`.st-key-${k} .js-plotly-plot`);
                      const f = el && el._fullLayout;
                      return f && f.xaxis && f.yaxis && [f.xaxis.tickfont.size, f.yaxis.tickfont.size]; }""",
            arg=key, timeout=LONG).json_value()
        assert min(sizes) >= 16, (key, sizes)
    app.page.wait_for_function(  # the presenter charts are taller: wait until they are drawn so
        """k => { const el = document.querySelector(`.st-key-${k} .js-plotly-plot`);
                  return el && el._fullLayout && el._fullLayout.height >= 300; }""",
        arg=f"acc_{run.name}", timeout=LONG)
    all_in_view()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    app.page.screenshot(path=str(SCREENSHOTS / "train_presenter.png"))  # what the room sees
    timings["projector_test_start_to_stop_s"] = round(time.perf_counter() - pressed, 2)
    app.main().locator(f".st-key-stop_{run.name} button").click()
    app.status_alert().first.wait_for(timeout=LONG)
    app.page.locator(".st-key-presenter label").click()
    app.wait_idle()


# ------------------------------------------------------------------ the Draw page's pad


def ink_pixels(app: App) -> int:
    """Pixels of the pad that carry ink (not black), read from the canvas itself."""
    return app.canvas().evaluate(
        """c => { const d = c.getContext("2d").getImageData(0, 0, c.width, c.height).data;
                  let n = 0; for (let i = 0; i < d.length; i += 4) if (d[i] > 0) n++; return n; }""")


def pad_tool(app: App, act: str):
    return app.page.locator(f'[data-testid="stBidiComponentIsolated"] button[aria-label="{act}"]')


def set_pen(app: App, key: str, width: int) -> None:
    """Unfold the pad's tools, move the Pen width slider with `key` ("Home": the narrowest,
    "End": the widest) and wait until the pad draws `width` px wide."""
    open_pad_tools(app)
    pen = app.main().get_by_role("slider", name="Pen width")
    pen.focus()
    pen.press(key)
    app.wait_idle()
    app.canvas().and_(app.page.locator(f'[data-pen="{width}"]')).wait_for(timeout=LONG)  # the pad has it


def test_the_pads_pen_width_undo_and_redo(app):
    """Pen width: the same stroke with the widest pen inks far more of the pad than with the
    narrowest. Undo takes the last stroke back (the page then asks for a drawing), Redo
    puts it back (and the page reads it again, as before)."""
    app.nav("Draw")
    set_pen(app, "Home", 5)  # the narrowest
    app.draw("1")
    narrow_digit, narrow_probs = app.prediction()
    narrow = ink_pixels(app)
    assert narrow > 0
    undo, redo = pad_tool(app, "Undo"), pad_tool(app, "Redo")
    assert redo.is_disabled() and not undo.is_disabled()
    undo.click()
    app.main().get_by_text("Draw a digit on the canvas").wait_for(timeout=LONG)
    assert ink_pixels(app) == 0 and undo.is_disabled() and not redo.is_disabled()
    redo.click()
    app.wait_idle()
    assert ink_pixels(app) == narrow
    digit, probs = app.prediction()
    assert digit == narrow_digit and probs == pytest.approx(narrow_probs, abs=1e-3)  # the same drawing, read again
    app.clear_canvas()
    app.main().get_by_text("Draw a digit on the canvas").wait_for(timeout=LONG)
    app.nav("Runs")  # the widest pen on a fresh pad: the Draw page opened again
    app.nav("Draw")
    set_pen(app, "End", 40)  # the widest
    app.draw("1")
    app.prediction()
    assert ink_pixels(app) > 3 * narrow, (ink_pixels(app), narrow)  # 40 px against 5 px
    app.assert_no_errors()
