"""What the browser tests drive: a `streamlit run` server (`Server`, `start_server`) and one
browser tab on it (`App`), with the constants and small helpers the tests share.

Never `playwright install`: the tests launch /usr/bin/chromium (override with
$DIGITLAB_CHROMIUM).
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
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
VIEWPORT = {"width": 1280, "height": 720}  # a classroom projector
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


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    """A `streamlit run streamlit_app.py` process on a free port of 127.0.0.1."""

    url: str
    runs: Path  # its $DIGITLAB_RUNS: every run folder it writes
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL if it lingers."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(timeout=15)
        except ProcessLookupError:
            pass
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=15)

    def kill9(self) -> None:
        """`kill -9` of its whole process group: no clean-up of any kind."""
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=15)

    def run_dirs(self) -> list[Path]:
        """The run folders, oldest name first (settings.json and temporary files left out)."""
        if not self.runs.is_dir():
            return []
        return sorted(p for p in self.runs.iterdir() if p.is_dir() and not p.name.startswith("."))


def start_server(runs: Path, data_home: Path, log_path: Path, **env_extra: str) -> Server:
    """Start `streamlit run` on `runs` and wait until it answers its health check."""
    port = _free_port()
    env = dict(
        os.environ,
        DIGITLAB_RUNS=str(runs),
        DIGITLAB_DATA_HOME=str(data_home),
        STREAMLIT_BROWSER_GATHER_USAGE_STATS="false",
        # A closed test tab stops its runs soon, so the next test finds a free training slot;
        # long enough to survive a reload on a busy machine.
        DIGITLAB_TAB_GRACE="6",
        **env_extra,
    )
    env.pop("DIGITLAB_PUBLIC", None)
    cmd = [
        sys.executable, "-m", "streamlit", "run", "streamlit_app.py",
        "--server.port", str(port), "--server.address", "127.0.0.1",
        "--server.headless", "true",
    ]
    log = open(log_path, "w")
    proc = subprocess.Popen(
        cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    log.close()  # the child has its own copy
    server = Server(f"http://127.0.0.1:{port}", runs, proc, log_path)
    deadline = time.monotonic() + 90
    while True:
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited with {proc.returncode}:\n{log_path.read_text()}")
        try:
            with urllib.request.urlopen(f"{server.url}/_stcore/health", timeout=2) as r:
                if r.read().decode().strip() == "ok":
                    return server
        except OSError:
            pass
        if time.monotonic() > deadline:
            server.stop()
            pytest.fail(f"streamlit not healthy after 90 s:\n{log_path.read_text()}")
        time.sleep(0.2)


# ------------------------------------------------------------------ one browser session


def expect_enabled(locator, timeout: float = LONG) -> None:
    from playwright.sync_api import expect

    expect(locator).to_be_enabled(timeout=timeout)


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
    def open(self, path: str = "") -> App:
        """A fresh visit of `path` (a new session id unless the URL carries one)."""
        self.page.goto(f"{self.url}/{path}")
        self.page.locator('[data-testid="stMain"] h1').first.wait_for(timeout=LONG)
        self.wait_idle()
        return self

    def heading(self, name: str):
        return self.page.get_by_role("heading", name=name, exact=True)

    def nav(self, name: str) -> None:
        """Click the sidebar link to page `name` (keeps the session), wait until it is drawn."""
        path = "" if name == "Home" else name.lower()  # the page's url_path
        # the text as it ends: "Draw" is also the start of "Drawings" (an icon comes first)
        self.page.locator(f'[data-testid="stSidebarNavLink"][href^="{self.url}/{path}"]').filter(
            has_text=re.compile(rf"{re.escape(name)}\s*$")).click()
        self.page.wait_for_url(re.compile(rf"^{re.escape(self.url)}/{path}(\?.*)?$"), timeout=SHORT)
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
    def open_settings(self) -> None:
        """Unfold the Train page's settings (folded once a run is shown), if they are there."""
        summary = self.main().locator('[data-testid="stExpander"] summary', has_text="Settings")
        if summary.count() and summary.first.locator("xpath=..").get_attribute("open") is None:
            summary.first.click()
            self.wait_idle()

    def fill(self, label: str, value) -> None:
        """Type `value` into the text or number box labelled `label` and commit it (Enter)."""
        self.open_settings()
        box = self.main().locator(f'input[aria-label="{label}"]')
        box.fill(str(value))
        box.press("Enter")
        self.wait_idle()

    set_number = fill

    def form(self, field: str):
        """The Train form's widget for `field` (its key carries the form's version)."""
        self.open_settings()
        return self.main().locator(f'[class*="st-key-train_{field}_v"]')

    def pick(self, key: str, option: str) -> None:
        """Choose `option` (its exact text) in the selectbox with widget key `key`."""
        self.wait_idle()
        if key == "preset_pick":
            self.open_settings()
        choice = self.page.get_by_role("option", name=option, exact=True)
        for _ in range(3):  # a rerun (a run that just ended) can close the list as it opens
            self.main().locator(f".st-key-{key}").get_by_role("combobox").click()
            try:
                choice.click(timeout=5_000)
                break
            except Exception:
                self.page.keyboard.press("Escape")
                self.wait_idle()
        else:
            raise AssertionError(f"{option!r} never showed in the {key} list")
        self.wait_idle()

    def pick_preset(self, title: str) -> None:
        """The Train page's "Fill everything from a preset" picker."""
        self.pick("preset_pick", title)

    def start(self) -> float:
        """Press Start training; returns when it was pressed (time.perf_counter())."""
        button = self.main().locator(".st-key-start button")
        expect_enabled(button)
        t = time.perf_counter()
        button.click()
        return t

    def start_training(self, epochs: int) -> float:
        """On the Train page: the default NumPy MLP on the bundled digits, `epochs` epochs."""
        self.open_settings()
        self.main().get_by_text("NumPy MLP (from scratch)", exact=True).click()
        self.wait_idle()
        self.set_number("Epochs", epochs)
        return self.start()

    def progress_step(self) -> int | None:
        """The step the progress bar reports ("step 1,234 of 6,900 · ..."), None when gone."""
        bar = self.main().locator('[data-testid="stProgress"]')
        try:
            text = bar.first.inner_text(timeout=2_000) if bar.count() else ""
        except Exception:  # redrawn between count() and inner_text()
            return None
        m = re.search(r"step ([\d,]+) of", text)
        return int(m.group(1).replace(",", "")) if m else None

    def wait_running(self, timeout: float = LONG) -> None:
        """Until the progress bar of the run shown counts steps."""
        deadline = time.monotonic() + timeout / 1000
        while (self.progress_step() or 0) < 1:
            assert time.monotonic() < deadline, "the run never showed a step"
            self.page.wait_for_timeout(150)

    def status_alert(self):
        """The ended run's status line (Finished..., Stopped by the user..., Interrupted...)."""
        return self.main().locator('[data-testid="stAlert"]').filter(
            has_text=re.compile(r"^(Finished|Stopped by the user|Reached|Interrupted)")
        )

    def wait_trained(self, timeout: float = 3 * LONG) -> float:
        """Until the run shown has ended (finished or stopped); returns its test accuracy (0..1)."""
        self.status_alert().first.wait_for(timeout=timeout)
        self.wait_idle()
        line = self.main().get_by_text(re.compile(r"^test accuracy")).first.inner_text()
        m = re.search(r"test accuracy ([\d.]+)%", line)
        assert m, line
        return float(m.group(1)) / 100

    def use_mnist(self, folder, train_size: int | None = None) -> None:
        """On the Data page: MNIST from `folder` (and a training subset), accepted."""
        self.nav("Data")
        self.main().get_by_text("MNIST (28x28, 70,000 images)", exact=True).click()
        self.wait_idle()
        self.fill("Custom MNIST folder (optional)", folder)
        if train_size is not None:
            self.fill("Training images (0 = all)", train_size)
        self.main().locator('[data-testid="stAlertContentSuccess"]').wait_for(timeout=2 * LONG)
        self.wait_idle()

    def stop_shown_run(self) -> None:
        """Press Stop of the run shown, if it is still running, and wait until it ended."""
        stop = self.main().locator('[class*="st-key-stop_"] button')
        if stop.count():
            try:
                stop.first.click(timeout=5_000)
            except Exception:
                pass  # it ended meanwhile
        self.status_alert().first.wait_for(timeout=LONG)
        self.wait_idle()

    def chart(self, key: str):
        return self.main().locator(f".st-key-{key} .js-plotly-plot")

    def trace_x(self, key: str, name: str | None = None) -> list[float]:
        """The x values of the chart's trace `name` (the first one if None); [] until drawn."""
        chart = self.chart(key)
        if chart.count() == 0:
            return []
        try:
            return chart.first.evaluate(
                """(el, name) => {
                    const t = (el._fullData || []).find(t => name === null || t.name === name);
                    return t && t.x ? Array.from(t.x, Number) : [];
                }""",
                name,
            )
        except Exception:  # the chart was redrawn while read
            return []

    # --- drawing
    def canvas(self):
        return self.page.locator('[data-testid="stBidiComponentIsolated"] canvas.pad-canvas')

    def draw(self, digit) -> None:
        """Draw `digit` (a key of STROKES, or strokes of its own in the same form) on the
        canvas with the mouse: press, many small moves, release."""
        canvas = self.canvas()
        canvas.wait_for(timeout=LONG)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        mouse = self.page.mouse
        for stroke in STROKES[digit] if isinstance(digit, str) else digit:
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
            '[data-testid="stBidiComponentIsolated"] button[aria-label="Clear the canvas"]'
        ).click()

    def prediction(self, timeout: float = LONG) -> tuple[int, list[float]]:
        """The Draw page's predicted digit and the probabilities of its bar chart."""
        metric = self.main().locator('[data-testid="stMetric"]', has_text="Prediction")
        metric.wait_for(timeout=timeout)
        self.wait_idle()
        digit = int(metric.locator('[data-testid="stMetricValue"]').inner_text().strip())
        bars = self.main().locator(".digit-probs")
        bars.wait_for(timeout=timeout)
        probs = bars.get_attribute("data-probs").split(",")
        return digit, [float(p) for p in probs]


def join(app: App, name: str, code: str = "") -> None:
    """Join a class server's tab as `name` (a teacher with `code`): the join form filled in
    and sent, then the Home page drawn."""
    app.heading("Join the class").wait_for()
    app.main().locator('input[aria-label="Your name"]').fill(name)
    if code:
        app.main().locator('input[aria-label="Teacher code (teachers only)"]').fill(code)
    app.main().get_by_role("button", name="Join").click()
    app.heading("Digit Lab").wait_for(timeout=LONG)
    app.wait_idle()


def new_run(server: Server, before: set[Path], timeout: float = 60) -> Path:
    """The one run folder that appeared since `before` (waits for it and for its first two
    files: the folder is made a moment before experiment.json and meta.json are written)."""
    deadline = time.monotonic() + timeout
    while True:
        new = [p for p in server.run_dirs() if p not in before]
        if new and all((new[0] / f).is_file() for f in ("experiment.json", "meta.json")):
            assert len(new) == 1, f"more than one new run: {new}"
            return new[0]
        assert time.monotonic() < deadline, "no run folder appeared"
        time.sleep(0.1)


def read_json(path: Path) -> dict:
    return json.loads(Path(path).read_text())


def fake_mnist(folder: Path, n_train: int = 300, n_test: int = 100) -> Path:
    """A small MNIST look-alike folder (tests/idx_files.py) for the Data page."""
    from idx_files import fake_mnist as make

    return make(folder, n_train, n_test)