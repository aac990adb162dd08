"""The 8-D LIBERO state exactly as openpi's LIBERO client computes and sends it: float64.

openpi's ``examples/libero/main.py`` sends ``concatenate((eef_pos, _quat2axisangle(eef_quat),
gripper_qpos))`` in float64, and its server normalizes that float64 vector before binning
it into the prompt. The env's ``proprio_state()`` is float32 (what checkpoints were
trained on), and near a bin edge that one rounding moves the bin (q01 = -0.30,
q99 = 0.20, raw -0.05976514453124998: openpi bin 123, float32 bin 122). So
``policy=mint`` builds its state from the observation's raw float64 ``robot`` entries
with this module, in openpi's operation order: ``_quat2axisangle`` is robosuite's
``quat2axisangle`` (``(q[:3] * 2 * acos(w)) / sqrt(1 - w * w)``), which differs from
:func:`envs.libero.geometry.quat_xyzw_to_axis_angle`'s order by one ulp in most
quaternions. ``tests/test_fidelity_openpi.py`` checks it against robosuite's function
bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np


def quat2axisangle(quat: Any) -> np.ndarray:
    """robosuite's / openpi's ``quat2axisangle`` (x, y, z, w order), same operations, float64."""
    q = np.array(quat, dtype=np.float64)
    q[3] = min(1.0, max(-1.0, float(q[3])))
    den = np.sqrt(1.0 - q[3] * q[3])
    if math.isclose(den, 0.0):
        return np.zeros(3)
    return (q[:3] * 2.0 * math.acos(q[3])) / den


def openpi_libero_state(robot: Mapping[str, Any]) -> np.ndarray:
    """float64[8] from the observation's ``robot`` entries (``Observation["robot"]``), as openpi's client sends it."""
    return np.concatenate((
        np.asarray(robot["robot0_eef_pos"], dtype=np.float64),
        quat2axisangle(robot["robot0_eef_quat"]),
        np.asarray(robot["robot0_gripper_qpos"], dtype=np.float64),
    ))
