# Every target sets itself up: a clean clone needs only `make demo` or `make test`.
SHELL := /bin/bash
.DEFAULT_GOAL := help

# The Lambda runtime is python3.12; pyenv machines keep 3.12 beside an older default python3.
PYTHON ?= python3.12
export PYENV_VERSION ?= 3.12.1
# Nothing here may reach AWS: fixed fake credentials and region for boto3/moto/sam.
export AWS_DEFAULT_REGION ?= us-east-1
export AWS_ACCESS_KEY_ID ?= testing
export AWS_SECRET_ACCESS_KEY ?= testing
export POWERTOOLS_TRACE_DISABLED ?= true

VENV := .venv
BIN := $(VENV)/bin
SAM_VENV := .venv-sam
SAM := $(SAM_VENV)/bin/sam

.PHONY: help install test lint check-template pytest demo bench build clean

help:
	@echo "make demo   - run the whole pipeline locally on moto with sample orders"
	@echo "make test   - lint, check template.yaml and run the test suite"
	@echo "make bench  - measure one sending window at 1k, 10k and 100k orders"
	@echo "make build  - sam build (needs python3.12 on PATH)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed: $(BIN)/python pyproject.toml layers/nudge/requirements.txt
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

# aws-sam-cli pins boto3 exactly, so it lives in a venv of its own.
$(SAM):
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install --quiet --upgrade pip
	$(SAM_VENV)/bin/pip install --quiet aws-sam-cli

lint: install
	$(BIN)/ruff check layers functions cli tests bench
	$(BIN)/ruff format --check layers functions cli tests bench

check-template: install $(SAM)
	$(BIN)/cfn-lint template.yaml
	SAM_CLI_TELEMETRY=0 $(SAM) validate --lint --template template.yaml

pytest: install
	$(BIN)/pytest

test: lint check-template pytest

demo: install
	$(BIN)/nudge demo

bench: install
	$(BIN)/python -m bench.run

# sam build looks for python3.12 on PATH: put the venv's first.
build: install $(SAM)
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(BIN):$$PATH" $(SAM) build --template template.yaml

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .ruff_cache .hypothesis
