"""The Compare page and configuration links in Chromium: a race of two presets to the
finish (at 1280x720 and on a 390x844 phone), a 4-run sweep to its heat map, a shared link
opened in a new browser, and a teacher's locked configuration seen by a student."""

from __future__ import annotations

import pytest
from browser_app import LONG, SCREENSHOTS, VIEWPORT, App, join

pytestmark = pytest.mark.browser

PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True,
         "device_scale_factor": 2}


def choose(app: App, key: str, option: str) -> None:
    """Add `option` to the multiselect with widget key `key`."""
    app.main().locator(f".st-key-{key}").get_by_role("combobox").click()
    app.page.get_by_role("option", name=option, exact=True).click()
    app.page.keyboard.press("Escape")
    app.wait_idle()


def race_of_two(app: App) -> None:
    app.nav("Compare")
    choose(app, "race_picks", "Preset S1a · NumPy MLP 64-50-10, squared error")
    choose(app, "race_picks", "Preset S1b · PyTorch MLP 64-50-10, MSE")
    box = app.main().locator('.st-key-race_epochs input')
    box.fill("2")
    box.press("Enter")
    app.wait_idle()
    app.main().locator(".st-key-race_start button").click()
    app.main().get_by_text("wins with").wait_for(timeout=3 * LONG)
    app.wait_rendered()
    app.assert_no_errors()
    board = app.main().locator('[data-testid="stDataFrame"]').first
    board.wait_for()
    for label in ("S1a", "S1b"):
        assert app.main().get_by_text(f"{label}", exact=True).count() >= 1
    assert app.main().locator(".st-key-race_acc .main-svg").count() >= 1  # the live chart drawn


@pytest.mark.screenshots
@pytest.mark.parametrize("device", ["projector", "phone"])
def test_a_race_of_two_presets_runs_to_the_finish(chromium, server, device):
    context = chromium.new_context(**({"viewport": VIEWPORT} if device == "projector" else PHONE))
    try:
        page = context.new_page()
        page.set_default_timeout(30_000)
        app = App(page, server.url).open()
        if device == "phone":  # the sidebar is folded on a phone: open the page by its URL
            app.open("compare")
            app.heading("Compare").wait_for(timeout=LONG)
            app.nav = lambda name: None
        race_of_two(app)
        if device == "phone":  # App.screenshot sizes the page as a projector
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "compare_race_phone.png"))
            app.main().get_by_text("wins with").scroll_into_view_if_needed()
            page.wait_for_timeout(300)
            page.screenshot(path=str(SCREENSHOTS / "compare_race_phone_end.png"))
        else:
            app.screenshot("compare_race")
        # images seen: the fair axis
        app.main().get_by_text("images seen (fair when one is slower)").click()
        app.wait_rendered()
        title = app.main().locator(".st-key-race_acc .xtitle").first.text_content()
        assert title == "images seen", title
    finally:
        context.close()


@pytest.mark.screenshots
def test_a_four_run_sweep_ends_in_its_heat_map(app):
    app.nav("Compare")
    app.main().get_by_role("tab", name="Sweep").click()
    app.wait_idle()
    lr = app.main().locator(".st-key-sweep_v1_lr_False input")
    lr.fill("0.00001, 0.01")
    lr.press("Enter")
    app.wait_idle()
    app.pick("sweep_p2", "hidden width")
    app.main().get_by_text("4 runs.", exact=True).wait_for()
    app.main().locator(".st-key-sweep_start button").click()
    app.main().get_by_text("4 of 4 runs ended").wait_for(timeout=3 * LONG)
    app.main().locator(".st-key-sweep_result .hm image, .st-key-sweep_result .heatmaplayer").first.wait_for(
        state="attached", timeout=LONG)
    app.wait_rendered()
    app.assert_no_errors()
    app.screenshot("compare_sweep")
    app.main().locator(".st-key-sweep_best button").click()
    app.heading("Train").wait_for(timeout=LONG)


def test_a_shared_link_opens_filled_in_a_new_browser(chromium, server, app):
    app.nav("Train")
    app.pick_preset("S1b · PyTorch MLP 64-50-10, MSE")
    app.main().get_by_text("Share these settings as a link").click()
    link = app.main().locator('[data-testid="stCode"] code').filter(has_text="?exp=").inner_text().strip()
    assert link.startswith(server.url) and "sid=" not in link, link
    other = chromium.new_context(viewport=VIEWPORT)  # another person's browser
    try:
        page = other.new_page()
        page.set_default_timeout(30_000)
        b = App(page, server.url)
        page.goto(link)
        b.heading("Train").wait_for(timeout=LONG)
        b.wait_idle()
        b.main().get_by_text("The form is filled from the link").wait_for()
        assert b.form("epochs").locator("input").input_value() == "100"  # S1b's, not the default's
        assert b.main().get_by_text("Nothing trained in this session yet").count() == 1  # nothing started
        b.screenshot("link_opened")
        page.goto(f"{server.url}/train?exp=not-a-configuration")
        b.heading("Train").wait_for(timeout=LONG)
        b.wait_idle()
        error = b.main().locator('[data-testid="stAlertContentError"]')
        said = [e.split("\n\n")[-1].strip() for e in error.all_inner_texts()]  # after the icon
        assert len(said) == 1 and "not used" in said[0] and "\n" not in said[0], said
    finally:
        other.close()


def joined(chromium, srv, name: str, code: str = ""):
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    app = App(page, srv.url).open()
    join(app, name, code)
    return context, app


@pytest.mark.screenshots
def test_a_locked_class_configuration_leaves_students_the_open_controls(chromium, class_server):
    t_ctx, teacher = joined(chromium, class_server, "Mrs Owl", "owl-42")
    s_ctx = None
    try:
        teacher.nav("Train")
        teacher.pick_preset("S1b · PyTorch MLP 64-50-10, MSE")
        teacher.main().get_by_text("Publish to the class, locked").click()
        teacher.wait_idle()
        teacher.main().locator(".st-key-lock_publish button").click()
        teacher.main().get_by_text("Published:").wait_for()
        s_ctx, student = joined(chromium, class_server, "Bob")
        student.nav("Train")
        student.main().get_by_text("Your teacher's configuration").wait_for()
        assert student.form("epochs").locator("input").is_disabled()
        assert student.form("epochs").locator("input").input_value() == "100"
        assert not student.form("lr").get_by_role("slider").is_disabled()
        assert student.main().locator(".st-key-preset_pick").count() == 0
        student.screenshot("train_locked")
    finally:
        t_ctx.close()
        if s_ctx is not None:
            s_ctx.close()
