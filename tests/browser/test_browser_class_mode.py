"""A class server in Chromium (`DIGITLAB_CLASS_MODE=1`): each person joins with a name,
which the URL keeps; a student's run is read-only for another student; the teacher
(who typed the teacher code) publishes it, and it comes first in everyone's pickers. The
teacher's link (on the projector) makes no one else a teacher; run names with Markdown and
HTML are shown as text to a classmate on every page, and fetch nothing."""

from __future__ import annotations

import io
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import numpy as np
import pytest
from browser_app import LONG, VIEWPORT, App, join, new_run
from PIL import Image
from saved_runs import record

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


@pytest.fixture
def saved_run(tiny_job, class_server):
    """A finished run in the class's runs folder, as `person` started it, named `label`."""

    def make(person: str, label: str):
        path = record(tiny_job, class_server.runs, label=label)
        meta = json.loads((path / "meta.json").read_text())
        meta.update(owner="@" + person.casefold(), person=person)
        (path / "meta.json").write_text(json.dumps(meta))
        return path

    return make


def sidebar(app: App):
    return app.page.locator('[data-testid="stSidebar"]')


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


def test_the_teachers_link_opened_in_another_browser_makes_no_teacher(people, saved_run):
    saved_run("Ada", "ada-run")
    teacher = people()
    join(teacher, "Ms Smith", code="owl-42")
    sidebar(teacher).get_by_text("You are Ms Smith · teacher.").wait_for()
    teacher.nav("Runs")
    teacher.main().get_by_role("button", name="Publish to the class").wait_for()
    link = teacher.page.url  # what the projector shows
    assert "sid=" in link and "name=" in link, link

    for name in ("Bob T", None):  # his own name in the teacher's link, and the link as it is
        student = people()
        student.page.goto(link if name is None else re.sub(r"name=[^&]*", "name=Bob+T", link))
        student.heading("Runs").wait_for(timeout=LONG)
        student.wait_idle()
        shown = "You are Ms Smith." if name is None else "You are Bob T."
        sidebar(student).get_by_text(shown, exact=True).wait_for()
        assert not sidebar(student).get_by_text("· teacher").count()
        assert not student.main().get_by_role("button", name="Publish to the class").count()
        student.assert_no_errors()

    teacher.page.reload()  # a reload is a new tab: the code again, in the sidebar
    teacher.heading("Runs").wait_for(timeout=LONG)
    teacher.wait_idle()
    assert not teacher.main().get_by_role("button", name="Publish to the class").count()
    sidebar(teacher).locator("[data-testid=\"stExpander\"] summary").filter(has_text="Teacher code").click()
    sidebar(teacher).locator('input[type="password"]').fill("owl-42")
    sidebar(teacher).get_by_role("button", name="I am the teacher").click()
    teacher.main().get_by_role("button", name="Publish to the class").wait_for(timeout=LONG)


class _Counter(BaseHTTPRequestHandler):
    hits: ClassVar[list[str]] = []

    def do_GET(self):
        type(self).hits.append(self.path)
        self.send_response(404)
        self.end_headers()

    def log_message(self, *args):
        pass


@pytest.fixture
def elsewhere():
    """A web server on 127.0.0.1 that records every request a page makes to it."""
    _Counter.hits = []
    srv = ThreadingHTTPServer(("127.0.0.1", 0), _Counter)
    thread = threading.Thread(target=srv.serve_forever, daemon=True)
    thread.start()
    yield srv.server_address[1], _Counter.hits
    srv.shutdown()


def test_run_names_with_markup_are_text_for_a_classmate_on_every_page(people, saved_run, elsewhere):
    port, hits = elsewhere
    image = f"![p](http://127.0.0.1:{port}/p.png)"
    for label in (image, "<b>x</b>", "**x**"):
        saved_run("Ada", label)
    saved_run("Bob", f"![p](http://127.0.0.1:{port}/mine.png)")
    bob = people()
    join(bob, "Bob")
    sidebar(bob).get_by_text(f"![p](http://127.0.0.1:{port}/mine.png)", exact=False).first.wait_for()
    for page in ("Train", "Evaluate", "Embedding", "Draw", "Runs"):
        bob.nav(page)
        bob.wait_rendered()
        bob.assert_no_errors()
    main = bob.main()
    for label in (image, "<b>x</b>", "**x**"):
        for _ in range(3):  # a rerun can close the list as it opens
            main.locator(".st-key-runs_pick").get_by_role("combobox").click()
            try:
                bob.page.get_by_role("option").filter(has_text=f"Ada's {label} ·").first.click(timeout=5_000)
                break
            except Exception:  # noqa: BLE001 (playwright's error; the module is imported by conftest only)
                bob.page.keyboard.press("Escape")
                bob.wait_idle()
        bob.wait_rendered()
        main.get_by_text(f"Yes, delete {label} permanently").wait_for()
    bob.screenshot("class-runs-markup-as-text")
    assert not main.locator("b, strong").filter(has_text=re.compile(r"^x$")).count()
    made = bob.page.locator(f'img[src*="127.0.0.1:{port}"], a[href*="127.0.0.1:{port}"]')
    assert not made.count(), made.first.evaluate("e => e.parentElement.outerHTML")
    assert not sidebar(bob).locator(f'a[href*="127.0.0.1:{port}"]').count()

    bob.nav("Draw")  # a photo of paper (noise) is refused in a line, not a crash
    grey = np.random.default_rng(0).integers(0, 256, (280, 280), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(grey).save(buf, format="PNG")
    main.locator('.st-key-draw_upload_0 input[type="file"]').set_input_files(
        files=[{"name": "paper.png", "mimeType": "image/png", "buffer": buf.getvalue()}])
    error = main.locator('[data-testid="stAlertContentError"]')
    error.wait_for(timeout=LONG)
    assert "does not look like one digit" in error.inner_text()
    assert not bob.page.locator('[data-testid="stException"]').count()
    assert hits == [], hits  # no page fetched anything from the other server
