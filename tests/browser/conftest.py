"""Browser fixtures: a real `streamlit run` server and Debian's Chromium driven by Playwright.

Never `playwright install`: the tests launch /usr/bin/chromium (override with
$DIGITLAB_CHROMIUM). Without it the browser tests are skipped, or fail when
$DIGITLAB_REQUIRE_BROWSER=1 or $CI is set.

Timings (server start -> first page rendered, the live-training test's wall time, ...) are
written to /tmp/digitlab_browser_timings.json (override with $DIGITLAB_BROWSER_TIMINGS) and
printed at the end of the session (`pytest -s`).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("DIGITLAB_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
TIMINGS_FILE = Path(
    os.environ.get("DIGITLAB_BROWSER_TIMINGS", "/tmp/digitlab_browser_timings.json")
)
VIEWPORT = {"width": 1400, "height": 900}
# Screenshots go to a temporary folder, so a test run never dirties the work tree;
# `make screenshots` points this at docs/screenshots to refresh the README's pictures.
SCREENSHOTS = Path(os.environ.get("DIGITLAB_SCREENSHOTS") or Path(tempfile.gettempdir()) / "digitlab-screenshots")

# Generous: the first visit of a page imports torch/sklearn/scipy on a small shared machine.
LONG = 90_000  # ms
SHORT = 30_000  # ms

# A "1" and a "7" for the 280x280 canvas, as fractions of its side: polylines the mouse follows.
STROKES = {
    "1": [[(0.50, 0.12), (0.50, 0.30), (0.50, 0.50), (0.50, 0.70), (0.50, 0.88)]],
    "7": [[(0.22, 0.15), (0.40, 0.15), (0.60, 0.15), (0.78, 0.15),
           (0.70, 0.32), (0.62, 0.50), (0.55, 0.68), (0.48, 0.88)]],
}


def _required() -> bool:
    return bool(os.environ.get("DIGITLAB_REQUIRE_BROWSER") == "1" or os.environ.get("CI"))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# ------------------------------------------------------------------ session-wide


@pytest.fixture(scope="session")
def timings():
    """A dict the tests fill; written to TIMINGS_FILE and printed when the session ends."""
    data: dict[str, float | str] = {}
    yield data
    if data:
        data["recorded_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
        TIMINGS_FILE.write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nbrowser timings ({TIMINGS_FILE}):\n{json.dumps(data, indent=2)}")


@pytest.fixture(scope="session")
def chromium():
    """Debian's Chromium, headless, launched by Playwright (no bundled browser)."""
    if not (Path(CHROMIUM).is_file() and os.access(CHROMIUM, os.X_OK)):
        message = (
            f"Chromium not found at {CHROMIUM}: install Debian's `chromium` (make browser-deps) "
            "or set DIGITLAB_CHROMIUM; never `playwright install`"
        )
        if _required():
            pytest.fail(message)
        pytest.skip(message)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError as e:
        if _required():
            pytest.fail(f"the playwright package is missing: {e}")
        pytest.skip(f"the playwright package is missing: {e}")
    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    except Exception:
        pw.stop()
        raise
    yield browser
    browser.close()
    pw.stop()


@pytest.fixture(scope="session")
def server(chromium, timings, tmp_path_factory):
    """A real `streamlit run streamlit_app.py` on a free port of 127.0.0.1; its base URL.

    Runs and the data home are fresh temporary folders, so no MNIST: bundled digits only.
    Also measures the time from `streamlit run` to the first page rendered in Chromium.
    """
    port = _free_port()
    log_path = tmp_path_factory.mktemp("server") / "streamlit.log"
    env = dict(
        os.environ,
        DIGITLAB_RUNS=str(tmp_path_factory.mktemp("browser_runs")),
        DIGITLAB_DATA_HOME=str(tmp_path_factory.mktemp("browser_data_home")),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
    )
    cmd = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true",
    ]
    log = open(log_path, "w")
    t0 = time.perf_counter()
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            if proc.poll() is not None:
                pytest.fail(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.read().decode().strip() == "ok":
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"streamlit not healthy after 60 s:\n{log_path.read_text()}")
            time.sleep(0.2)
        timings["server_start_to_health_s"] = round(time.perf_counter() - t0, 2)

        # The first page, rendered: Home's title and its digit grid drawn.
        context = chromium.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(url + "/")
        page.get_by_role("heading", name="Digit Lab", exact=True).wait_for(timeout=LONG)
        page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for(timeout=LONG)
        timings["server_start_to_first_page_s"] = round(time.perf_counter() - t0, 2)
        context.close()

        yield url
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=15)
        log.close()


# ------------------------------------------------------------------ one browser session


class App:
    """One browser tab on the app (one Streamlit session) and helpers to drive it."""

    def __init__(self, page, url: str):
        self.page = page
        self.url = url

    # --- waiting
    def script_state(self) -> str | None:
        return self.page.locator('[data-testid="stApp"]').get_attribute("data-test-script-state")

    def wait_idle(self, timeout: float = LONG, quiet: float = 0.6) -> None:
        """Until the script has not been running for `quiet` seconds (fragments that poll
        every 0.75 s keep restarting it, so this also returns between their runs)."""
        deadline = time.monotonic() + timeout / 1000
        idle_since = None
        while time.monotonic() < deadline:
            state = self.script_state()
            connected = self.page.locator(
                '[data-testid="stApp"][data-test-connection-state="CONNECTED"]'
            ).count()
            if state in ("notRunning", "initial") and connected:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since >= quiet:
                    return
            else:
                idle_since = None
            self.page.wait_for_timeout(100)
        raise AssertionError(f"the app kept running for {timeout / 1000:.0f} s")

    # --- navigation
    def open(self) -> App:
        self.page.goto(self.url + "/")
        self.heading("Digit Lab").wait_for(timeout=LONG)
        self.wait_idle()
        return self

    def heading(self, name: str):
        return self.page.get_by_role("heading", name=name, exact=True)

    def nav(self, name: str) -> None:
        """Click the sidebar link to page `name` (keeps the session), wait until it is drawn."""
        path = "" if name == "Home" else name.lower()  # the page's url_path
        self.page.locator(f'[data-testid="stSidebarNavLink"][href="{self.url}/{path}"]').click()
        self.page.wait_for_url(f"{self.url}/{path}", timeout=SHORT)
        self.heading("Digit Lab" if name == "Home" else name).wait_for(timeout=LONG)
        self.wait_idle()

    def main(self):
        return self.page.locator('[data-testid="stMain"]')

    # --- checks
    def assert_no_errors(self) -> None:
        page = self.page
        exceptions = page.locator('[data-testid="stException"]')
        assert exceptions.count() == 0, f"exception shown: {exceptions.first.inner_text()}"
        errors = page.locator('[data-testid="stAlertContentError"]')
        assert errors.count() == 0, f"error shown: {errors.first.inner_text()}"
        body = self.main().inner_text()
        assert "Traceback" not in body and "Exception" not in body, body[:2000]

    def wait_rendered(self, timeout: float = LONG) -> None:
        """Until the run is over and every chart and image of the page is drawn."""
        self.wait_idle(timeout)
        self.page.wait_for_function(
            """() => {
                const main = document.querySelector('[data-testid="stMain"]');
                const charts = main.querySelectorAll('[data-testid="stPlotlyChart"]');
                const drawn = main.querySelectorAll('[data-testid="stPlotlyChart"] .main-svg');
                const imgs = Array.from(main.querySelectorAll('img'));
                return drawn.length >= charts.length
                    && imgs.every(i => i.complete && i.naturalWidth > 0);
            }""",
            timeout=timeout,
        )

    def screenshot(self, name: str) -> Path:
        """The whole page (the main area scrolls, so the viewport grows to fit it) as
        $DIGITLAB_SCREENSHOTS/<name>.png (a temporary folder unless `make screenshots`)."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        page = self.page
        page.mouse.move(VIEWPORT["width"] - 5, VIEWPORT["height"] - 5)  # no hover tooltips
        height = page.locator('[data-testid="stMain"]').evaluate("el => el.scrollHeight")
        page.set_viewport_size({**VIEWPORT, "height": max(VIEWPORT["height"], height)})
        try:
            page.wait_for_timeout(600)  # charts re-layout to the new size
            # Between two runs of a polling fragment, not in one (its elements fade then).
            page.wait_for_function(
                """() => !document.querySelector('[data-stale="true"]')
                    && getComputedStyle(document.querySelector('[data-testid="stMain"]'))
                        .opacity === '1'""",
                timeout=SHORT,
                polling=50,
            )
            page.screenshot(path=str(path), full_page=True, animations="disabled")
        finally:
            page.set_viewport_size(VIEWPORT)
        return path

    # --- training
    def set_number(self, label: str, value) -> None:
        box = self.main().get_by_label(label, exact=True)
        box.fill(str(value))
        box.press("Enter")
        self.wait_idle()

    def start_training(self, epochs: int) -> None:
        """On the Train page: the default NumPy MLP on the bundled digits, `epochs` epochs."""
        self.main().get_by_text("NumPy MLP (from scratch)", exact=True).click()
        self.wait_idle()
        self.set_number("Epochs", epochs)
        self.main().get_by_role("button", name="Start training").click()

    def wait_trained(self, timeout: float = 3 * LONG) -> float:
        """Until the job shown has ended (finished or stopped); returns its test accuracy (0..1)."""
        # While a job runs the metric reads "so far" (or "—"); the final one has no such note.
        metric = self.main().locator('[data-testid="stMetric"]', has_text="Test accuracy").filter(
            has_not_text="so far"
        )
        metric.wait_for(timeout=timeout)
        value = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
        self.wait_idle()
        return float(value.rstrip("%")) / 100

    # --- drawing
    def canvas(self):
        return self.page.locator('[data-testid="stBidiComponentIsolated"] canvas.upper-canvas')

    def draw(self, digit: str) -> None:
        """Draw `digit` on the canvas with the mouse: press, many small moves, release."""
        canvas = self.canvas()
        canvas.wait_for(timeout=LONG)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        mouse = self.page.mouse
        for stroke in STROKES[digit]:
            pts = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                   for fx, fy in stroke]
            mouse.move(*pts[0])
            mouse.down()
            for x, y in pts[1:]:
                mouse.move(x, y, steps=8)
            mouse.up()
            self.page.wait_for_timeout(150)

    def clear_canvas(self) -> None:
        """The canvas toolbar's bin ("Reset canvas & history")."""
        self.canvas().hover()
        self.page.locator(
            '[data-testid="stBidiComponentIsolated"] button[aria-label="Reset canvas & history"]'
        ).click()

    def prediction(self, timeout: float = LONG) -> tuple[int, list[float]]:
        """The Draw page's predicted digit and the probabilities of its bar chart."""
        metric = self.main().locator('[data-testid="stMetric"]', has_text="Prediction")
        metric.wait_for(timeout=timeout)
        self.wait_idle()
        digit = int(metric.locator('[data-testid="stMetricValue"]').inner_text().strip())
        chart = self.main().locator(".st-key-draw_probs .js-plotly-plot")
        chart.wait_for(timeout=timeout)
        probs = chart.evaluate("el => Array.from(el._fullData[0].x)")
        return digit, [float(p) for p in probs]


FAILURES = Path("/tmp/digitlab_browser_failures")


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


def _keep_failure(request, a: App) -> None:
    """After a failed test, keep a screenshot of its tab for the person debugging it."""
    rep = getattr(request.node, "rep_call", None)
    if rep is not None and rep.failed:
        FAILURES.mkdir(exist_ok=True)
        path = FAILURES / f"{request.node.name}.png"
        try:
            a.page.screenshot(path=str(path), full_page=True)
            print(f"\nscreenshot of the failed test: {path}")
        except Exception as e:  # the page may be gone
            print(f"\nno screenshot of the failed test: {e}")


@pytest.fixture
def app(request, chromium, server):
    """A fresh tab (a fresh Streamlit session) on the app's Home page."""
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(SHORT)
    a = App(page, server)
    try:
        yield a.open()
        _keep_failure(request, a)
    finally:
        context.close()


@pytest.fixture(scope="session")
def trained_app(chromium, server):
    """A tab whose session has trained the default NumPy MLP on the digits (10 epochs).

    Shared by the tests that need a model; each of them may run alone.
    """
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(SHORT)
    a = App(page, server).open()
    a.nav("Train")
    a.start_training(epochs=10)
    acc = a.wait_trained()
    assert acc > 0.85, acc
    yield a
    context.close()


@pytest.fixture
def shared_app(request, trained_app):
    """`trained_app` for one test (a screenshot of it is kept if the test fails)."""
    yield trained_app
    _keep_failure(request, trained_app)
