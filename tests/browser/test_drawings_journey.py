"""The drawings loop in Chromium: draw -> misread -> "No, it's a 1" -> teach -> read right,
on the ready-made model with no run; and in class mode, two students marking drawings and
the teacher taking one out of the class's set.

The digit is a real person's 1 (UCI pendigits, Alpaydin & Alimoglu 1998, CC BY 4.0:
writer 28, drawn with a long lead-in stroke) that the ready-made model reads as a 7."""

from __future__ import annotations

import json
import re

import pytest
from browser_app import LONG, VIEWPORT, App, start_server
from repo_paths import SHARED_MNIST
from test_browser_class_mode import join

pytestmark = pytest.mark.browser

ONE_READ_AS_7 = [[(0.309, 0.432), (0.324, 0.417), (0.349, 0.382), (0.399, 0.316), (0.455, 0.251),
                  (0.545, 0.19), (0.626, 0.15), (0.681, 0.155), (0.691, 0.215), (0.651, 0.321),
                  (0.576, 0.472), (0.495, 0.623), (0.424, 0.759), (0.379, 0.85)]]
A_ZERO = [[(0.50, 0.15), (0.30, 0.30), (0.28, 0.65), (0.50, 0.85), (0.70, 0.65), (0.70, 0.30), (0.50, 0.15)]]
TEACHING = 6 * LONG  # one epoch on a shared 2-core machine, MNIST measured after


def mark_as(app: App, digit: int) -> None:
    """Click "No, it's a" + `digit` under the reading; wait until it says it is kept."""
    app.main().locator('[class*="st-key-mark_other_"]').get_by_role("radio", name=str(digit), exact=True).click()
    app.main().get_by_text(re.compile(rf"^Kept as a {digit}, misread as")).wait_for(timeout=LONG)
    app.wait_idle()


def teach_and_wait(app: App) -> None:
    app.nav("Drawings")
    app.main().locator(".st-key-drawings_view").get_by_text("Teach the model", exact=True).click()
    app.wait_idle()
    app.main().get_by_role("button", name=re.compile(r"^Teach ")).click()
    app.main().get_by_text(re.compile(r"^Taught: the new run")).wait_for(timeout=TEACHING)
    app.wait_idle()


def _server(tmp_path_factory, name: str, **env):
    if not (SHARED_MNIST / "train-images-idx3-ubyte.gz").is_file():
        pytest.skip(f"MNIST files not found in {SHARED_MNIST}")
    folder = tmp_path_factory.mktemp(name)
    (folder / "runs").mkdir()
    (folder / "runs" / "settings.json").write_text(json.dumps({"mnist_dir": str(SHARED_MNIST)}))
    return start_server(folder / "runs", folder / "home", folder / "streamlit.log", **env)


@pytest.fixture(scope="module")
def mnist_server(chromium, tmp_path_factory):
    srv = _server(tmp_path_factory, "drawings")
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def class_server(chromium, tmp_path_factory):
    srv = _server(tmp_path_factory, "drawings-class", DIGITLAB_CLASS_MODE="1", DIGITLAB_TEACHER_CODE="owl-42")
    yield srv
    srv.stop()


def tab(chromium, url: str) -> App:
    context = chromium.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(30_000)
    return App(page, url).open()


def test_draw_misread_mark_teach_read_right_on_the_ready_made_model(chromium, mnist_server):
    app = tab(chromium, mnist_server.url)
    try:
        app.nav("Draw")
        assert not mnist_server.run_dirs()  # no run: the ready-made model reads it
        app.draw(ONE_READ_AS_7)
        digit, _ = app.prediction()
        assert digit == 7
        mark_as(app, 1)
        app.screenshot("drawings-marked")
        teach_and_wait(app)
        main = app.main()
        assert re.search(r"is now read as 1: right", main.locator(".read-again").inner_text())
        app.assert_no_errors()
        app.screenshot("drawings-taught")
        [taught] = mnist_server.run_dirs()
        assert taught.name.startswith("ready-made-taught")
        app.nav("Draw")  # the taught run is now the model picked
        app.draw(ONE_READ_AS_7)
        digit, _ = app.prediction()
        assert digit == 1
    finally:
        app.page.context.close()


def tiles(app: App) -> int:
    return app.main().locator(".drawing-tile").count()


def test_a_class_marks_drawings_the_teacher_takes_one_out_and_a_student_teaches(chromium, class_server):
    ada, ben, tess = (tab(chromium, class_server.url) for _ in range(3))
    try:
        join(ada, "Ada")
        join(ben, "Ben")
        join(tess, "Tess", code="owl-42")
        ben.nav("Draw")
        ben.draw(A_ZERO)
        zero, _ = ben.prediction()
        mark_as(ben, (zero + 5) % 10)  # a drawing labelled wrong: the teacher takes it out
        ada.nav("Draw")
        ada.draw(ONE_READ_AS_7)
        assert ada.prediction()[0] == 7
        mark_as(ada, 1)

        tess.nav("Drawings")
        assert tiles(tess) == 2
        tess.main().locator('[class*="st-key-unshare_"] button').first.wait_for()
        assert tess.main().locator('[class*="st-key-drawings_download"]').count() == 1
        # take Ben's out: the tile labelled (zero + 5) % 10
        ben_tile = tess.main().locator(f'.drawing-tile[data-label="{(zero + 5) % 10}"]')
        drawing_id = ben_tile.get_attribute("data-id")
        tess.main().locator(f".st-key-unshare_{drawing_id} button").first.click()
        tess.wait_idle()
        tess.screenshot("drawings-class-teacher")

        ada.nav("Drawings")
        assert tiles(ada) == 1  # her own; Ben's is out of the class's set
        assert ada.main().locator('[class*="st-key-drawings_download"]').count() == 0
        ben.nav("Drawings")
        assert tiles(ben) == 2  # Ben still sees his own
        teach_and_wait(ada)
        assert "is now read as 1: right" in ada.main().locator(".read-again").inner_text()
        ada.assert_no_errors()
    finally:
        for a in (ada, ben, tess):
            a.page.context.close()
