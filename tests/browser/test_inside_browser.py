"""Inside the network in a real browser: draw a digit on the Draw page with the ready-made
model, open each inside view, and see it follow the next stroke; the Play page paints on
a test digit. Screenshots at 1280x720 (presenter mode too) and 390x844."""

import re
import time

import pytest
from browser_app import LONG, SCREENSHOTS, App

VIEWS = ["Every layer", "Which pixels decided", "How it was prepared", "Where it lands"]
MARK = {  # what each view shows once drawn
    "Every layer": ".inside-layers",
    "Which pixels decided": "text=Red pixels pushed",
    "How it was prepared": "text=1. canvas",
    "Where it lands": "text=nearest test images",
}

pytestmark = pytest.mark.browser


def _view(app: App, name: str) -> None:
    """Choose the inside view `name` (a click on the one chosen would hide them all)."""
    app.wait_idle()
    button = app.main().locator(".st-key-inside_view button", has_text=name)
    button.wait_for(timeout=LONG)
    if button.get_attribute("aria-checked") != "true":
        button.click()
        app.wait_idle()
    app.main().locator(MARK[name]).first.wait_for(timeout=LONG)


def _pictures(app: App) -> list[str]:
    """The page's inline pictures (data URLs): the reading's and the inside view's."""
    return app.main().locator("img").evaluate_all("els => els.map(e => e.src).filter(s => s.startsWith('data:'))")


def _draw(app: App, digit: str) -> None:
    """Draw from the top of the page: a view below the pad scrolls it under the header."""
    app.page.evaluate("document.querySelectorAll('*').forEach(e => { if (e.scrollTop) e.scrollTop = 0; })")
    app.draw(digit)


def _changed(app: App, before: list[str], mark: str) -> None:
    """Until the inside view's pictures differ from `before` (a deadline of LONG)."""
    deadline = time.monotonic() + LONG / 1000
    while _pictures(app)[1:] == before[1:] or not app.main().locator(mark).count():
        assert time.monotonic() < deadline, f"{mark}: the view did not follow the stroke"
        app.page.wait_for_timeout(200)



@pytest.mark.screenshots
def test_every_inside_view_appears_and_follows_the_next_stroke(app):
    shots = {  # the README's picture of each view
        "Every layer": "inside-every-layer.png", "Which pixels decided": "inside-which-pixels-decided.png",
        "How it was prepared": "inside-how-it-was-prepared.png", "Where it lands": "inside-where-it-lands.png"}
    app.nav("Draw")
    _draw(app, "1")
    app.prediction()
    for name in VIEWS:
        _view(app, name)
        app.wait_rendered()
        app.assert_no_errors()
        before = _pictures(app)
        _draw(app, "7")  # a 1 with a flag on top: a new drawing, and a new reading
        _changed(app, before, MARK[name])
        app.wait_rendered()
        app.assert_no_errors()
        app.screenshot(shots[name].removesuffix(".png"))
        app.clear_canvas()
        app.main().get_by_text("Draw a digit on the canvas", exact=False).wait_for(timeout=LONG)
        _draw(app, "1")
        app.prediction()
    assert (SCREENSHOTS / "inside-every-layer.png").is_file()


@pytest.mark.screenshots
def test_presenter_mode_and_a_phone_show_the_layers(app):
    app.nav("Draw")
    app.page.locator('[data-testid="stSidebar"] label', has_text="Presenter mode").click()
    app.wait_idle()
    _draw(app, "7")
    app.prediction()
    _view(app, "Every layer")
    app.wait_rendered()
    app.assert_no_errors()
    app.screenshot("inside-presenter")
    app.page.set_viewport_size({"width": 390, "height": 844})
    app.page.wait_for_timeout(500)
    app.main().locator(".inside-layers").scroll_into_view_if_needed()
    app.page.wait_for_timeout(300)
    app.page.screenshot(path=str(SCREENSHOTS / "inside-phone.png"), full_page=False)
    app.assert_no_errors()


@pytest.mark.screenshots
def test_the_play_page_reads_the_painted_digit(app):
    app.nav("Play")
    metric = app.main().locator('[data-testid="stMetric"]', has_text="The model reads")
    metric.wait_for(timeout=LONG)
    canvas = app.page.locator('[data-testid="stBidiComponentIsolated"] canvas.upper-canvas')
    canvas.wait_for(timeout=LONG)
    box = canvas.bounding_box()
    mouse = app.page.mouse
    mouse.move(box["x"] + 0.2 * box["width"], box["y"] + 0.2 * box["height"])
    mouse.down()
    for k in range(1, 9):  # a bar across the top of the 4: it starts to look like a 9
        mouse.move(box["x"] + (0.2 + 0.075 * k) * box["width"], box["y"] + 0.2 * box["height"], steps=4)
    mouse.up()
    app.main().get_by_text("1 stroke", exact=False).first.wait_for(timeout=LONG)
    app.wait_rendered()
    app.assert_no_errors()
    app.main().get_by_role("button", name="Nudge", exact=False).click()
    app.main().get_by_text("nudged: read as", exact=False).wait_for(timeout=LONG)
    app.wait_rendered()
    app.assert_no_errors()
    app.screenshot("play")


def test_play_starts_from_the_last_drawing_on_the_draw_page(app):
    """Draw a 7 on Draw, open Play in the same tab and start from "my last drawing": the pad
    shows that drawing (its input picture is not the test digit's) and reads what Draw read."""
    app.nav("Draw")
    _draw(app, "7")
    digit, _ = app.prediction()
    app.nav("Play")
    metric = app.main().locator('[data-testid="stMetric"]', has_text="The model reads")
    metric.wait_for(timeout=LONG)
    test_digit = _pictures(app)
    app.main().locator('[data-testid="stRadio"] label', has_text="my last drawing").click()
    app.main().get_by_text(f"Your last drawing, as this model reads it: a {digit}.").wait_for(timeout=LONG)
    app.wait_idle()
    app.page.locator('[data-testid="stBidiComponentIsolated"] canvas.upper-canvas').wait_for(timeout=LONG)
    app.wait_rendered()
    app.assert_no_errors()
    assert metric.locator('[data-testid="stMetricValue"]').inner_text().strip() == str(digit)
    assert _pictures(app) != test_digit
    app.screenshot("play-last-drawing")


def test_a_click_on_a_map_shows_what_it_responds_to(app):
    """Every layer: a click on map 5 in the picture of the chosen layer's maps opens map 5's
    weights and strongest test images (the picker still works from the keyboard)."""
    app.nav("Draw")
    _draw(app, "7")
    app.prediction()
    _view(app, "Every layer")
    detail = app.main().get_by_text(re.compile(r", map 0: its weights"))
    detail.wait_for(timeout=LONG)
    plot = app.main().locator(".st-key-inside_pick_0 .js-plotly-plot")
    plot.wait_for(timeout=LONG)
    drag = plot.locator(".nsewdrag").first
    drag.wait_for(timeout=LONG)
    plot.scroll_into_view_if_needed()
    app.page.wait_for_timeout(300)  # the main area has scrolled
    box = drag.bounding_box()
    x, y = plot.evaluate("""gd => { const p = gd.calcdata[1][5], L = gd._fullLayout;
        return [L.xaxis.l2p(p.x), L.yaxis.l2p(p.y)]; }""")  # map 5's point, in the plot's pixels
    app.page.mouse.click(box["x"] + x, box["y"] + y)
    app.main().get_by_text(re.compile(r", map 5: its weights")).wait_for(timeout=LONG)
    app.main().get_by_text("The test images that drive it hardest").wait_for(timeout=LONG)
    app.wait_rendered()
    app.assert_no_errors()
    app.screenshot("inside-click-a-map")
