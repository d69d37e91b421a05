# Rapport — the two set-up commands are `make demo` and `make test`; both install what they need.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: install browser docs demo demo-orders demo-collector collector report-screenshot test test-all bench airflow clean

$(STAMP): setup.cfg pyproject.toml infra/constraints.txt
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip setuptools wheel
	$(BIN)/python -m pip install -q -c infra/constraints.txt -e ".[test,bench]"
	@touch $(STAMP)

install: $(STAMP)  ## create .venv and install Rapport with its pinned stack

demo: $(STAMP)  ## generate a small data set and run the pipeline end to end on the embedded engine
	$(BIN)/rapport demo

demo-collector: $(STAMP)  ## the demo with its clickstream sent through the collector by segment-analytics-python
	$(BIN)/rapport demo --via-collector --workdir demo-collector

collector: $(STAMP)  ## the collector on http://127.0.0.1:8088 (RAPPORT_COLLECTOR_WRITE_KEYS=key=site, webhook secrets)
	$(BIN)/rapport collect serve --host $${COLLECTOR_HOST:-127.0.0.1} --port $${COLLECTOR_PORT:-8088}

demo-orders: $(STAMP)  ## the demo as an orders-only retailer: a Shopify Admin API export, nothing else
	$(BIN)/rapport demo --orders-only --workdir demo-orders

report-screenshot: $(STAMP)  ## docs/report.png from the demo's report (after make demo; needs chromium)
	$(BIN)/python -m jobs.report.screenshot demo/lake docs/report.png

# The browser tests (report, Data Docs) need a Chromium: Debian's, installed here when this runs as root; otherwise
# make test stops and says what to install. Playwright's own browser download cannot reach its host here.
CHROMIUM ?= $(shell command -v chromium || command -v chromium-browser)
browser:  ## Debian's Chromium for the browser tests (installed with apt-get when run as root)
	@if [ -z "$(CHROMIUM)" ] && ! command -v chromium >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Debian's chromium for the browser tests"; \
	    (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) \
	      || { echo "make: could not install chromium with apt-get; the browser tests need it" >&2; exit 1; }; \
	  else \
	    echo "make: the browser tests need Chromium: run 'sudo apt-get install chromium' (Debian/Ubuntu) or set CHROMIUM=/path/to/chromium" >&2; exit 1; \
	  fi; \
	fi

docs: $(STAMP)  ## the documentation site in site/ (MkDocs Material, strict), its reference pages generated from the code first
	$(BIN)/python -m jobs.cli.reference
	$(BIN)/python -m jobs.pipeline.docs
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet

# The suite runs in TEST_WORKERS processes (pytest-xdist), a test module to a process: most of a test's time is
# waiting on an engine, a subprocess or a server, so two processes on two cores take about 6 minutes instead of 10.
TEST_WORKERS ?= 2
test: $(STAMP) browser  ## layer contracts (lint-imports), the docs site (strict), then the test suite (slow tests excluded) in TEST_WORKERS processes; a skip fails it unless the test is marked optional
	$(BIN)/lint-imports --no-cache
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet --site-dir $$(mktemp -d)
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

test-all: $(STAMP) browser  ## layer contracts and every test, slow ones too
	$(BIN)/lint-imports --no-cache
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile -m ""

bench: $(STAMP)  ## the benchmark: bench/results.json, results.md and chart.png (about 40 minutes on 2 cores; BENCH_ARGS=--large adds 5M and 10M events, about 30 minutes more)
	$(BIN)/rapport bench $(BENCH_ARGS)

AIRFLOW_HOME ?= $(CURDIR)/.airflow
airflow: $(STAMP)  ## Airflow UI on http://localhost:8080 with Rapport's DAGs; the login is printed at start
	PATH=$(CURDIR)/$(BIN):$$PATH AIRFLOW_HOME=$(AIRFLOW_HOME) AIRFLOW__CORE__DAGS_FOLDER=$(CURDIR)/dags \
	AIRFLOW__CORE__LOAD_EXAMPLES=False PYTHONPATH=$(CURDIR) $(BIN)/airflow standalone

clean:
	rm -rf demo demo-orders demo-collector .bench .pytest_cache build *.egg-info
