# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv from the pinned requirements files on first use.
# The pins need Python 3.11 or newer: `make demo PYTHON=python3.12` picks another.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test synth bench lint clean

setup: $(STAMP)

# A .venv whose Python is missing or older than 3.11 (left by a failed first
# try) is removed first; pip then brings any other .venv to the pins.
$(STAMP): requirements.txt requirements-dev.txt
	@$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || { \
	  echo "error: the pinned requirements need Python 3.11 or newer; $(PYTHON) is $$($(PYTHON) --version 2>&1). Run e.g. make $(MAKECMDGOALS) PYTHON=python3.11" >&2; exit 1; }
	@$(PY) -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null || rm -rf $(VENV)
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m localcloud run --input '{"messageBody": "hello world"}'

test: $(STAMP)
	$(PY) -m pytest

synth: $(STAMP)
	$(PY) -m infra.synth

bench: $(STAMP)
	$(PY) -m bench

lint: $(STAMP)
	$(PY) -m ruff check .

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .ruff_cache build
