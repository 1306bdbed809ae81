# The README's two commands: `make demo` (the main job, `sar_ref_demo`; e.g. DEMO_ARGS='--budget tiny') and `make test`
# (the whole test suite).
# Both install what they need first, so they work on a fresh machine from a clean clone. `make docs` builds the website
# into docs/_build/html (open index.html there) with its own tools (docs-deps); `make test` builds it too and checks it
# in a headless Chromium.
SHELL := /bin/bash
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
DEMO_ARGS ?=
MATHJAX_VERSION := 3.2.2
MATHJAX := docs/_vendor/node_modules/mathjax

.PHONY: install data docs-deps docs demo test check readme

install: data
	$(PIP) install torch==2.14.1 torchvision==0.29.1
	$(PIP) install -e ".[dev]"

# Debian's dataset-fashion-mnist holds the original idx files: the data then needs no download at run time.
data:
	@if dpkg -s dataset-fashion-mnist >/dev/null 2>&1; then echo "dataset-fashion-mnist: installed"; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq dataset-fashion-mnist \
		|| echo "dataset-fashion-mnist could not be installed; torchvision will download Fashion-MNIST when online"; \
	else echo "no apt-get: torchvision will download Fashion-MNIST when online"; fi

# The website's tools: Sphinx and its notebook reader (pinned in docs/requirements.txt), MathJax from npm (the site
# carries it, so pages typeset offline), and Debian's Chromium with its driver for the browser test.
docs-deps:
	$(PIP) install -q -r docs/requirements.txt
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then echo "chromium: installed"; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq chromium chromium-driver \
		|| echo "chromium could not be installed; tests/test_docs.py needs it"; \
	else echo "no apt-get: install Chromium and chromedriver to run tests/test_docs.py"; fi
	@if grep -qs '"version": "$(MATHJAX_VERSION)"' $(MATHJAX)/package.json; then echo "mathjax: installed"; \
	else if ! command -v npm >/dev/null && command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm; fi; \
	mkdir -p docs/_vendor && npm install --no-save --no-package-lock --no-audit --no-fund --prefix docs/_vendor \
		mathjax@$(MATHJAX_VERSION); fi

# The notebooks as they are committed (never re-executed) and the API reference, staged in docs/_build/src and
# rendered afresh to docs/_build/html; any warning fails the build.
docs: install docs-deps
	nice $(PYTHON) docs/make_site.py

demo: install
	sar_ref_demo $(DEMO_ARGS)

# One OpenMP thread per process: nbdev_test runs notebooks in parallel (one process per core), and oversubscribed
# OpenMP threads spin at their barriers, which made small models up to 25x slower on a 2-core machine.
test: install docs
	OMP_NUM_THREADS=1 nbdev_test --n_workers $$(nproc)
	OMP_WAIT_POLICY=PASSIVE $(PYTHON) -m pytest -q tests

readme:
	jupyter nbconvert --to markdown --log-level WARN --stdout nbs/index.ipynb > README.md

# Notebooks are the source: exporting, cleaning and regenerating the README must change nothing that is committed.
check:
	nbdev_export
	nbdev_clean
	$(MAKE) --no-print-directory readme
	@changed=$$(git status --porcelain); if [ -n "$$changed" ]; then \
		echo "notebooks, library and README are out of step (run nbdev_export, nbdev_clean, make readme; commit):"; \
		echo "$$changed"; git --no-pager diff --stat; exit 1; else echo "check: notebooks, library and README agree"; fi
