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
import time
from pathlib import Path

import pytest
from browser_app import (
    CHROMIUM,
    CHROMIUM_ARGS,
    LONG,
    SHORT,
    VIEWPORT,
    App,
    start_server,
)

from benchmarks.loadtest import wait_home_drawn

TIMINGS_FILE = Path(
    os.environ.get("DIGITLAB_BROWSER_TIMINGS", "/tmp/digitlab_browser_timings.json")
)


def _required() -> bool:
    return bool(os.environ.get("DIGITLAB_REQUIRE_BROWSER") == "1" or os.environ.get("CI"))


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
    """The shared `Server`: runs and the data home are fresh temporary folders (no MNIST
    unless a test sets a folder on the Data page). Also measures the time from
    `streamlit run` to the first page rendered in Chromium."""
    t0 = time.perf_counter()
    srv = start_server(tmp_path_factory.mktemp("browser_runs"),
                       tmp_path_factory.mktemp("browser_data_home"),
                       tmp_path_factory.mktemp("server") / "streamlit.log")
    try:
        timings["server_start_to_health_s"] = round(time.perf_counter() - t0, 2)
        # The first page, rendered: Home's title and its digit grid drawn.
        context = chromium.new_context(viewport=VIEWPORT)
        page = context.new_page()
        page.goto(srv.url + "/")
        wait_home_drawn(page, timeout=LONG)
        timings["server_start_to_first_page_s"] = round(time.perf_counter() - t0, 2)
        context.close()
        yield srv
    finally:
        srv.stop()


@pytest.fixture(scope="module")
def class_server(chromium, tmp_path_factory):
    """A class server (`DIGITLAB_CLASS_MODE=1`, teacher code owl-42) for one test module."""
    folder = tmp_path_factory.mktemp("class")
    srv = start_server(folder / "runs", folder / "home", folder / "streamlit.log",
                       DIGITLAB_CLASS_MODE="1", DIGITLAB_TEACHER_CODE="owl-42")
    yield srv
    srv.stop()


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
    a = App(page, server.url)
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
    a = App(page, server.url).open()
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
