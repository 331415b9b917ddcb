# The two commands a person needs: `make demo` (the pipeline on the local sandbox) and `make test`.
# Every target installs what it needs first, from the committed lock files.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
export CDK_DISABLE_VERSION_CHECK := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true

.PHONY: install demo test lint synth bench deploy ci lock clean

install: $(PY_STAMP) $(NODE_STAMP)

$(PY_STAMP): pyproject.toml requirements-dev.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

demo: $(PY_STAMP)  ## the whole pipeline on the local sandbox, twice (the second pass archives nothing new)
	$(BIN)/invoice-archiver run-local --passes 2 --out archive-out

test: $(PY_STAMP)  ## every test: unit, sandbox contract, integration, end-to-end, infra
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

synth: $(PY_STAMP) $(NODE_STAMP)  ## the real CDK CLI, offline; then cfn-lint on the template
	npx --no-install cdk synth --quiet --no-notices
	$(BIN)/cfn-lint --non-zero-exit-code error cdk.out/*.template.json

bench: $(PY_STAMP)
	$(BIN)/python bench/run.py

deploy: $(PY_STAMP) $(NODE_STAMP)  ## e.g. make deploy CDK_ARGS="-c alarm_email=ops@example.com"
	npx --no-install cdk deploy --no-notices $(CDK_ARGS)

ci: lint test synth

lock:  ## refresh requirements-dev.lock from pyproject.toml in a clean venv
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/python -m pip install --quiet --upgrade pip
	.lockenv/bin/python -m pip install --quiet '.[dev]'
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^invoice-archiver' > requirements-dev.lock
	rm -rf .lockenv

clean:
	rm -rf $(VENV) node_modules cdk.out archive-out .local .pytest_cache .mypy_cache .ruff_cache
