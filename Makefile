# Two entry points, both self-installing on a fresh machine (only python3 + pip needed):
#   make demo   - run the notebooks headless against the local backend (results in out/)
#   make test   - lint + the whole test suite (unit, protocol, notebooks via papermill, notebooks in
#                 JupyterLab + Chromium: tests/browser; `browser-deps` installs Debian's chromium),
#                 then the framework containers' tests (make test-frameworks)
# Both install from the lock (uv.lock) with uv - on PATH, or installed from PyPI into .tools/uv on
# first use - and with pip + requirements/constraints*.txt otherwise (CATKIT_INSTALLER=pip forces it).
#   make test-sdk3 - the SageMaker SDK tests in a second venv where SDK v3 was installed before catkit
#   make test-frameworks - the TensorFlow Serving / Hugging Face / PyTorch container tests (pytest -m
#                  frameworks; they skip in .venv) in .venv-frameworks: tensorflow-cpu and transformers
#                  from PyPI, torch only as the CPU wheel in /opt/wheels (CATKIT_TORCH_WHEELS) - PyPI's
#                  Linux torch is a CUDA build of several GB (~3 GB in the venv, 27 s with uv from an empty cache). `make test`
#                  runs it after the main suite.
#   make lock      - re-resolve uv.lock and export requirements/*.txt after changing dependencies
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
export PYTHON

# Extras of each environment (see pyproject.toml). demo: the core install only.
TEST_EXTRAS := dev sdk2 locust
SDK3_EXTRAS := dev
SDK3_VENV   := .venv-sdk3

DEMO_STAMP := $(VENV)/.installed-demo
TEST_STAMP := $(VENV)/.installed-test
SDK3_STAMP := $(SDK3_VENV)/.installed
FW_VENV    := .venv-frameworks
FW_STAMP   := $(FW_VENV)/.installed
FW_EXTRAS  := dev sdk2 locust
# Where the `frameworks` tests live: collecting the whole tree (locust, SDK imports) costs ~35 s more.
FW_TESTS   := tests/local/sagemaker/test_framework_containers_e2e.py

.PHONY: demo test test-sdk3 test-frameworks lint bench lock clean browser-deps

$(DEMO_STAMP): pyproject.toml uv.lock
	tools/venv.sh --inexact $(VENV)
	touch $@

$(TEST_STAMP): pyproject.toml uv.lock
	tools/venv.sh $(VENV) $(TEST_EXTRAS)
	touch $@ $(DEMO_STAMP)

$(SDK3_STAMP): pyproject.toml uv.lock
	tools/venv.sh --sdk3-preinstalled $(SDK3_VENV) $(SDK3_EXTRAS)
	touch $@

$(FW_STAMP): pyproject.toml requirements/constraints.txt tools/venv.sh
	tools/venv.sh --frameworks $(FW_VENV) $(FW_EXTRAS)
	touch $@

demo: $(DEMO_STAMP)
	$(PY) -m catkit.notebook.demo

# Two phases: the tests that mostly wait on processes, sockets and emulated clocks run two at a time
# (pytest-xdist, whole files per worker so a module's backend starts once; TEST_WORKERS=0 runs them
# in this process); the notebooks and the browser, which keep both cores busy on their own, run alone
# after them. Then the framework containers' tests in their own venv.
TEST_WORKERS ?= 2
test: $(TEST_STAMP) browser-deps
	$(VENV)/bin/ruff check .
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile -m "not notebooks and not browser"
	$(PY) -m pytest -m "notebooks or browser"
	$(MAKE) --no-print-directory test-frameworks

test-sdk3: $(SDK3_STAMP)
	CATKIT_SDK_PREINSTALLED=3 $(SDK3_VENV)/bin/python -m pytest -m sdk -p no:cacheprovider

test-frameworks: $(FW_STAMP)
	HF_HUB_OFFLINE=1 $(FW_VENV)/bin/python -m pytest -m frameworks -p no:cacheprovider $(FW_TESTS)

# Debian's Chromium for tests/browser (Playwright drives /usr/bin/chromium; no browser download).
# Installed when missing and we may (root with apt-get); otherwise the browser tests are skipped
# (outside CI) and this says so.
browser-deps:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: chromium is not installed (apt-get install chromium): tests/browser will be skipped"; fi; }

lint: $(TEST_STAMP)
	$(VENV)/bin/ruff check .

bench: $(DEMO_STAMP)
	$(PY) -m catkit.cli bench

# Needs uv (e.g. `pip install uv`, or .tools/uv/bin/uv after a first `make`).
UV_BIN ?= $(shell command -v uv 2>/dev/null || echo .tools/uv/bin/uv)
lock:
	$(UV_BIN) lock
	$(UV_BIN) export --frozen --no-hashes --no-emit-project --extra dev --extra sdk2 --extra locust \
		-o requirements/constraints.txt
	$(UV_BIN) export --frozen --no-hashes --no-emit-project --extra dev --extra sdk3 --extra locust \
		-o requirements/constraints-sdk3.txt

clean:
	rm -rf out .pytest_cache
