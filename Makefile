# Digit Lab. Every target creates/uses the virtual environment .venv by itself.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
PORT   ?= 8501
MNIST_DIR ?= ../shared/data/mnist

.PHONY: run serve-class test lint-imports test-fast test-presets test-journeys test-slow test-ray bench bench-full bench-ui loadtest screenshots browser-deps clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

## Install and start the dashboard on http://localhost:$(PORT)
run: $(STAMP)
	$(VENV)/bin/streamlit run streamlit_app.py --server.port $(PORT)

## Install everything (Chromium included), check the engine's import layers (pyproject.toml)
## and run the whole test suite, browser tests too
test: $(STAMP) browser-deps lint-imports
	DIGITLAB_REQUIRE_BROWSER=1 $(PY) -m pytest

## The engine's packages import one way only: the layer contracts in pyproject.toml
lint-imports: $(STAMP)
	$(VENV)/bin/lint-imports

## Serve a class on the LAN: http://THIS-COMPUTER:$(PORT) for every device on the network.
## No absolute server path is shown and only the folders in $$DIGITLAB_DATA_DIRS (and the
## download cache) can be read as data. Each person joins with a name (CLASS_MODE=0: off).
CLASS_MODE ?= 1
serve-class: $(STAMP)
	DIGITLAB_PUBLIC=1 DIGITLAB_CLASS_MODE=$(CLASS_MODE) $(VENV)/bin/streamlit run streamlit_app.py --server.port $(PORT) --server.address 0.0.0.0

## Unit, AppTest and learning tests only (no browser)
# (-m replaces pyproject's default selection, so it names every marker that default leaves out)
test-fast: $(STAMP)
	$(PY) -m pytest -m "not slow and not presets and not bench and not ray and not journeys_slow and not browser"

## The job-runner tests on a local Ray (installs the optional requirements-ray.txt)
test-ray: $(STAMP)
	$(PY) -m pip install --quiet -r requirements-ray.txt
	$(PY) -m pytest -m ray

## Every bundled-digits preset to its paper floor, and the benchmark's smoke run (CI runs it)
test-presets: $(STAMP)
	$(PY) -m pytest -m "presets or bench"

## What a person waits for in the browser (first page, stroke -> prediction, dashboard vs CLI speed)
bench-ui: $(STAMP) browser-deps
	$(PY) -m benchmarks.ui --out bench-results/ui.json

## A class on one server: STUDENTS (12) headless Chromium sessions training at once (minutes);
## a class server (CLASS_MODE=1, as serve-class: each link carries a name) unless CLASS_MODE=0
STUDENTS ?= 12
EXECUTOR ?= threads
loadtest: $(STAMP) browser-deps
	$(PY) -m benchmarks.loadtest --students $(STUDENTS) --executor $(EXECUTOR) $(if $(filter 1,$(CLASS_MODE)),--class-mode)

## The long browser journeys (MNIST runs, Stop latency medians, kill -9 of the server; CI runs them)
test-journeys: $(STAMP) browser-deps
	DIGITLAB_REQUIRE_BROWSER=1 $(PY) -m pytest -m journeys_slow tests/browser

## Refresh the README's screenshots (docs/screenshots) from the browser tests that take them
## (marked `screenshots`; the live t-SNE one trains S4 on the MNIST files in ../shared/data/mnist)
screenshots: $(STAMP) browser-deps
	DIGITLAB_SCREENSHOTS=docs/screenshots DIGITLAB_REQUIRE_BROWSER=1 $(PY) -m pytest -m screenshots

## Full-MNIST trainings of every MNIST preset to its floor, `best` included (about 10 minutes
## on 2 idle cores; CI runs it). Reads MNIST from $(MNIST_DIR) and fails, not skips, without it.
test-slow: $(STAMP)
	DIGITLAB_TEST_MNIST=$(MNIST_DIR) DIGITLAB_REQUIRE_MNIST=1 $(PY) -m pytest -m slow

## The speed and accuracy benchmark (about 6 minutes); writes bench-results/latest.json
bench: $(STAMP)
	$(PY) -m benchmarks.bench --mnist-dir $(MNIST_DIR) --out bench-results/latest.json

## The same with 3 seeds of the 3-epoch runs and the `best` preset (about 25 minutes)
bench-full: $(STAMP)
	$(PY) -m benchmarks.bench --full --mnist-dir $(MNIST_DIR) --out bench-results/full.json

## Debian's Chromium for the browser tests (needs root or sudo; no-op when present)
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -q && $$SUDO apt-get install -y -q chromium; }

clean:
	rm -rf $(VENV) .pytest_cache
