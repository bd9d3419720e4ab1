"""`make loadtest`: a class on one server, in real headless Chromium (127.0.0.1 only).

N students (default 12; `--students 30`) each open the app in a browser context of their
own and start a small training on the bundled digits; some reload their tab, some close it
for good, some draw on the Draw page. Meanwhile a new visitor opens the app every few
seconds. The run is bounded in time (`--deadline`) and stops by itself.

Reported (a table and `bench-results/loadtest-<executor>.json`): runs started, finished,
stopped by a closed tab, lost (a started run that is missing, broken or interrupted: must
be 0); a new visitor's first page rendered (p50/p95, from navigation to the Home page's
title and digit grid drawn); stroke -> prediction on the Draw page (p50); the server's
RSS (idle, peak, and after everyone left, which should be back within 20 % of idle); and
where the machine's CPU time went while the class trained (server, students' browser,
visitor's browser).

In a class every student's browser runs on the student's own computer; here they all share
the server's cores. So the students' tabs live in a Chromium of their own started at the
lowest priority (`--student-nice 19`, the default): they still draw every live chart, but
when the server or the visitor's browser wants a core they yield it, as other computers
would. `--student-nice 0` puts them on an equal footing with the server (the harsher
setup the earlier figures in the README used).

    python -m benchmarks.loadtest [--students 12] [--executor threads|processes|ray]
                                  [--student-nice 19]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("DIGITLAB_CHROMIUM", "/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
VIEWPORT = {"width": 1280, "height": 720}
EPOCHS = 150  # the default NumPy MLP on the digits: about 10 s alone on one core


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


class Server:
    """`streamlit run streamlit_app.py` on 127.0.0.1 with its own runs folder; RSS sampled."""

    def __init__(self, runs: Path, executor: str, class_mode: bool = False):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ, DIGITLAB_RUNS=str(runs), DIGITLAB_EXECUTOR=executor,
                   DIGITLAB_DATA_HOME=str(runs.parent / "data-home"),
                   DIGITLAB_CLASS_MODE="1" if class_mode else "0")
        self.log = open(runs.parent / "server.log", "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "streamlit_app.py", "--server.port",
             str(self.port), "--server.address", "127.0.0.1", "--server.headless", "true"],
            cwd=REPO, env=env, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        self.rss: list[tuple[float, float]] = []  # (seconds since start, MiB of the process tree)
        self._stop = threading.Event()
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as r:
                    if r.read().strip() == b"ok":
                        break
            except OSError:
                time.sleep(0.3)
        else:
            raise RuntimeError("the server did not answer within 90 s")
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        import psutil

        t0 = time.monotonic()
        root = psutil.Process(self.proc.pid)
        while not self._stop.is_set():
            try:
                procs = [root, *root.children(recursive=True)]
                mib = sum(p.memory_info().rss for p in procs) / 2**20
                self.rss.append((time.monotonic() - t0, mib))
            except psutil.Error:
                pass
            time.sleep(1.0)

    def rss_now(self) -> float:
        return self.rss[-1][1] if self.rss else 0.0

    def settled_rss(self, within: float = 0.02, limit_s: float = 90.0) -> float:
        """The RSS once it has stopped growing (two readings 3 s apart within 2 %): the
        server imports torch and friends in the background after its first page."""
        end, last = time.monotonic() + limit_s, -1.0
        while time.monotonic() < end:
            time.sleep(3)
            now = self.rss_now()
            if last > 0 and abs(now - last) <= within * last:
                return now
            last = now
        return self.rss_now()

    def stop(self) -> None:
        self._stop.set()
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(20)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.log.close()


def wait_home_drawn(page, timeout: float | None = None) -> None:
    """Until the Home page is rendered: its title, and its grid of sample digits shown
    (`timeout` in ms; None: the page's default)."""
    page.get_by_role("heading", name="Digit Lab", exact=True).wait_for(timeout=timeout)
    page.wait_for_function("""() => { const i = document.querySelector('.digit-grid img');
                                      return i && i.complete && i.naturalWidth > 0; }""",
                           timeout=timeout, polling=50)


FIRST_PAGE_TIMEOUT_S = 60.0  # a visitor who waits longer has given up: counted at this


def first_page(browser, url: str, query: str = "") -> float:
    """Seconds from navigation to Home's title and digit grid drawn, in a fresh context
    (FIRST_PAGE_TIMEOUT_S if it did not come by then)."""
    from playwright.sync_api import TimeoutError as PageTimeout

    ctx = browser.new_context(viewport=VIEWPORT)
    page = ctx.new_page()
    page.set_default_timeout(1000 * FIRST_PAGE_TIMEOUT_S)
    t0 = time.perf_counter()
    try:
        page.goto(url + "/" + query)
        wait_home_drawn(page)
        total = time.perf_counter() - t0
        FIRST_PAGE_PARTS.append(page.evaluate(PAGE_PARTS_JS) | {"total": round(1000 * total)})
        return total
    except PageTimeout:
        return FIRST_PAGE_TIMEOUT_S
    finally:
        ctx.close()


FIRST_PAGE_PARTS: list[dict] = []  # where each first page's time went (ms from navigation)
PAGE_PARTS_JS = """() => {
    const nav = performance.getEntriesByType('navigation')[0];
    const res = performance.getEntriesByType('resource');
    const scripts = res.filter(r => r.initiatorType === 'script' || r.name.endsWith('.js'));
    const first = res.filter(r => r.startTime < nav.responseEnd + 100);  // the bundle the HTML names
    return {html: Math.round(nav.responseEnd),
            bundle_served: Math.round(Math.max(0, ...first.map(r => r.responseEnd))),
            dom_ready: Math.round(nav.domContentLoadedEventEnd),
            scripts_loaded: Math.round(Math.max(0, ...scripts.map(r => r.responseEnd))),
            drawn: Math.round(performance.now())};
}"""


def page_parts(parts: list[dict]) -> dict:
    """The median of each part of the first pages, in ms from navigation."""
    if not parts:
        return {}
    return {k: round(statistics.median(p[k] for p in parts)) for k in parts[0]}


def start_training(page, url: str, query: str = "") -> None:
    page.goto(url + "/train" + query, timeout=60_000)
    main = page.locator('[data-testid="stMain"]')
    main.get_by_text("NumPy MLP (from scratch)", exact=True).wait_for(timeout=60_000)
    box = main.get_by_label("Epochs", exact=True)
    box.fill(str(EPOCHS))
    box.press("Enter")
    page.wait_for_timeout(800)
    main.get_by_role("button", name="Start training").click()
    main.locator('[data-testid="stProgress"], [data-testid="stAlertContainer"]').first.wait_for(timeout=60_000)


def open_draw_page(page, url: str, query: str = ""):
    """Open the Draw page by its URL; returns its canvas once the pad listens."""
    page.goto(url + "/draw" + query, timeout=60_000)
    canvas = page.locator('[data-testid="stBidiComponentIsolated"] canvas.pad-canvas[data-ready]')
    canvas.wait_for(timeout=60_000)
    # Opened by its URL, the first run can put up Streamlit's "page not found" notice before
    # the navigation knows the page: an invisible dialog then takes the first stroke.
    notice = page.locator('[data-testid="stDialog"]')
    if notice.count():
        page.keyboard.press("Escape")
        notice.wait_for(state="detached", timeout=10_000)
    return canvas


def draw_latencies(page, url: str, strokes: int = 4, query: str = "") -> list[float]:
    """Stroke -> a new reading on the Draw page, in seconds (from the pen lifting to the
    reading changing on screen), for a few vertical strokes."""
    canvas = open_draw_page(page, url, query)
    # the reading's fingerprint: its ten probabilities (every stroke changes them; the
    # headline digit and its percentage often stay the same)
    reading = """() => { const p = document.querySelector('.digit-probs');
                          return p ? p.dataset.probs : ''; }"""
    out = []
    for k in range(strokes):
        box = canvas.bounding_box()
        # strokes 22 px apart (wider than the pen) and of growing length: each changes the image
        x = box["x"] + box["width"] * (0.1 + 0.08 * (k % 10))
        before = page.evaluate(reading)
        page.mouse.move(x, box["y"] + 0.15 * box["height"])
        page.mouse.down()
        page.mouse.move(x, box["y"] + (0.5 + 0.03 * k) * box["height"], steps=10)
        t0 = time.perf_counter()  # the stroke ends as the pen lifts
        page.mouse.up()
        try:
            page.wait_for_function(f"(before) => ({reading})() !== before", arg=before,
                                   timeout=30_000, polling="raf")
            out.append(time.perf_counter() - t0)
        except Exception:
            pass
    return out


def run_statuses(runs: Path) -> dict[str, str]:
    sys.path.insert(0, str(REPO))
    from digits_core.store.runs import list_runs

    return {i.name: i.status for i in list_runs(runs)}


def _browser_pid(role: str) -> int:
    """The top process of the Chromium launched with `--digitlab-role=<role>`."""
    import psutil

    for p in psutil.Process().children(recursive=True):
        try:
            if f"--digitlab-role={role}" in p.cmdline() and "--type=" not in " ".join(p.cmdline()):
                return p.pid
        except psutil.Error:
            pass
    raise RuntimeError(f"no Chromium for {role!r} found")


def person(kind: str, i: int, class_mode: bool) -> str:
    """The query a person's links carry: on a class server their name (as a link the
    teacher handed out would), else nothing (a session id is made on the first visit)."""
    return f"?name={kind}-{i}" if class_mode else ""


def niced_chromium(work: Path, nice: int) -> str:
    """A Chromium that runs (with every process it starts) at `nice`: a wrapper script."""
    if nice <= 0:
        return CHROMIUM
    wrapper = work / "chromium-niced"
    wrapper.write_text(f'#!/bin/sh\nexec nice -n {int(nice)} "{CHROMIUM}" "$@"\n')
    wrapper.chmod(0o755)
    return str(wrapper)


class CpuShare:
    """CPU seconds spent by the server (its process tree), the students' Chromium, the
    visitor's Chromium and the rest of the machine, between `start()` and `stop()`; each
    tree is sampled every second, so processes that come and go are counted too."""

    def __init__(self, roots: dict[str, int]):
        self.roots = roots
        self.seen: dict[str, dict[int, float]] = {k: {} for k in roots}
        self._stop = threading.Event()
        self._machine0 = self._machine()

    @staticmethod
    def _machine() -> float:
        with open("/proc/stat") as f:
            ticks = [int(v) for v in f.readline().split()[1:9]]
        return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")

    def _sample(self) -> None:
        import psutil

        for name, pid in self.roots.items():
            try:
                root = psutil.Process(pid)
                procs = [root, *root.children(recursive=True)]
            except psutil.Error:
                continue
            for p in procs:
                try:
                    t = p.cpu_times()
                    self.seen[name][p.pid] = t.user + t.system
                except psutil.Error:
                    pass

    def start(self) -> CpuShare:
        self._sample()
        self._base = {k: dict(v) for k, v in self.seen.items()}
        self._machine0, self._t0 = self._machine(), time.monotonic()

        def loop():
            while not self._stop.wait(1.0):
                self._sample()

        threading.Thread(target=loop, daemon=True).start()
        return self

    def stop(self) -> dict[str, float]:
        """Cores used on average by each, over the time measured."""
        self._stop.set()
        self._sample()
        wall = max(time.monotonic() - self._t0, 1e-9)
        out = {k: sum(t - self._base[k].get(pid, 0.0) for pid, t in v.items()) / wall
               for k, v in self.seen.items()}
        out["machine"] = (self._machine() - self._machine0) / wall
        out["rest"] = out["machine"] - sum(out[k] for k in self.roots)
        return {k: round(v, 2) for k, v in out.items()}


def loadtest(students: int, executor: str, deadline_s: float, class_mode: bool = False,
             student_nice: int = 19) -> dict:
    from playwright.sync_api import sync_playwright

    work = Path(tempfile.mkdtemp(prefix="digitlab-loadtest-"))
    runs = work / "runs"
    server = Server(runs, executor, class_mode)
    result: dict = dict(students=students, executor=executor, class_mode=class_mode, epochs=EPOCHS,
                        student_nice=student_nice, load_average_start=[round(x, 1) for x in os.getloadavg()])
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=[*ARGS, "--digitlab-role=visitor"])
            # the students' own: on a class's other computers, here at the lowest priority
            class_browser = pw.chromium.launch(executable_path=niced_chromium(work, student_nice),
                                               args=[*ARGS, "--digitlab-role=students"])
            first_page(browser, server.url, person("teacher", 0, class_mode))  # the server's own first run
            result["rss_idle_mib"] = server.settled_rss()  # the warm-up after it included
            tabs, visitors = [], []
            cpu = CpuShare(dict(server=server.proc.pid, students=_browser_pid("students"),
                                visitor=_browser_pid("visitor"))).start()
            t_start = time.monotonic()
            for i in range(students):
                ctx = class_browser.new_context(viewport=VIEWPORT)
                page = ctx.new_page()
                page.set_default_timeout(60_000)
                start_training(page, server.url, person("student", i, class_mode))
                tabs.append((i, ctx, page))
                if i >= 2:  # a new visitor arrives while the class is training
                    visitors.append(first_page(browser, server.url, person("visitor", i, class_mode)))
            result["all_started_s"] = round(time.monotonic() - t_start, 1)
            arriving = len(visitors)  # the first visitors came while the class was arriving
            closed, strokes = 0, []
            for i, ctx, page in tabs:
                if i % 4 == 1:
                    page.reload()  # the same URL, so the same session id
                elif i % 4 == 2:
                    ctx.close()  # gone for good: its run stops after the grace and is kept
                    closed += 1
                elif i % 4 == 3 and len(strokes) < 24:
                    strokes += draw_latencies(page, server.url, query=person("student", i, class_mode))
            started = run_statuses(runs)
            result["runs_started"] = len(started)
            end = time.monotonic() + deadline_s
            while time.monotonic() < end:
                visitors.append(first_page(browser, server.url, person("visitor", len(visitors), class_mode)))
                statuses = run_statuses(runs)
                if all(s not in ("queued", "loading", "running", "stopping") for s in statuses.values()):
                    break
                time.sleep(2)
            result["class_done_s"] = round(time.monotonic() - t_start, 1)
            result["cores_used_while_training"] = cpu.stop()
            for i, ctx, page in tabs:
                if i % 4 != 2:
                    ctx.close()
            class_browser.close()
            browser.close()
        time.sleep(40)  # everyone has left (the tab grace is 30 s); the runner forgets ended jobs
        final = run_statuses(runs)
        result.update(
            runs_finished=sum(s == "finished" for s in final.values()),
            runs_stopped=sum(s == "stopped" for s in final.values()),
            tabs_closed=closed,
            runs_lost=sum(s in ("broken", "interrupted") for s in final.values())
            + max(0, result["runs_started"] - len(final)),
            unfinished=sorted(n for n, s in final.items() if s in ("queued", "loading", "running")),
            first_page_p50_s=percentile(visitors, 50), first_page_p95_s=percentile(visitors, 95),
            # while the students arrive (each loads the app, opens Train and starts) and once
            # all of them are in and training
            first_page_arriving_p95_s=percentile(visitors[:arriving], 95),
            first_page_training_p50_s=percentile(visitors[arriving:], 50),
            first_page_training_p95_s=percentile(visitors[arriving:], 95),
            first_page_n=len(visitors),
            first_page_s=[round(v, 2) for v in visitors],
            first_page_parts_ms_p50=page_parts(FIRST_PAGE_PARTS[1:]),
            first_page_gave_up=sum(v >= FIRST_PAGE_TIMEOUT_S for v in visitors),
            load_average=[round(x, 1) for x in os.getloadavg()],
            stroke_p50_ms=None if not strokes else round(1000 * statistics.median(strokes)),
            strokes=len(strokes),
            rss_peak_mib=max(m for _, m in server.rss), rss_after_mib=server.rss_now(),
        )
        result["rss_after_over_idle"] = result["rss_after_mib"] / max(result["rss_idle_mib"], 1)
    finally:
        server.stop()
    return result


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.loadtest", description=__doc__.split("\n")[0])
    p.add_argument("--students", type=int, default=12)
    p.add_argument("--executor", default=os.environ.get("DIGITLAB_EXECUTOR", "threads"))
    p.add_argument("--deadline", type=float, default=420.0, help="seconds the class may take")
    p.add_argument("--class-mode", action="store_true",
                   help="a class server (DIGITLAB_CLASS_MODE=1): each person's links carry their name")
    p.add_argument("--student-nice", type=int, default=19,
                   help="priority of the students' Chromium (19: lowest, as if on their own "
                        "computers; 0: equal to the server's)")
    p.add_argument("--out", default=None)
    a = p.parse_args(argv)
    r = loadtest(a.students, a.executor, a.deadline, a.class_mode, a.student_nice)
    tag = ("-class" if a.class_mode else "") + ("" if a.student_nice > 0 else "-equal")
    out = Path(a.out or REPO / "bench-results" / f"loadtest-{a.executor}{tag}.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(r, indent=2) + "\n")
    for k, v in r.items():
        print(f"{k:24} {v}")
    ok = r["runs_lost"] == 0 and not r["unfinished"]
    print("PASS" if ok and (r["first_page_training_p95_s"] or 99) <= 2.0 else "FAIL", "(goal: 0 lost, all "
          "done, first page p95 <= 2 s while the class trains)",
          "; with the class arriving too: p95 %.2f s" % (r["first_page_p95_s"] or 0))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
