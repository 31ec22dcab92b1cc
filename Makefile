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

.PHONY: venv demo test unit integration e2e lint fmt local simulator bench deploy build clean

venv: $(STAMP) $(CHECKOV_STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

$(CHECKOV_STAMP): requirements-checkov.txt | $(STAMP)
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q --upgrade pip
	$(CHECKOV_VENV)/bin/pip install -q -r requirements-checkov.txt
	touch $(CHECKOV_STAMP)

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

# checkov: every finding either passes or is skipped inline in template.yaml with its reason (--skip-download
# keeps it offline).
lint: venv
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
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

build: venv
	PATH="$$(pyenv root 2>/dev/null)/versions/3.13.0/bin:$(abspath $(BIN)):$$PATH" sam build

deploy: build
	$(BIN)/sam deploy --guided

clean:
	rm -rf $(VENV) .aws-sam .vidrelay out .pytest_cache .mypy_cache .ruff_cache
