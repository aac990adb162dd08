"""The side venvs that run LIBERO-PRO's and LIBERO-Plus's own env code (test-only helper)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def upstream_interpreter(kind: str) -> str:
    """The interpreter of ``scripts/upstream_venv.sh <kind>`` (``pro`` or ``liberoplus``),
    built on first use (a few minutes, from PyPI); a failed build fails the test, with why."""
    result = subprocess.run([str(REPO / "scripts" / "upstream_venv.sh"), kind], capture_output=True, text=True)
    if result.returncode != 0:
        pytest.fail(f"the {kind} side venv could not be built: {result.stderr.strip()[-2000:]}")
    return result.stdout.strip().splitlines()[-1]
