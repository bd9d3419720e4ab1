"""`make bench-ui`: what a person waits for in the browser, timed in headless Chromium
against a fresh `streamlit run` on 127.0.0.1 (never in a test: timings are not verdicts
there).

- first page: server healthy -> Home's title and digit grid drawn (first visitor);
- stroke -> prediction on the Draw page: p50/p90 idle, and while a job trains;
- stroke -> the inside view's layers ("Every layer", below the reading) updated, likewise;
- training speed: the `fast` preset trained from the dashboard (a run of its own, with only
  the trainer's window open) against the same experiment trained by the CLI (`python -m
  digits_core train --preset fast`), as images per second of training time (each from its
  run's own history);
- Start -> first point on the charts, for the digits `fast` preset.

    python -m benchmarks.ui [--out bench-results/ui.json] [--strokes-only | --speed-only]

`--strokes-only` times just the strokes, idle and while the `fast` preset trains (about a
minute instead of several), for trying a change to the Draw page. `--speed-only` times
just the watched run against the CLI's, with the CPU seconds the browser and the server
spent while the dashboard trained (what a poll costs), for trying a change to the live view.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.loadtest import (
    ARGS,
    CHROMIUM,
    REPO,
    VIEWPORT,
    Server,
    draw_latencies,
    open_draw_page,
    percentile,
    wait_home_drawn,
)

# Ten digits drawn with the mouse, as polylines in fractions of the canvas (x right, y down).
MOUSE_DIGITS = {
    0: [[(0.5 + 0.22 * math.cos(t * math.pi / 8), 0.5 + 0.34 * math.sin(t * math.pi / 8)) for t in range(17)]],
    1: [[(0.42, 0.25), (0.52, 0.14), (0.52, 0.86)]],
    2: [[(0.3, 0.3), (0.4, 0.18), (0.55, 0.15), (0.68, 0.22), (0.7, 0.35), (0.6, 0.5), (0.45, 0.65),
         (0.3, 0.82), (0.72, 0.82)]],
    3: [[(0.3, 0.2), (0.5, 0.13), (0.68, 0.22), (0.65, 0.38), (0.48, 0.47), (0.66, 0.55), (0.7, 0.7),
         (0.55, 0.84), (0.3, 0.8)]],
    4: [[(0.55, 0.15), (0.28, 0.6), (0.75, 0.6)], [(0.62, 0.35), (0.62, 0.88)]],
    5: [[(0.68, 0.15), (0.35, 0.15), (0.32, 0.45), (0.5, 0.42), (0.66, 0.52), (0.68, 0.7), (0.55, 0.84),
         (0.32, 0.8)]],
    6: [[(0.62, 0.14), (0.45, 0.3), (0.34, 0.55), (0.36, 0.75), (0.5, 0.85), (0.65, 0.75), (0.65, 0.58),
         (0.5, 0.5), (0.36, 0.6)]],
    7: [[(0.28, 0.18), (0.72, 0.18), (0.55, 0.5), (0.45, 0.85)]],
    8: [[(0.62, 0.22), (0.5, 0.14), (0.38, 0.22), (0.4, 0.35), (0.5, 0.47), (0.62, 0.58), (0.64, 0.74),
         (0.5, 0.85), (0.36, 0.74), (0.38, 0.58), (0.5, 0.47), (0.6, 0.35), (0.62, 0.22)]],
    9: [[(0.64, 0.3), (0.55, 0.17), (0.4, 0.2), (0.36, 0.35), (0.45, 0.45), (0.6, 0.42), (0.65, 0.3),
         (0.63, 0.55), (0.6, 0.85)]],
}

GOALS = {  # key: (target, "lower"/"higher")
    "first_page_s": (2.0, "lower"),
    "stroke_p50_idle_ms": (150.0, "lower"),
    "stroke_p50_busy_ms": (250.0, "lower"),
    "stroke_layers_p50_busy_ms": (300.0, "lower"),
    "dashboard_over_cli_speed": (0.9, "higher"),
    "start_to_first_point_s": (2.0, "lower"),
}


def images_per_s(run_dir: Path) -> float:
    """Images trained per second of training time, from a run folder's history."""
    sys.path.insert(0, str(REPO))
    from digits_core.store.runs import load_run

    run = load_run(run_dir)
    h, tc = run.history, run.experiment.train
    return len(h.steps) * tc.batch_size / max(h.elapsed, 1e-9)


def cli_speed(work: Path) -> float:
    out = work / "cli-runs"
    r = subprocess.run([sys.executable, "-m", "digits_core", "train", "--preset", "fast", "--out", str(out),
                        "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return images_per_s(Path(r.stdout.strip().splitlines()[-1]))


def cpu_seconds(procs) -> float:
    """User + system CPU seconds the processes `procs` (psutil) have used so far."""
    import psutil

    total = 0.0
    for p in procs:
        with contextlib.suppress(psutil.Error):  # a renderer that has ended used what it used
            t = p.cpu_times()
            total += t.user + t.system
    return total


def browser_processes():
    """This process's Chromium processes (the browser and its renderers), as psutil sees them."""
    import psutil

    return [p for p in psutil.Process().children(recursive=True) if "chrom" in p.name().lower()]


def dashboard_speed(trainer, runs: Path, before: set[str]) -> float:
    """Start the `fast` preset again on the trainer's page, wait for it to finish, and
    return its images per second of training time."""
    sys.path.insert(0, str(REPO))
    from digits_core.store.runs import inspect_run

    trainer.goto(trainer.url.split("?")[0].rsplit("/", 1)[0] + "/")
    wait_home_drawn(trainer)
    trainer.get_by_role("button", name="Train a good model fast").click()
    trainer.get_by_role("button", name="Start training").wait_for()
    trainer.wait_for_function("""() => document.querySelector('[data-testid="stApp"]')
        .getAttribute('data-test-script-state') === 'notRunning'""", polling=50)
    trainer.wait_for_timeout(1000)
    trainer.get_by_role("button", name="Start training").click()
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline:
        new = [p for p in runs.iterdir() if p.is_dir() and p.name not in before] if runs.is_dir() else []
        if new and inspect_run(new[0]).status in ("finished", "stopped", "failed", "diverged"):
            return images_per_s(new[0])
        time.sleep(0.5)
    raise TimeoutError("the dashboard's speed run did not finish in 15 minutes")


def mouse_digits(page, url: str) -> dict[int, int | None]:
    """Each of MOUSE_DIGITS drawn with the mouse on the real Draw page: digit -> reading."""
    canvas = open_draw_page(page, url)
    out = {}
    for digit, strokes in MOUSE_DIGITS.items():
        canvas.hover()
        page.locator('[data-testid="stBidiComponentIsolated"] button[aria-label="Clear the canvas"]').click()
        page.get_by_text("Draw a digit on the canvas", exact=False).wait_for()
        box = canvas.bounding_box()
        for stroke in strokes:
            pts = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in stroke]
            page.mouse.move(*pts[0])
            page.mouse.down()
            for x, y in pts[1:]:
                page.mouse.move(x, y, steps=8)
            page.mouse.up()
            page.wait_for_timeout(300)
        metric = page.locator('[data-testid="stMetric"]', has_text="Prediction")
        metric.wait_for()
        page.wait_for_timeout(800)
        text = metric.locator('[data-testid="stMetricValue"]').inner_text().strip()
        out[digit] = int(text) if text.isdigit() else None
    return out


def layers_latencies(page, url: str, strokes: int = 8) -> list[float]:
    """Stroke -> the inside view's layers redrawn for it (its input row's picture changes), in
    seconds from the pen lifting, for vertical strokes as `draw_latencies` draws them."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    canvas = open_draw_page(page, url, "")
    layers = """() => { const i = document.querySelector('.inside-layers img'); return i ? i.src : ''; }"""
    out = []
    for k in range(strokes):
        box = canvas.bounding_box()
        x = box["x"] + box["width"] * (0.1 + 0.08 * (k % 10))
        before = page.evaluate(layers)
        page.mouse.move(x, box["y"] + 0.15 * box["height"])
        page.mouse.down()
        page.mouse.move(x, box["y"] + (0.5 + 0.03 * k) * box["height"], steps=10)
        t0 = time.perf_counter()
        page.mouse.up()
        try:
            page.wait_for_function(f"(before) => ({layers})() !== before", arg=before, timeout=30_000, polling="raf")
        except PlaywrightTimeout:
            continue  # a stroke the view never followed within 30 s: left out, as draw_latencies does
        out.append(time.perf_counter() - t0)
    return out


def watched_speed(browser, server: Server, runs: Path, out: dict) -> None:
    """The `fast` preset trained from a page of its own (nothing else open): its images/s,
    and the CPU seconds the browser and the server used while it trained."""
    import psutil

    trainer = browser.new_context(viewport=VIEWPORT).new_page()
    trainer.set_default_timeout(90_000)
    trainer.goto(server.url + "/")
    wait_home_drawn(trainer)
    server_procs = [psutil.Process(server.proc.pid), *psutil.Process(server.proc.pid).children(recursive=True)]
    b0, s0, t0 = cpu_seconds(browser_processes()), cpu_seconds(server_procs), time.perf_counter()
    out["dashboard_images_per_s"] = dashboard_speed(trainer, runs, set())
    wall = time.perf_counter() - t0
    out["watched_browser_cpu_share"] = (cpu_seconds(browser_processes()) - b0) / wall
    out["watched_server_cpu_share"] = (cpu_seconds(server_procs) - s0) / wall


def bench_speed() -> dict:
    """Only the watched run and the CLI's right after it, on the machine as it is then."""
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="digitlab-bench-speed-"))
    out: dict = {}
    server = Server(work / "runs", "threads")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            watched_speed(browser, server, work / "runs", out)
            browser.close()
    finally:
        server.stop()
    out["cli_images_per_s"] = cli_speed(work)
    out["dashboard_over_cli_speed"] = out["dashboard_images_per_s"] / out["cli_images_per_s"]
    return out


def bench_ui(strokes_only: bool = False) -> dict:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="digitlab-bench-ui-"))
    runs = work / "runs"
    out: dict = {}
    t_health = time.perf_counter()
    server = Server(runs, "threads")
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=ARGS)
            ctx = browser.new_context(viewport=VIEWPORT)
            page = ctx.new_page()
            page.set_default_timeout(90_000)
            t0 = time.perf_counter()
            page.goto(server.url + "/")
            wait_home_drawn(page)
            out["first_page_s"] = time.perf_counter() - t0
            out["server_start_to_health_s"] = t0 - t_health

            if not strokes_only:
                readings = mouse_digits(page, server.url)  # with the ready-made model
                out["mouse_digits_read"] = {str(k): v for k, v in readings.items()}
                out["mouse_digits_acc"] = sum(k == v for k, v in readings.items()) / len(readings)
            idle = draw_latencies(page, server.url, strokes=12)
            out["stroke_p50_idle_ms"] = 1000 * statistics.median(idle) if idle else None
            out["stroke_p90_idle_ms"] = 1000 * percentile(idle, 90) if idle else None
            layers = layers_latencies(page, server.url)
            out["stroke_layers_p50_idle_ms"] = 1000 * statistics.median(layers) if layers else None

            # The trainer in a window of its own: a tab behind another is throttled by Chromium
            # (its timers slow to a crawl), which would time the browser, not the app.
            trainer = browser.new_context(viewport=VIEWPORT).new_page()
            trainer.goto(server.url + "/")
            trainer.get_by_role("button", name="Train a good model fast").click()
            trainer.get_by_role("button", name="Start training").wait_for()
            # pressed once the page has finished drawing (as a person would): the clock times
            # the run's start, not the page switch still in flight
            trainer.wait_for_function("""() => document.querySelector('[data-testid="stApp"]')
                .getAttribute('data-test-script-state') === 'notRunning'""", polling=50)
            trainer.wait_for_timeout(500)
            t1 = time.perf_counter()
            trainer.get_by_role("button", name="Start training").click()
            trainer.wait_for_function(
                """() => [...document.querySelectorAll('.js-plotly-plot')].some(
                      el => el._fullData && el._fullData.some(t => t.x && t.x.length > 0))""",
                timeout=120_000, polling=50)
            out["start_to_first_point_s"] = time.perf_counter() - t1

            page.bring_to_front()
            busy = draw_latencies(page, server.url, strokes=12)
            out["stroke_p50_busy_ms"] = 1000 * statistics.median(busy) if busy else None
            out["stroke_p90_busy_ms"] = 1000 * percentile(busy, 90) if busy else None
            layers = layers_latencies(page, server.url)
            out["stroke_layers_p50_busy_ms"] = 1000 * statistics.median(layers) if layers else None
            out["strokes_idle_ms"] = [round(1000 * t) for t in idle]
            out["strokes_busy_ms"] = [round(1000 * t) for t in busy]
            if strokes_only:
                return out
            trainer.get_by_text("Finished 15 epochs").wait_for(timeout=900_000)
            first_run = {p.name for p in runs.iterdir() if p.is_dir()}
            # The speed run: the same preset again, with only the trainer's window open (the
            # run above shared the machine with the strokes drawn on the Draw page).
            page.context.close()
            out["dashboard_images_per_s"] = dashboard_speed(trainer, runs, first_run)
            browser.close()
    finally:
        server.stop()
    out["cli_images_per_s"] = cli_speed(work)
    out["dashboard_over_cli_speed"] = out["dashboard_images_per_s"] / out["cli_images_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ui", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO / "bench-results" / "ui.json"))
    p.add_argument("--strokes-only", action="store_true",
                   help="only stroke -> prediction, idle and while training (about a minute)")
    p.add_argument("--speed-only", action="store_true",
                   help="only the watched run against the CLI's, with the browser's and the server's CPU")
    a = p.parse_args(argv)
    r = bench_speed() if a.speed_only else bench_ui(a.strokes_only)
    verdicts = {}
    for key, (target, better) in GOALS.items():
        if (a.strokes_only and not key.startswith("stroke_")) or (a.speed_only and key not in r):
            continue
        v = r.get(key)
        verdicts[key] = v is not None and (v <= target if better == "lower" else v >= target)
        print(f"{key:28} {v if v is None else round(v, 3):>10}  {'<=' if better == 'lower' else '>='} "
              f"{target:<6} {'PASS' if verdicts[key] else 'FAIL'}")
    for key in sorted(set(r) - set(GOALS)):
        v = r[key]
        print(f"{key:28} {round(v, 3) if isinstance(v, float) else v}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(figures=r, passed=verdicts), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
