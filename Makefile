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

.PHONY: help install test test-unit typecheck lint check-template pytest demo bench bench-full coldstart build lock clean

help:
	@echo "make demo   - run the whole pipeline locally on moto with sample orders"
	@echo "make test   - lint, type check, check template.yaml and run the test suite"
	@echo "make test-unit - the pure-core tests only (no moto), in seconds"
	@echo "make bench  - the benchmark's verdicts in under 15 minutes (cold starts, one window at 1k/10k/100k orders, orders in, outcomes)"
	@echo "make bench-full - the same at the sizes docs/PERFORMANCE.md quotes (100k-line import): about an hour"
	@echo "make build  - sam build (needs python3.12 on PATH)"
	@echo "make coldstart - sam build, then the import time of each built handler and the layer size"
	@echo "make lock   - re-lock the layers (layers/nudge and layers/aliyun requirements.lock, with hashes)"

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

# The tests run the very versions Lambda runs: the layer's lock pins the venv (names==versions only;
# pip does not take hashes in a constraints file).
LAYER_LOCK := layers/nudge/requirements.lock
ALIYUN_LOCK := layers/aliyun/requirements.lock
$(VENV)/.installed: $(BIN)/python pyproject.toml layers/nudge/requirements.txt $(LAYER_LOCK) $(ALIYUN_LOCK)
	grep -hEo '^[A-Za-z0-9_.-]+==[^ ;]+' $(LAYER_LOCK) $(ALIYUN_LOCK) > $(VENV)/layer-pins.txt
	$(BIN)/pip install --quiet -e '.[dev]' -c $(VENV)/layer-pins.txt
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

# mypy with the pydantic plugin (config in pyproject.toml). The handlers are top-level `app`
# modules, so each is checked on its own run beside the layer's package.
typecheck: install
	$(BIN)/mypy layers/nudge/nudge
	$(BIN)/mypy functions/plan/app.py
	$(BIN)/mypy functions/send/app.py
	$(BIN)/mypy functions/audit/app.py
	$(BIN)/mypy functions/outcomes/app.py
	$(BIN)/mypy functions/ingest/app.py
	$(BIN)/mypy functions/receipts/app.py
	$(BIN)/mypy functions/replies/app.py
	$(BIN)/mypy cli/nudge_cli cli/nudge_local

# The pure core and the services over fakes (tests/unit): no moto, seconds.
test-unit: install
	$(BIN)/pytest tests/unit

test: lint typecheck check-template pytest

# Ends by writing the report page (open it in a browser); not tracked by git.
# make demo GATEWAY=end-user-messaging: the same with End User Messaging (receipts, a STOP reply).
# make demo GATEWAY=aliyun: the same through Alibaba Cloud's SDK against a local dysmsapi (receipts
# and a 退订 reply pushed to the ingest Function URL).
DEMO_HTML ?= nudge-demo-report.html
GATEWAY ?= sns
demo: install
	$(BIN)/nudge demo --html $(DEMO_HTML) --gateway $(GATEWAY)

# make bench: every verdict in under 15 minutes on 2 cores (bench.run's quick profile: growth read
# from smaller steps, SMS sampled above 10k); make bench-full: the sizes docs/PERFORMANCE.md quotes
# (10k webhooks, 10k and 100k-line imports, naive at 100k), about an hour.
BENCH_ARGS ?=
bench: build
	$(BIN)/python -m bench.run --profile quick $(BENCH_ARGS)

bench-full: build
	$(BIN)/python -m bench.run --profile full $(BENCH_ARGS)

# Import time of each built handler as Lambda loads it, and the layer's size (bench/coldstart.py).
coldstart: build
	$(BIN)/python -m bench.coldstart

# sam build looks for python3.12 on PATH: put the venv's first.
build: install $(SAM)
	SAM_CLI_TELEMETRY=0 PATH="$(CURDIR)/$(BIN):$$PATH" $(SAM) build --template template.yaml

# Re-lock the layer after changing layers/nudge/requirements.txt (or to take new releases on purpose:
# a new holidays or phonenumbers can change decisions; tests/contract/test_packaging.py notices). pydantic stays
# on the line cfn-lint's aws-sam-translator accepts, so the tests' venv can install the locked version.
lock: $(BIN)/python
	$(BIN)/pip install --quiet uv
	echo 'pydantic<2.14' > $(VENV)/lock-constraints.txt
	$(BIN)/uv pip compile --quiet layers/nudge/requirements.txt -o $(LAYER_LOCK) --generate-hashes \
		--python-version 3.12 --python-platform x86_64-manylinux_2_17 \
		--no-emit-package botocore --no-emit-package urllib3 \
		--constraint $(VENV)/lock-constraints.txt --custom-compile-command 'make lock'
	# Alibaba Cloud's SDK (SmsGateway=aliyun): its own layer beside the nudge one, so it leaves out
	# what that layer already has (tests/contract/test_packaging.py checks both locks).
	$(BIN)/uv pip compile --quiet layers/aliyun/requirements.txt -o $(ALIYUN_LOCK) --generate-hashes \
		--python-version 3.12 --python-platform x86_64-manylinux_2_17 \
		--no-emit-package botocore --no-emit-package urllib3 \
		$$(grep -Eo '^[A-Za-z0-9_.-]+==' $(LAYER_LOCK) | tr -d '=' | sed 's/^/--no-emit-package /') \
		--constraint $(LAYER_LOCK) --custom-compile-command 'make lock'

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam .pytest_cache .ruff_cache .hypothesis
