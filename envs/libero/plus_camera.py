"""LIBERO-Plus's camera viewpoints: the agentview pose as upstream computes it, rounded.

Upstream (every problem class's ``_setup_camera`` in LIBERO-Plus) starts from the scene's
agentview pose, which is LIBERO's own, and applies, each step rounding every pose component
to 4 decimals:

1. when the vertical angle v is not 0: rotate position and orientation by -v deg about the
   axis parallel to y through the fixed pivot (0, 0, 0.8);
2. always: rotate by the horizontal angle h deg about the world z axis (through x = y = 0,
   which is the pivot's vertical) - so even the default view is rounded (0.658613 -> 0.6586);
3. when the scale s is not 1: scale the position's offset from the pivot by s;
4. when roll r is not 0: rotate the orientation (only) by r deg about world z;
5. when tilt t is not 0: rotate the orientation (only) by -t deg about world y.

Quaternions are MuJoCo's (w, x, y, z). The arithmetic is scipy's ``Rotation``, as upstream's.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

PIVOT = (0.0, 0.0, 0.8)


def _rot(quat_wxyz: Sequence[float]):
    from scipy.spatial.transform import Rotation

    return Rotation.from_quat([quat_wxyz[1], quat_wxyz[2], quat_wxyz[3], quat_wxyz[0]])


def _wxyz(rotation) -> list[float]:
    q = rotation.as_quat()
    return [float(q[3]), float(q[0]), float(q[1]), float(q[2])]


def _round(values: Sequence[float]) -> list[float]:
    return [round(float(x), 4) for x in values]


def _about_y(quat: Sequence[float], pos: Sequence[float] | None, degrees: int) -> tuple[list[float], list[float] | None]:
    from scipy.spatial.transform import Rotation

    turn = Rotation.from_rotvec(np.radians(-degrees) * np.array([0, 1, 0]))
    new_quat = _wxyz(turn * _rot(quat))
    new_pos = None
    if pos is not None:
        new_pos = (turn.apply(np.array(pos) - np.array(PIVOT)) + np.array(PIVOT)).tolist()
    return new_quat, new_pos


def _about_z(quat: Sequence[float], pos: Sequence[float] | None, degrees: int) -> tuple[list[float], list[float] | None]:
    from scipy.spatial.transform import Rotation

    turn = Rotation.from_euler("z", degrees, degrees=True)
    new_quat = _wxyz(turn * _rot(quat))
    new_pos = turn.apply(pos).tolist() if pos is not None else None
    return new_quat, new_pos


def libero_plus_pose(
    pos: Sequence[float], quat: Sequence[float], horizontal: int = 0, vertical: int = 0,
    scale: float = 1.0, roll: int = 0, tilt: int = 0,
) -> tuple[list[float], list[float]]:
    """The agentview (pos, quat wxyz) LIBERO-Plus builds from the scene's base pose."""
    if int(vertical) != 0:
        q, p = _about_y(quat, pos, int(vertical))
        pos, quat = _round(p), _round(q)  # type: ignore[arg-type]
    q, p = _about_z(quat, pos, int(horizontal))
    pos, quat = _round(p), _round(q)  # type: ignore[arg-type]
    if float(scale) != 1.0:
        offset = np.array(pos) - np.array(PIVOT)
        pos = _round((np.array(PIVOT) + offset * float(scale)).tolist())
        quat = _round(quat)
    if int(roll) != 0:
        quat = _round(_about_z(quat, None, int(roll))[0])
    if int(tilt) != 0:
        quat = _round(_about_y(quat, None, int(tilt))[0])
    return list(pos), list(quat)
