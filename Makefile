# The commands the README names. Each creates the virtual environment and installs what it needs first.
# Python comes from .python-version (pyenv), or python3.12+ on PATH; override with `make PYTHON=...`.

PYTHON ?= $(shell pyenv which python 2>/dev/null || command -v python3.13 || command -v python3.12 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8000

.PHONY: run test test-fast e2e screenshots lint bench bench-load bench-evidence bench-pages clean fault-matrix

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else "Python 3.12 or newer is needed (see .python-version); got " + sys.version)'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

## Start the dashboard in demo mode (SQLite, the Azure simulator, demo data, web server + worker). Ctrl-C stops it.
## exec: no shell waits in between, which would die of the Ctrl-C itself and make make report "Interrupt".
run: $(STAMP)
	DEMO_MODE=1 PORT=$(PORT) exec $(BIN)/python manage.py rundemo

## Run the whole test suite (unit, integration against azuresim, browser tests in Debian's chromium).
test: $(STAMP)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

## Everything but the browser tests.
test-fast: $(STAMP)
	$(BIN)/python -m pytest -m "not e2e" $(PYTEST_ARGS)

e2e: $(STAMP)
	$(BIN)/python -m pytest -m e2e $(PYTEST_ARGS)

## Refresh the README's pictures (docs/screenshots/): the journeys that take them write them there too.
SCREENSHOT_JOURNEYS = tests/e2e/test_fleet_view_journey.py tests/e2e/test_batch_journey.py \
	tests/e2e/test_phone_journeys.py tests/e2e/test_charts_journey.py tests/e2e/test_alerts_journey.py \
	"tests/e2e/test_journeys.py::test_a_failing_check_and_its_detail_page"
screenshots: $(STAMP)
	UPDATE_SCREENSHOTS=1 $(BIN)/python -m pytest -m e2e $(PYTEST_ARGS) $(SCREENSHOT_JOURNEYS)

lint: $(STAMP)
	$(BIN)/ruff check .

clean:
	rm -rf $(VENV) var .pytest_cache

## Regenerate docs/fault-matrix.md from the fault-matrix test.
fault-matrix: $(STAMP)
	FAULT_MATRIX_OUT=docs/fault-matrix.md $(BIN)/python -m pytest -q tests/test_fault_matrix.py

## Benchmark 1,000-server sweeps against the simulator, manual then scheduled (a schedule due now, fired by the
## running workers); writes docs/benchmarks.md (not a test). BENCH_ARGS= drops the scheduled one.
BENCH_ARGS ?= --scheduled --poll-seconds 1
bench: $(STAMP)
	$(BIN)/python bench/sweep.py --servers 1000 --subscriptions 5 --latency-ms 300 --workers 2 --threads 32 $(BENCH_ARGS) --write docs/benchmarks.md

## Load test (issue 14): 50 people signed in through the simulator browse and run checks for 60 s against
## gunicorn (2 workers, production settings) and one checks_worker on PostgreSQL; writes the load section of
## docs/benchmarks.md. The database of BENCH_DATABASE_URL is dropped and created again. Needs the `bench` extras.
BENCH_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/ltr_bench_load
bench-load: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	DATABASE_URL=$(BENCH_DATABASE_URL) $(BIN)/python bench/load.py --users 50 --seconds 60 --write docs/benchmarks.md

## Benchmark the evidence report for 1,000 servers and a year of history on PostgreSQL (BENCH_EVIDENCE_DB, created
## if missing); writes its section of docs/benchmarks.md (not a test). BENCH_EVIDENCE_ARGS=--reuse keeps the data.
BENCH_EVIDENCE_DB ?= postgres://postgres@127.0.0.1:5432/ltr_evidence_bench
bench-evidence: $(STAMP)
	DATABASE_URL=$(BENCH_EVIDENCE_DB) $(BIN)/python bench/evidence.py --servers 1000 $(BENCH_EVIDENCE_ARGS) --write docs/benchmarks.md

## Benchmark the pages at fleet scale on PostgreSQL (10,000 servers, 1,000,000 checks in ltr_pages_bench, built once
## and reused) next to the admin changelist and psql \copy, and both exports through gunicorn as the README starts
## it; writes its section of docs/benchmarks.md (not a test).
## A quick run: make bench-pages PAGES_ARGS="--servers 1000 --checks 100000" (prints, writes nothing).
PAGES_ARGS ?= --gunicorn --write docs/benchmarks.md
bench-pages: $(STAMP)
	$(BIN)/python bench/pages.py $(PAGES_ARGS)
