# Two entry points, both self-installing on a fresh machine (only python3 + pip needed):
#   make demo   - run the notebooks headless against the local backend (results in out/)
#   make test   - lint + the whole test suite (unit, protocol, notebooks via papermill, notebooks in
#                 JupyterLab + Chromium: tests/browser; `browser-deps` installs Debian's chromium)
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: demo test lint bench clean browser-deps

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m catkit.notebook.demo

test: $(STAMP) browser-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest

# Debian's Chromium for tests/browser (Playwright drives /usr/bin/chromium; no browser download).
# Installed when missing and we may (root with apt-get); otherwise the browser tests are skipped
# (outside CI) and this says so.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is not installed (apt-get install chromium): tests/browser will be skipped"; fi; }

lint: $(STAMP)
	$(VENV)/bin/ruff check .

bench: $(STAMP)
	$(PY) -m catkit.cli bench

clean:
	rm -rf out .pytest_cache
