# The two commands a person needs: `make demo` (the pipeline on the local sandbox) and `make test`.
# Every target installs what it needs first, from the committed lock files.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PY_STAMP := $(VENV)/.installed
NODE_STAMP := node_modules/.installed
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed
CHECKOV_VERSION := 3.3.30
# Fails on any failed check; the stack skips what it does not fix in each resource's metadata, with reasons.
CHECKOV := $(CHECKOV_VENV)/bin/checkov --framework cloudformation --quiet --compact --skip-download --file
# The archive stack's template, and the payer role's in its stage (cdk.out/assembly-PayerRole/).
TEMPLATES = cdk.out/*.template.json cdk.out/assembly-*/*.template.json
export CDK_DISABLE_VERSION_CHECK := true
export JSII_SILENCE_WARNING_UNTESTED_NODE_VERSION := 1
export CDK_DISABLE_CLI_TELEMETRY := true

# Node >= 22 first on PATH for the goals that need it (the CDK CLI; jsii, which the CDK library spawns in
# the infra tests and `cdk synth`): the machine's own node if new enough, else the pinned Node 22 LTS
# that scripts/ensure-node.sh installs from the npm registry into .tools/node. `make demo`, `lint`,
# `bench` and `soak` need only the venv, and never fetch Node.
NODE_GOALS := install test synth deploy ci
ifneq ($(filter $(NODE_GOALS),$(or $(MAKECMDGOALS),install)),)
NODE_BIN := $(shell scripts/ensure-node.sh -q)
ifeq ($(NODE_BIN),)
$(error no supported Node.js (see the error above))
endif
export PATH := $(NODE_BIN):$(PATH)
endif

.PHONY: install demo test lint synth bench soak deploy ci lock lock-dev lock-sdk lock-columnar lock-node clean

install: $(PY_STAMP) $(NODE_STAMP)

# Every install is hash-checked: pip itself first (requirements-pip.lock), then the lock, --require-hashes.
PIP_INSTALL = python -m pip install --quiet --require-hashes --no-deps

$(PY_STAMP): pyproject.toml requirements-dev.lock requirements-pip.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/$(PIP_INSTALL) -r requirements-pip.lock
	$(BIN)/$(PIP_INSTALL) -r requirements-dev.lock
	$(BIN)/python -m pip install --quiet --no-deps --no-build-isolation -e .
	touch $@

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(CHECKOV_STAMP): requirements-checkov.lock requirements-pip.lock
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/$(PIP_INSTALL) -r requirements-pip.lock
	$(CHECKOV_VENV)/bin/$(PIP_INSTALL) -r requirements-checkov.lock
	touch $@

demo: $(PY_STAMP)  ## the whole pipeline on the local sandbox, twice (the second pass archives nothing new)
	$(BIN)/invoice-archiver run-local --passes 2 --out archive-out

test: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)  ## every test: unit, sandbox, integration, end-to-end, infra, and the shipped package (real cdk synth)
	$(BIN)/pytest -n 2 --dist loadgroup

lint: $(PY_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

synth: $(PY_STAMP) $(NODE_STAMP) $(CHECKOV_STAMP)  ## the real CDK CLI, offline; then cfn-lint and checkov on the template
	npx --no-install cdk synth --quiet --no-notices
	$(BIN)/cfn-lint --non-zero-exit-code error $(TEMPLATES)
	$(CHECKOV) $(TEMPLATES)

.PHONY: checkov lock-checkov
checkov: $(CHECKOV_STAMP)  ## checkov on the template `make synth` left in cdk.out (synth runs it too)
	@test -n "$(wildcard cdk.out/*.template.json)" || { echo "error: no cdk.out/*.template.json: run make synth" >&2; exit 1; }
	$(CHECKOV) $(TEMPLATES)

bench: $(PY_STAMP)
	$(BIN)/python bench/run.py

soak: $(PY_STAMP)  ## 10,000 invoices under the fault matrix: 0 lost, 0 twice, every checksum (not in CI; ~30 min)
	$(BIN)/python bench/soak.py

deploy: $(PY_STAMP) $(NODE_STAMP)  ## e.g. make deploy CDK_ARGS="-c alarm_email=ops@example.com"
	npx --no-install cdk deploy --no-notices $(CDK_ARGS)

ci: lint test synth

lock-sdk: $(PY_STAMP)  ## refresh layers/sdk/requirements.lock (hashes) from the SDK versions in requirements-dev.lock
	$(BIN)/python scripts/lock_sdk.py

lock-columnar: $(PY_STAMP)  ## refresh layers/columnar/requirements.lock (hashes) from requirements-dev.lock's pyarrow
	$(BIN)/python scripts/lock_columnar.py

lock: lock-dev lock-checkov lock-sdk lock-columnar lock-node  ## refresh every lock: pip, dev, checkov, the layers, the Node fallback

lock-dev:  ## refresh requirements-dev.lock (with hashes) from pyproject.toml in a clean venv
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/$(PIP_INSTALL) -r requirements-pip.lock
	.lockenv/bin/python -m pip install --quiet '.[dev]'
	.lockenv/bin/python -m pip freeze --exclude-editable | grep -v '^invoice-archiver' > .lockenv/frozen
	.lockenv/bin/python scripts/hash_lock.py .lockenv/frozen requirements-dev.lock --header \
	  "The dev environment (make install): pip freeze of a clean venv with '.[dev]', each pin by hash."
	rm -rf .lockenv

lock-checkov:  ## refresh requirements-checkov.lock (checkov $(CHECKOV_VERSION), with hashes) in a clean venv
	rm -rf .lockenv && $(PYTHON) -m venv .lockenv
	.lockenv/bin/$(PIP_INSTALL) -r requirements-pip.lock
	.lockenv/bin/python -m pip install --quiet checkov==$(CHECKOV_VERSION)
	.lockenv/bin/python -m pip freeze > .lockenv/frozen
	.lockenv/bin/python scripts/hash_lock.py .lockenv/frozen requirements-checkov.lock --header \
	  "checkov $(CHECKOV_VERSION) for make checkov/synth, in its own $(CHECKOV_VENV), each pin by hash."
	rm -rf .lockenv

lock-node:  ## print the npm integrity of the pinned Node fallback, for scripts/ensure-node.sh
	@version=$$(sed -n 's/^NODE_VERSION=\([0-9.]*\).*/\1/p' scripts/ensure-node.sh); \
	for arch in x64 arm64; do \
	  echo "node-linux-$$arch@$$version: $$(npm view node-linux-$$arch@$$version dist.integrity)"; \
	done

clean:
	rm -rf $(VENV) $(CHECKOV_VENV) .tools node_modules cdk.out archive-out .local .pytest_cache .mypy_cache .ruff_cache
