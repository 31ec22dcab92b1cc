# The door to every task. `make demo` and `make test` set up everything they need themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# checkov pins boto3 and packaging versions the project cannot take: it gets a virtual environment of its own.
CHECKOV_VENV := $(VENV)/checkov
CHECKOV := $(CHECKOV_VENV)/bin/checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
PORT ?= 8787

.PHONY: venv chromium demo test unit integration e2e lint fmt local simulator bench chaos fuzz deploy build clean

venv: $(STAMP) $(CHECKOV_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

# Headless Chromium from Debian's packages, for the browser tests of /docs and /console (skipped without it).
# Playwright drives this binary; it downloads no browser of its own.
chromium:
	@command -v chromium >/dev/null || { apt-get update -qq && apt-get install -y -qq chromium; }

$(CHECKOV_STAMP): requirements-checkov.txt | $(STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

demo: venv
	$(BIN)/python -m vidrelay.demo

# The whole suite, then the core library's line and branch coverage (of the tests that run it in-process; the
# e2e tests' local stack runs in a subprocess, which is not counted).
test: venv
	$(BIN)/pytest -q tests --cov=vidrelay_core --cov-branch --cov-report=term:skip-covered

unit: venv
	$(BIN)/pytest -q tests/unit

integration: venv
	$(BIN)/pytest -q tests/integration

e2e: venv
	$(BIN)/pytest -q tests/e2e

# checkov: every finding either passes or is skipped inline in template.yaml with its reason (--skip-download
# keeps it offline).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	MYPYPATH=layers/core:src $(BIN)/mypy -p vidrelay
	for app in functions/*/app.py; do $(BIN)/mypy $$app || exit 1; done
	$(BIN)/cfn-lint template.yaml
	$(BIN)/sam validate --lint --template template.yaml
	$(CHECKOV) --file template.yaml --framework cloudformation --compact --quiet --skip-download

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

# schemathesis on the served /openapi.json and hostile bodies on every route (see README, Reliability).
fuzz: venv
	@$(BIN)/python -m vidrelay.fuzz

# sam build needs a python3.13 (the Lambda runtime): found on PATH, in pyenv or uv, or in the usual places.
build: venv
	$(BIN)/python -m vidrelay.build

deploy: build
	$(BIN)/sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .vidrelay out .pytest_cache .mypy_cache .ruff_cache
