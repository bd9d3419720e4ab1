"""`make bench-ui`: what a person waits for in the browser, timed in headless Chromium
against a fresh `streamlit run` on 127.0.0.1 (never in a test: timings are not verdicts
there).

- first page: server healthy -> Home's title and digit grid drawn (first visitor);
- stroke -> prediction on the Draw page: p50/p90 idle, and while a job trains;
- training speed: the `fast` preset trained from the dashboard against the same
  experiment trained by the CLI (`python -m digits_core train --preset fast`), as
  images per second of training time (each from its run's own history);
- Start -> first point on the charts, for the digits `fast` preset.

    python -m benchmarks.ui [--out bench-results/ui.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.loadtest import ARGS, CHROMIUM, REPO, VIEWPORT, Server, draw_latencies, percentile

GOALS = {  # key: (target, "lower"/"higher")
    "first_page_s": (2.0, "lower"),
    "stroke_p50_idle_ms": (150.0, "lower"),
    "stroke_p50_busy_ms": (250.0, "lower"),
    "dashboard_over_cli_speed": (0.9, "higher"),
    "start_to_first_point_s": (2.0, "lower"),
}


def images_per_s(run_dir: Path) -> float:
    """Images trained per second of training time, from a run folder's history."""
    sys.path.insert(0, str(REPO))
    from digits_core.runs import load_run

    run = load_run(run_dir)
    h, tc = run.history, run.experiment.train
    return len(h.steps) * tc.batch_size / max(h.elapsed, 1e-9)


def cli_speed(work: Path) -> float:
    out = work / "cli-runs"
    r = subprocess.run([sys.executable, "-m", "digits_core", "train", "--preset", "fast", "--out", str(out),
                        "--quiet"], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr
    return images_per_s(Path(r.stdout.strip().splitlines()[-1]))


def bench_ui() -> dict:
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
            page.get_by_role("heading", name="Digit Lab", exact=True).wait_for()
            page.locator('[data-testid="stPlotlyChart"] .main-svg').first.wait_for()
            out["first_page_s"] = time.perf_counter() - t0
            out["server_start_to_health_s"] = t0 - t_health

            idle = draw_latencies(page, server.url, strokes=12)
            out["stroke_p50_idle_ms"] = 1000 * statistics.median(idle) if idle else None
            out["stroke_p90_idle_ms"] = 1000 * percentile(idle, 90) if idle else None

            trainer = ctx.new_page()
            trainer.goto(server.url + "/")
            trainer.get_by_role("button", name="Train a good model fast").click()
            trainer.get_by_role("button", name="Start training").wait_for()
            t1 = time.perf_counter()
            trainer.get_by_role("button", name="Start training").click()
            trainer.wait_for_function(
                """() => [...document.querySelectorAll('.js-plotly-plot')].some(
                      el => el._fullData && el._fullData.some(t => t.x && t.x.length > 0))""",
                timeout=120_000, polling=50)
            out["start_to_first_point_s"] = time.perf_counter() - t1

            busy = draw_latencies(page, server.url, strokes=12)
            out["stroke_p50_busy_ms"] = 1000 * statistics.median(busy) if busy else None
            out["stroke_p90_busy_ms"] = 1000 * percentile(busy, 90) if busy else None
            trainer.get_by_text("Finished 15 epochs").wait_for(timeout=900_000)
            browser.close()
        [run] = [p for p in runs.iterdir() if p.is_dir()]
        out["dashboard_images_per_s"] = images_per_s(run)
    finally:
        server.stop()
    out["cli_images_per_s"] = cli_speed(work)
    out["dashboard_over_cli_speed"] = out["dashboard_images_per_s"] / out["cli_images_per_s"]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.ui", description=__doc__.split("\n")[0])
    p.add_argument("--out", default=str(REPO / "bench-results" / "ui.json"))
    a = p.parse_args(argv)
    r = bench_ui()
    verdicts = {}
    for key, (target, better) in GOALS.items():
        v = r.get(key)
        verdicts[key] = v is not None and (v <= target if better == "lower" else v >= target)
        print(f"{key:28} {v if v is None else round(v, 3):>10}  {'<=' if better == 'lower' else '>='} "
              f"{target:<6} {'PASS' if verdicts[key] else 'FAIL'}")
    for key in sorted(set(r) - set(GOALS)):
        print(f"{key:28} {round(r[key], 3)}")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(dict(figures=r, passed=verdicts), indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
