"""The Backprop page in Chromium: ten presses of Step draw ten loss points and two passing
checks, "Break it" turns both checks red, Run steps on its own until Pause, and the page is
photographed at 1280x720 (also in presenter mode) and on a 390x844 phone."""

from __future__ import annotations

import time

import pytest
from browser_app import LONG, SCREENSHOTS, App
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.browser


def steps_shown(app: App) -> int | None:
    """The "Step" metric's number, None while it is being redrawn."""
    metric = app.main().locator('[data-testid="stMetric"]').filter(has_text="Step").first
    try:
        return int(metric.locator('[data-testid="stMetricValue"]').inner_text(timeout=2_000).replace(",", ""))
    except (PlaywrightError, ValueError):  # redrawn meanwhile
        return None


def wait_steps(app: App, done, timeout: float = LONG) -> int:
    """Until the step counter satisfies `done(n)`; returns it."""
    deadline = time.monotonic() + timeout / 1000
    while True:
        n = steps_shown(app)
        if n is not None and done(n):
            return n
        assert time.monotonic() < deadline, f"the step counter shows {n}"
        app.page.wait_for_timeout(150)


def checks_say(app: App, kind: str) -> int:
    """How many of the two checks show `kind` (Success / Error)."""
    return app.main().locator(f'.st-key-bp_checks [data-testid="stAlertContent{kind}"]').count()


def wait_checks(app: App, kind: str) -> None:
    app.main().locator(f'.st-key-bp_checks [data-testid="stAlertContent{kind}"]').nth(1).wait_for(timeout=LONG)


@pytest.mark.screenshots
def test_backprop_ten_steps_break_it_run_pause_and_screenshots(app):
    app.nav("Backprop")
    assert wait_steps(app, lambda n: n == 0) == 0
    step = app.main().locator(".st-key-bp_step button:visible").first
    for k in range(1, 11):
        step.click()
        wait_steps(app, lambda n, k=k: n == k)
        app.wait_idle()
    deadline = time.monotonic() + LONG / 1000
    while app.trace_x("bp_loss") != list(range(1, 11)):
        assert time.monotonic() < deadline, app.trace_x("bp_loss")
        app.page.wait_for_timeout(150)
    wait_checks(app, "Success")
    assert checks_say(app, "Error") == 0
    text = app.main().locator(".st-key-bp_checks").inner_text()
    assert "Finite differences" in text and "PyTorch autograd (float64)" in text
    assert app.main().locator(".st-key-bp_chain .katex").count() >= 5  # the chain rule, typeset
    app.assert_no_errors()
    app.wait_rendered()
    app.screenshot("backprop")

    app.main().locator(".st-key-bp_broken label").click()  # Break it
    app.wait_idle()
    step.click()
    wait_steps(app, lambda n: n == 11)
    wait_checks(app, "Error")  # both checks catch the missing f'(z)
    assert checks_say(app, "Success") == 0
    assert "broken" in app.main().locator(".st-key-bp_chain").inner_text()
    app.main().locator(".st-key-bp_broken label").click()
    app.wait_idle()

    app.main().locator(".st-key-bp_run button:visible").first.click(timeout=LONG)  # Run: steps come on their own
    n = wait_steps(app, lambda n: n >= 14)
    app.main().locator(".st-key-bp_run button:visible", has_text="Pause").first.click(timeout=LONG)  # a busy tab
    app.main().locator(".st-key-bp_run button:visible", has_text="Run").first.wait_for(timeout=LONG)
    app.wait_idle()
    paused = wait_steps(app, lambda n: n >= 14)
    app.page.wait_for_timeout(2_500)  # over two Run intervals: a step would show by now
    assert steps_shown(app) == paused >= n
    wait_checks(app, "Success")  # steps after Break it was switched off pass again

    app.page.locator(".st-key-presenter label").click()
    app.wait_idle()
    app.page.wait_for_function(
        """() => { const el = document.querySelector('.st-key-bp_loss .js-plotly-plot');
                   return el && el._fullLayout && el._fullLayout.xaxis.tickfont.size >= 16; }""",
        timeout=LONG)
    app.wait_rendered()
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    app.page.mouse.move(1275, 715)
    app.page.screenshot(path=str(SCREENSHOTS / "backprop_presenter.png"))  # what the room sees first
    app.page.locator(".st-key-presenter label").click()
    app.wait_idle()


def test_backprop_on_a_phone_and_its_screenshot(chromium, server):
    """390x844 with touch: Step by tap, the counter and both checks show."""
    context = chromium.new_context(viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True)
    try:
        page = context.new_page()
        page.set_default_timeout(LONG)
        app = App(page, server.url).open("backprop")
        step = app.main().locator(".st-key-bp_step button:visible").first
        for k in (1, 2):
            step.tap()
            wait_steps(app, lambda n, k=k: n == k)
            app.wait_idle()
        wait_checks(app, "Success")
        app.assert_no_errors()
        app.wait_rendered()
        height = app.main().evaluate("el => el.scrollHeight")
        page.set_viewport_size({"width": 390, "height": max(844, height)})
        page.wait_for_timeout(600)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SCREENSHOTS / "backprop_phone.png"), full_page=True)
    finally:
        context.close()
