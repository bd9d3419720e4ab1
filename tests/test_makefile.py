"""The Makefile's test targets select what their comments say: `make test-fast` leaves out
everything the default run leaves out (its own -m replaces pyproject's), and `make
screenshots` runs every test that takes one of the README's screenshots."""

from __future__ import annotations

import ast
import re
import shlex
import subprocess
import sys

from repo_paths import REPO

TESTS = REPO / "tests"


def pytest_args(target: str) -> list[str]:
    """The arguments after `-m pytest` in the recipe of Makefile `target`."""
    recipe = REPO.joinpath("Makefile").read_text().split(f"\n{target}:", 1)[1].split("\n\n", 1)[0]
    line = next(l for l in recipe.splitlines() if "-m pytest" in l)
    return shlex.split(line.split("-m pytest", 1)[1])


def collected(*args: str) -> set[str]:
    """The test ids `pytest --collect-only ARGS` selects (pyproject's options apply)."""
    r = subprocess.run([sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *args],
                       cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert r.returncode in (0, 5), r.stdout[-2000:] + r.stderr[-2000:]  # 5: nothing selected
    return {line for line in r.stdout.splitlines() if "::" in line}


# the files that hold tests of every marker the default run leaves out
MARKED = ["tests/test_presets.py", "tests/test_bench.py", "tests/test_runner.py",
          "tests/test_mnist.py", "tests/browser/test_journeys.py"]


def test_make_test_fast_runs_no_test_the_default_run_leaves_out():
    fast = collected(*pytest_args("test-fast"), *MARKED)
    default = collected(*MARKED)
    leaves_out = collected("-m", "slow or presets or bench or ray or journeys_slow", *MARKED)
    assert leaves_out and fast  # the check has something to check
    assert not fast & leaves_out, sorted(fast & leaves_out)
    assert fast <= default


def _shots(fn: ast.FunctionDef) -> set[str]:
    """The screenshot names `fn` writes: app.screenshot("x") / shot("x"), or a "x.png" path."""
    names = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            called = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if called in ("screenshot", "shot"):
                names.add(node.args[0].value)
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and node.value.endswith(".png"):
            names.add(node.value.removesuffix(".png"))
    return names


def shot_takers() -> dict[str, str]:
    """README screenshot name -> the test id of the test function that writes it."""
    readme = REPO.joinpath("README.md").read_text()
    names = set(re.findall(r"docs/screenshots/([\w-]+)\.png", readme))
    takers = {}
    for path in TESTS.joinpath("browser").glob("test_*.py"):
        for node in ast.parse(path.read_text()).body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_"):
                for name in _shots(node) & names:
                    takers[name] = f"{path.relative_to(REPO)}::{node.name}"
    assert names and set(takers) == names, f"no test takes {sorted(names - set(takers))}"
    return takers


def test_make_screenshots_runs_every_test_that_takes_a_readme_screenshot():
    takers = shot_takers()
    files = sorted({t.split("::")[0] for t in takers.values()})
    chosen = collected(*pytest_args("screenshots"), *files)
    ran = chosen | {c.split("[", 1)[0] for c in chosen}  # a parametrised test runs as name[...]
    missing = {name: t for name, t in takers.items() if t not in ran}
    assert not missing, f"`make screenshots` would not refresh {missing}"
