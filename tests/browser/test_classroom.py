"""A class's screens: a projector at 1280x720 in presenter mode (the run's progress, its
accuracy and its embedding on one screen, the next steps in view after it) and a phone at
390x844 with touch (the reading in view with the canvas)."""

from __future__ import annotations

import itertools
import time

import pytest
from browser_app import LONG, SCREENSHOTS, STROKES, VIEWPORT, App, new_run
from playwright.sync_api import Error as PlaywrightError

pytestmark = pytest.mark.browser
PHONE = {"width": 390, "height": 844}


def in_view(app: App, selector: str, viewport: dict) -> dict:
    """`selector`'s box, asserted inside the viewport (read again while a poll redraws it)."""
    box, deadline = None, time.monotonic() + 60
    while box is None and time.monotonic() < deadline:
        try:  # a poll on a busy machine may be drawing it again
            box = app.main().locator(f"{selector} >> visible=true").first.bounding_box(timeout=5_000)
        except PlaywrightError:
            box = None
        if box is None:
            app.page.wait_for_timeout(200)
    assert box and box["y"] >= 0 and box["x"] >= 0, (selector, box)
    assert box["y"] + box["height"] <= viewport["height"] + 1, (selector, box)
    assert box["x"] + box["width"] <= viewport["width"] + 1, (selector, box)
    return box


@pytest.mark.screenshots
def test_presenter_mode_shows_progress_accuracy_and_embedding_on_one_screen(chromium, server):
    """A run with its live t-SNE in presenter mode: the progress, the accuracy curve and the
    embedding side by side in one 1280x720 screen, the embedding's title whole and clear of
    the chart's toolbar; once stopped, its name, Continue, Evaluate and Draw in view."""
    context = chromium.new_context(viewport=VIEWPORT)
    app = App(context.new_page(), server.url).open()
    try:
        app.nav("Train")
        app.page.locator(".st-key-presenter label").click()
        app.wait_idle()
        app.pick_preset("Train a good model fast")
        app.form("live").locator("label").click()  # its live t-SNE
        app.wait_idle()
        app.fill("Epochs", 200)  # still running while it is looked at
        before = set(server.run_dirs())
        app.start()
        run = new_run(server, before).name
        app.wait_running()
        app.main().locator(f".st-key-emb_{run}_fig .main-svg").first.wait_for(timeout=LONG)
        app.main().locator(f".st-key-acc_{run} .main-svg").first.wait_for(timeout=LONG)
        app.main().evaluate("el => { el.scrollTop = 0; }")
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        app.page.screenshot(path=str(SCREENSHOTS / "train_presenter_embedding.png"))
        progress = in_view(app, '[data-testid="stProgress"]', VIEWPORT)
        accuracy = in_view(app, f".st-key-acc_{run} .main-svg", VIEWPORT)
        embedding = in_view(app, f".st-key-emb_{run}_fig .main-svg", VIEWPORT)
        assert embedding["x"] >= accuracy["x"] + accuracy["width"] - 1  # side by side
        assert progress["y"] < accuracy["y"]
        chart = app.main().locator(f".st-key-emb_{run}_fig")
        plot = in_view(app, f".st-key-emb_{run}_fig .main-svg", VIEWPORT)
        title = in_view(app, f".st-key-emb_{run}_fig .gtitle", VIEWPORT)
        assert title["x"] >= plot["x"] and title["x"] + title["width"] <= plot["x"] + plot["width"], (title, plot)
        chart.hover()  # the toolbars show: none covers the title
        app.page.wait_for_timeout(500)
        for bar in (chart.locator(".modebar").first, app.main().locator('[data-testid="stElementToolbar"]').first):
            box = bar.bounding_box() if bar.count() else None
            if box and box["width"] and box["x"] < plot["x"] + plot["width"] and box["x"] + box["width"] > plot["x"]:
                apart = (box["x"] >= title["x"] + title["width"] or box["y"] >= title["y"] + title["height"]
                         or box["y"] + box["height"] <= title["y"])
                assert apart, (box, title)
        app.main().locator(f".st-key-stop_{run} button").click()
        app.status_alert().first.wait_for(timeout=LONG)
        app.wait_idle()
        app.main().evaluate("el => { el.scrollTop = 0; }")
        for key in (f"rename_{run}", f"continue_{run}", f"to_evaluate_{run}", f"to_draw_{run}"):
            in_view(app, f".st-key-{key}", VIEWPORT)  # the next steps, without a scroll
        app.page.screenshot(path=str(SCREENSHOTS / "train_presenter_after.png"))
        app.page.locator(".st-key-presenter label").click()
        app.wait_idle()
        app.assert_no_errors()
    finally:
        context.close()


def touch_stroke(page, points: list[tuple[float, float]]) -> None:
    """One finger stroke through `points` (page pixels), as a phone's touch screen sends it."""
    cdp = page.context.new_cdp_session(page)
    x, y = points[0]
    cdp.send("Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]})
    for (x0, y0), (x1, y1) in itertools.pairwise(points):
        for i in range(1, 9):
            f = i / 8
            cdp.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [
                {"x": x0 + (x1 - x0) * f, "y": y0 + (y1 - y0) * f}]})
    cdp.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    cdp.detach()


@pytest.mark.screenshots
def test_a_phone_draws_with_a_finger_and_sees_the_reading_beside_the_canvas(chromium, server):
    context = chromium.new_context(viewport=PHONE, has_touch=True, is_mobile=True, device_scale_factor=2)
    app = App(context.new_page(), server.url).open("draw")
    try:
        canvas = app.canvas()
        canvas.wait_for(timeout=LONG)
        canvas.scroll_into_view_if_needed()
        box = canvas.bounding_box()
        touch_stroke(app.page, [(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
                                for fx, fy in STROKES["7"][0]])
        _, probs = app.prediction()
        assert abs(sum(probs) - 1) < 1e-3
        box = canvas.bounding_box()
        assert box["y"] >= 0 and box["y"] + box["height"] <= PHONE["height"], box  # no scroll since
        in_view(app, '[data-testid="stMetric"]', PHONE)  # the digit and how sure
        in_view(app, ".digit-probs", PHONE)  # its bars
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        app.page.screenshot(path=str(SCREENSHOTS / "draw_phone.png"))
        app.assert_no_errors()
    finally:
        context.close()
