# infersight — the two commands: `make demo` (the main job) and `make test` (every test).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DURATION ?=
DEMO_ARGS ?=

.PHONY: setup system-deps demo test lint dashboards rules conformance clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Simulated services, sidecars, embedded store, API, dashboards; until Ctrl-C or DURATION seconds.
demo: setup
	$(BIN)/infersight demo --data data/demo $(if $(DURATION),--duration $(DURATION)) $(DEMO_ARGS)

system-deps:
	@tools/system-deps.sh

test: setup system-deps lint
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

conformance: setup
	$(BIN)/pytest -q -ra tests/conformance

lint: setup
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

dashboards: setup
	$(BIN)/infersight dashboards --out dashboards/json

rules: setup
	$(BIN)/infersight rules --out alerts/rules

clean:
	rm -rf $(VENV) data
