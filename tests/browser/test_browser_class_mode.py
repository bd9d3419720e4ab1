"""A class server in Chromium (`DIGITLAB_CLASS_MODE=1`): each person joins with a name,
which the URL keeps; a student's run is read-only for another student; the teacher
(who typed the teacher code) publishes it, and it comes first in everyone's pickers."""

from __future__ import annotations

import re

import pytest
from browser_app import LONG, VIEWPORT, App, new_run

pytestmark = pytest.mark.browser


@pytest.fixture
def people(chromium, class_server):
    """A fresh browser (its own cookies and tabs) per person; all closed at the end."""
    contexts = []

    def person() -> App:
        context = chromium.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(30_000)
        return App(page, class_server.url).open()

    yield person
    for c in contexts:
        c.close()


def join(app: App, name: str, code: str = "") -> None:
    app.heading("Join the class").wait_for()
    app.main().locator('input[aria-label="Your name"]').fill(name)
    if code:
        app.main().locator('input[aria-label="Teacher code (teachers only)"]').fill(code)
    app.main().get_by_role("button", name="Join").click()
    app.heading("Digit Lab").wait_for(timeout=LONG)
    app.wait_idle()


def test_a_class_joins_by_name_and_reads_each_others_runs(people, class_server):
    ada = people()
    ada.main().get_by_role("button", name="Join").click()  # no name yet
    ada.main().get_by_text("type your name").wait_for()
    ada.screenshot("class-join")
    join(ada, "Ada")
    assert re.search(r"[?&]name=Ada(&|$)", ada.page.url), ada.page.url
    ada.page.locator('[data-testid="stSidebar"]').get_by_text("You are Ada.").wait_for()
    ada.page.reload()  # F5: still Ada, no form
    ada.heading("Digit Lab").wait_for(timeout=LONG)
    assert not ada.heading("Join the class").count()

    ada.nav("Train")
    before = set(class_server.run_dirs())
    ada.start_training(epochs=3)
    run = new_run(class_server, before)
    ada.wait_trained()

    bob = people()
    join(bob, "Bob")
    bob.nav("Runs")
    main = bob.main()
    main.get_by_text(re.compile(r"^Ada's run: you can look at it")).wait_for()
    assert main.locator(".st-key-runs_delete button").is_disabled()
    assert not main.locator(".st-key-runs_continue").count()
    assert not main.locator(".st-key-runs_publish").count()  # students publish nothing
    bob.screenshot("class-runs-read-only")

    teacher = people()
    join(teacher, "Ms Smith", code="owl-42")
    teacher.page.locator('[data-testid="stSidebar"]').get_by_text("You are Ms Smith · teacher.").wait_for()
    teacher.nav("Runs")
    teacher.main().get_by_role("button", name="Publish to the class").click()
    teacher.main().get_by_role("button", name="Take back from the class").wait_for()
    teacher.assert_no_errors()

    carl = people()  # no runs of his own: Draw opens on the published run
    join(carl, "Carl")
    carl.nav("Draw")
    picker = carl.main().locator('[class*="st-key-pick_run_"]')
    picker.wait_for()
    shown = picker.locator("input").first.input_value() + picker.inner_text()
    assert f"📌 Ada's {run.name}" in shown, shown
    assert re.search(r"[?&]name=Carl(&|$)", carl.page.url), carl.page.url  # kept across pages
    carl.assert_no_errors()


def test_a_name_someone_is_using_right_now_is_not_given_to_a_second_person(people):
    """Two Bens in one class: the second is told the name is in use and to add an initial,
    instead of quietly sharing the first one's runs; with the initial they join."""
    first = people()
    join(first, "Ben")
    second = people()
    second.heading("Join the class").wait_for()
    second.main().locator('input[aria-label="Your name"]').fill("ben")
    second.main().get_by_role("button", name="Join").click()
    second.main().get_by_text("someone has joined as ben and is here right now").wait_for()
    assert "name=" not in second.page.url
    join(second, "Ben K.")
    second.page.locator('[data-testid="stSidebar"]').get_by_text("You are Ben K.").wait_for()
