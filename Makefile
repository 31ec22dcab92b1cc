# The door to every task. `make demo` and `make test` set up everything they need themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PORT ?= 8787

.PHONY: venv chromium demo test unit integration e2e lint fmt local simulator bench chaos deploy build clean

venv: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Headless Chromium from Debian's packages, for the browser tests of /docs (they are skipped without it).
# Playwright drives this binary; it downloads no browser of its own.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

demo: venv
	$(BIN)/python -m vidrelay.demo

test: venv
	$(BIN)/pytest -q tests

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv
	$(BIN)/pytest -q tests/integration

e2e: venv
	$(BIN)/pytest -q tests/e2e

lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/mypy functions/api/app.py
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template template.yaml

fmt: venv
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

local: venv
	$(BIN)/vidrelay local --port $(PORT)

simulator: venv
	$(BIN)/vidrelay simulator

bench: venv
	@$(BIN)/python -m vidrelay.bench

# JOBS jobs of every model under injected faults (see README, Reliability); one JSON document on stdout.
JOBS ?= 300
chaos: venv
	@$(BIN)/python -m vidrelay.chaos --jobs $(JOBS)

build: venv
	PATH="$$(pyenv root 2>/dev/null)/versions/3.13.0/bin:$(abspath $(BIN)):$$PATH" sam build

deploy: build
	$(BIN)/sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .vidrelay out .pytest_cache .mypy_cache .ruff_cache
