"""Episode keys of every shipped configuration stay what they were (resume depends on it).

The golden file is written by ``scripts/golden_keys.py --write``, from the same
``prepare()`` the CLI runs; a change that moves a key must bump the results schema
version and refuse old folders in one line instead (see docs/architecture.md).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_plans_of_shipped_configs_keep_their_keys(assets_installed) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, str(ROOT / "scripts" / "golden_keys.py")], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "222 plans, 0 changed" in result.stdout
