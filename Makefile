# APE: two commands on a fresh machine, `make run` and `make test`.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
APE_WORKSPACE ?= $(CURDIR)/workspace
PORT ?= 8501
HOST ?= 127.0.0.1

.PHONY: run test bench calibrate lint install browser age clean

$(BIN)/python:
	$(PY) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,distributed,cloud,cloud-test]'
	touch $(STAMP)

install: $(STAMP)

# Debian's chromium for the browser test; Playwright never downloads a browser of its own.
browser:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && apt-get install -y -qq chromium >/dev/null; \
	  else echo "chromium missing: the browser test will be skipped (install Debian's chromium)"; fi; }

# Debian's age, for the tests that APE's encrypted packages and age's files interoperate.
age:
	@command -v age >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get install -y -qq age >/dev/null 2>&1 || \
	    { apt-get update -qq && apt-get install -y -qq age >/dev/null; }; \
	  else echo "age missing: the age interoperability tests will be skipped (install Debian's age)"; fi; }

# `ape app` holds Streamlit's options (apesim/launcher.py): the same app a pip install starts.
run: $(STAMP)
	$(BIN)/ape app --workspace $(APE_WORKSPACE) --port $(PORT) --host $(HOST)

test: $(STAMP) browser age
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_engine.py
	$(BIN)/python benchmarks/bench_package.py
	$(BIN)/python benchmarks/bench_hostile.py
	$(BIN)/python benchmarks/bench_sign_encrypt.py
	$(BIN)/python benchmarks/bench_cli.py
	$(BIN)/python benchmarks/bench_bulk.py
	$(BIN)/python benchmarks/bench_app.py
	$(BIN)/python benchmarks/bench_distributed.py
	$(BIN)/python benchmarks/bench_differential.py

# Model 2.0 against its anchors (docs/calibration.md): prints the table, asserts nothing.
calibrate: $(STAMP)
	$(BIN)/python benchmarks/calibrate.py --outcomes

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache
