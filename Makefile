# Two entry points, both self-installing on a fresh machine (only python3 + pip needed):
#   make demo   - run the notebooks headless against the local backend (results in out/)
#   make test   - lint + the whole test suite (unit, protocol, notebooks via papermill)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m catkit.notebook.demo

test: $(STAMP)
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m catkit.cli bench

clean:
	rm -rf out .pytest_cache
