"""Small rotation helpers for the proprioceptive state VLA policies were trained on."""

from __future__ import annotations

import math

import numpy as np


def quat_xyzw_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """Axis-angle (3,) from a unit quaternion in robosuite's (x, y, z, w) order.

    The angle is ``2 * acos(w)`` in [0, 2*pi], matching the convention used when the
    LIBERO datasets of openpi / OpenVLA were converted, so a policy sees the state layout
    it was trained on. A quaternion with ``w`` at +-1 (no rotation) gives zeros.
    """
    x, y, z, w = (float(v) for v in quat)
    w = min(1.0, max(-1.0, w))
    sin_half = math.sqrt(max(0.0, 1.0 - w * w))
    if math.isclose(sin_half, 0.0, abs_tol=1e-12):
        return np.zeros(3, dtype=np.float64)
    angle = 2.0 * math.acos(w)
    return np.array([x, y, z], dtype=np.float64) * (angle / sin_half)
