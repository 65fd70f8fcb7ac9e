# margay's one dev entry point. Every target installs what it needs itself.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench rig clean venv

WEB := src/margay/web
WEB_STAMP := $(WEB)/node_modules/.installed

venv: $(STAMP) $(WEB_STAMP)

# The UI's front-end libraries (echarts, cytoscape) from npm, pinned by package-lock.json; never committed.
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

## make demo: a server on the embedded store, fed by a simulated two-cluster workload
demo: venv
	$(BIN)/margay demo

## make rig: install and build the real peers the tests use (apt, Maven, Go)
rig: venv
	bash scripts/rig/install.sh

## make test: everything above, then every test
test: venv rig
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

bench: venv rig
	$(BIN)/margay bench --mode $${BENCH:-quick}

clean:
	rm -rf $(VENV) .rig build *.egg-info
