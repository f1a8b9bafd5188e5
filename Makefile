# provisiond: `make run` serves, `make test` tests. Everything else is installed by these targets.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
COMPAT_VENV := .venv-compat
# Test processes (pytest-xdist): most suites wait on server subprocesses, so two workers finish
# the suite in about 60 % of the time on 2 cores. PYTEST_WORKERS=0 runs it in one process.
PYTEST_WORKERS ?= 2
NODE_DIR := tests/compat/node
# The Node TPM client, apart: it is installed with --ignore-scripts (tss.js pulls ffi-napi, which
# does not build on Node 20 and is not needed to reach a software TPM over TCP).
NODE_TPM_DIR := tests/compat/node-tpm

# make fuzz: generated cases per operation and pass (valid, invalid, on existing resources).
FUZZ_EXAMPLES ?= 60

.PHONY: help run test lint bench smoke clean system-deps openapi fuzz

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-8s %s\n", $$1, $$2}'

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

$(COMPAT_VENV)/.installed: tests/compat/requirements.txt
	$(PYTHON) -m venv $(COMPAT_VENV)
	$(COMPAT_VENV)/bin/pip install --quiet -r tests/compat/requirements.txt
	touch $@

$(NODE_DIR)/node_modules/.installed: $(NODE_DIR)/package.json $(NODE_DIR)/package-lock.json
	cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error
	touch $@

$(NODE_TPM_DIR)/node_modules/.installed: $(NODE_TPM_DIR)/package.json $(NODE_TPM_DIR)/package-lock.json
	cd $(NODE_TPM_DIR) && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error
	touch $@

system-deps: ## install the system packages the tests drive: swtpm, tpm2-tools, mosquitto (Debian/Ubuntu; root or sudo)
	.ci/system-deps

run: $(VENV)/.installed ## serve HTTPS on 127.0.0.1:8443 with SQLite in ./provisiond-data
	$(VENV)/bin/provisiond serve

test: $(VENV)/.installed $(COMPAT_VENV)/.installed $(NODE_DIR)/node_modules/.installed $(NODE_TPM_DIR)/node_modules/.installed ## install what tests need (system packages too, as root or with sudo) and run them all
	@.ci/system-deps || echo "warning: could not install swtpm, tpm2-tools, mosquitto (needs root or sudo): their tests will be skipped"
	$(PY) -m pytest -n $(PYTEST_WORKERS) $(PYTEST_ARGS)

lint: $(VENV)/.installed ## ruff, mypy and the import contracts (layer rules)
	$(VENV)/bin/ruff check src tests bench .ci examples
	$(VENV)/bin/ruff format --check src tests bench .ci examples
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

openapi: $(VENV)/.installed ## write each dialect's OpenAPI 3.1 document to docs/openapi/
	$(PY) -m provisiond.api.openapi_documents docs/openapi

fuzz: $(VENV)/.installed ## fuzz every dialect's OpenAPI document against a real server on SQLite, then PostgreSQL (FUZZ_EXAMPLES per operation and pass)
	rm -f .fuzz-report.jsonl
	for engine in sqlite postgresql; do \
		PROVISIOND_FUZZ_ENGINE=$$engine PROVISIOND_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) PROVISIOND_FUZZ_RANDOM=1 \
		PROVISIOND_FUZZ_REPORT=$(CURDIR)/.fuzz-report.jsonl \
		$(PY) -m pytest -n $(PYTEST_WORKERS) -p no:cacheprovider tests/fuzz $(PYTEST_ARGS) || exit 1; \
	done
	$(PY) -m tests.fuzz.report .fuzz-report.jsonl

bench: $(VENV)/.installed ## run the benchmarks against a real server and print the table
	$(PY) -m bench

smoke: ## the package as users install it: wheel without extras in a fresh venv, serve, one HTTPS request
	$(PYTHON) .ci/wheel_smoke.py

clean: ## remove virtualenvs and node_modules
	rm -rf $(VENV) $(COMPAT_VENV) $(NODE_DIR)/node_modules $(NODE_TPM_DIR)/node_modules
