# margay's one dev entry point. Every target installs what it needs itself.
SHELL := /bin/bash
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
RUN_STAMP := $(VENV)/.installed-run
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: demo test lint bench rig clean venv native

WEB := src/margay/web
WEB_STAMP := $(WEB)/node_modules/.installed

# make venv: everything for tests and lint (the runtime, the dev toolchain, the UI's libraries)
venv: $(DEV_STAMP) $(WEB_STAMP)

# The UI's front-end libraries (echarts, cytoscape) from npm, pinned by package-lock.json; never committed.
$(WEB_STAMP): $(WEB)/package.json $(WEB)/package-lock.json
	cd $(WEB) && npm ci --no-audit --no-fund --loglevel=error
	touch $(WEB_STAMP)

# What running margay needs, nothing more: `make demo` installs only this (~30 s on a warm pip cache).
# It builds ingest's C extensions (setup.py) where gcc and Python's headers are; without them margay still runs.
$(RUN_STAMP): pyproject.toml setup.py $(wildcard src/margay/ingest/_*.c src/margay/ingest/_*.h)
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -e .
	touch $(RUN_STAMP)

# The development toolchain on top (pytest, ruff, mypy, playwright, seaweedfs, moto, ...): for test and lint.
$(DEV_STAMP): $(RUN_STAMP) pyproject.toml
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(DEV_STAMP)

## make demo: a server on the embedded store, fed by a simulated two-cluster workload
demo: $(RUN_STAMP) $(WEB_STAMP)
	$(BIN)/margay demo

## make rig: install and build the real peers the tests use (apt, Maven, Go)
rig: venv
	bash scripts/rig/install.sh

# The C scanner again, should the first install have gone without a compiler (make rig installs gcc).
native: $(RUN_STAMP)
	$(BIN)/python -c "from margay.ingest._keyscan import KeySet, count_newlines, count_records; from margay.ingest._columns import Parser" 2>/dev/null || $(BIN)/pip install -q --disable-pip-version-check -e .

## make test: everything above, then every test
test: venv rig native
	$(BIN)/pytest

lint: venv
	$(BIN)/ruff check src tests
	$(BIN)/mypy src

bench: venv rig
	$(BIN)/margay bench --mode $${BENCH:-quick}

clean:
	rm -rf $(VENV) .rig build *.egg-info
