# The README's two commands: `make demo` (the main job, `sar_ref_demo`; e.g. DEMO_ARGS='--budget tiny') and `make test`
# (the whole test suite).
# Both install what they need first, so they work on a fresh machine from a clean clone.
SHELL := /bin/bash
PYTHON ?= python3
PIP := $(PYTHON) -m pip
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)
DEMO_ARGS ?=

.PHONY: install data demo test check readme

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

demo: install
	sar_ref_demo $(DEMO_ARGS)

# One OpenMP thread per process: nbdev_test runs notebooks in parallel (one process per core), and oversubscribed
# OpenMP threads spin at their barriers, which made small models up to 25x slower on a 2-core machine.
test: install
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
