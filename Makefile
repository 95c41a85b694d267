# Two commands on a fresh machine: `make demo` and `make test`.
# Both create .venv from the pinned requirements files on first use.

PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: setup demo test synth bench lint clean

setup: $(STAMP)

$(STAMP): requirements.txt requirements-dev.txt
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
	rm -rf $(VENV) .pytest_cache
