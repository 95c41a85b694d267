# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv from the pinned requirements files on first use.
# The pins need Python 3.11 or newer: `make demo PYTHON=python3.12` picks another.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test synth bench lint clean old-crypto schema

setup: $(STAMP)

# A .venv whose Python is missing or older than 3.11 (left by a failed first
# try) is removed first; pip then brings any other .venv to the pins.
$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: the pinned requirements need Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1). Run e.g. make $(MAKECMDGOALS) PYTHON=python3.11" >&2; exit 1; }
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	$(PY) -m pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m localcloud run --input '{"messageBody": "hello world"}'

test: $(STAMP)
	$(PY) -m pytest

synth: $(STAMP)
	$(PY) -m infra.synth

# The component provider's package schema, derived from the components by the SDK's own
# analyzer (committed; tests/test_component_provider.py fails when it is stale).
schema: $(STAMP)
	$(PY) -m mns_callback_flow.provider schema component_provider/schema.json

# Every figure of bench/RESULTS.md, side by side, as JSON. BENCH_ARGS passes options,
# e.g. make bench BENCH_ARGS="--cdk-peer DIR" or BENCH_ARGS="synth_vs_imports --tiny".
BENCH_ARGS ?=

bench: $(STAMP)
	$(PY) -m bench $(BENCH_ARGS)

# The code archive against the oldest cryptography a Function Compute runtime may
# provide: no runtime states its version, so the floor is aliyun-python-sdk-core's
# Requires-Dist (cryptography>=3.0.0). A venv of its own holds only that stack.
OLD_CRYPTO_VERSION := 3.0
OLD_CRYPTO_VENV    := build/old-crypto-$(OLD_CRYPTO_VERSION)

old-crypto: $(STAMP)
	@test -x $(OLD_CRYPTO_VENV)/bin/python || $(PY) -m venv $(OLD_CRYPTO_VENV)
	$(OLD_CRYPTO_VENV)/bin/python -m pip install --quiet --disable-pip-version-check --only-binary=:all: cryptography==$(OLD_CRYPTO_VERSION)
	MNS_CALLBACK_OLD_CRYPTO_PYTHON=$(CURDIR)/$(OLD_CRYPTO_VENV)/bin/python $(PY) -m pytest -rs tests/test_packaging.py -k oldest_cryptography

# pyright checks the folders of pyproject.toml's [tool.pyright] against this
# interpreter's packages; the wheel bundles it (no npm), and the variable skips
# its check for a newer release.
lint: $(STAMP)
	$(PY) -m ruff check .
	PYRIGHT_PYTHON_IGNORE_WARNINGS=1 $(PY) -m pyright --pythonpath $(PY)

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build
