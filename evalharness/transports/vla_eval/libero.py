"""vla-eval's LIBERO conventions on the client side: the observation it sends, the action it executes.

vla-eval's LIBERO benchmark (``vla_eval/benchmarks/libero/benchmark.py``, 0.8.0) builds
each observation as::

    {"images": {"agentview": <uint8 256x256x3>, ["wrist": <same>]},
     "task_description": <the task's language>,
     ["states": float64[8], "controller_states": float32[8]]}

- the images are the cameras flipped on both axes (``[::-1, ::-1]``); it renders at 256,
  so its "resize with padding to 256" changes nothing. Here the protocol's image
  transforms do that (``protocol=vla_eval``: ``rotate180``, ``resize_with_pad: 256``),
  and this module only names them: ``base_0_rgb`` -> ``agentview``,
  ``left_wrist_0_rgb`` -> ``wrist`` (sent only with ``send_wrist_image``);
- ``states`` (only with ``send_state``): eef position (float64, as robosuite reports it),
  the axis-angle of the eef quaternion (float32) and the gripper qpos (float64),
  concatenated, so float64. The axis-angle takes the quaternion's antipode when ``w < 0``
  (:func:`quat_to_axis_angle`) unless ``quat_no_antipodal`` (robosuite's own formula,
  :func:`quat_to_axis_angle_no_antipodal`, what LeRobot's LIBERO processor uses);
- ``controller_states`` (with ``send_state``): the OSC controller's eef position and
  orientation matrix, as float32, the orientation through a quaternion to axis-angle,
  plus the gripper qpos: float32[8];
- the action executed is the reply's 7 numbers with the gripper made binary: ``-1`` when
  it is negative, else ``+1`` (vla-eval's ``LIBEROBenchmark.step``).

``tests/test_vla_eval_libero.py`` checks the payload built here byte for byte against
vla-eval's own ``make_obs`` for the same simulator states.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

__all__ = ["CAMERA_KEYS", "observation_payload", "binarize_gripper", "quat_to_axis_angle",
           "quat_to_axis_angle_no_antipodal", "matrix_to_quat"]

#: harness camera -> vla-eval's LIBERO image key
CAMERA_KEYS = {"base_0_rgb": "agentview", "left_wrist_0_rgb": "wrist"}
#: where the env puts the OSC controller's pose in ``Observation["robot"]``
CONTROLLER_POS, CONTROLLER_ORI = "robot0_controller_eef_pos", "robot0_controller_eef_ori_mat"


def quat_to_axis_angle(quat: np.ndarray) -> np.ndarray:
    """x-y-z-w quaternion -> float32 axis-angle, taking the antipode first when w < 0."""
    q = -quat if quat[3] < 0 else quat.copy()
    w = float(np.clip(q[3], -1.0, 1.0))
    sin_half = np.sqrt(1.0 - w * w)
    if sin_half < 1e-8:
        return np.zeros(3, dtype=np.float32)
    return (q[:3] / sin_half * (2.0 * np.arccos(w))).astype(np.float32)


def quat_to_axis_angle_no_antipodal(quat: np.ndarray) -> np.ndarray:
    """robosuite's ``quat2axisangle`` (no antipode), as float32: vla-eval's ``quat_no_antipodal``."""
    q = quat.copy()
    q[3] = min(1.0, max(-1.0, q[3]))
    den = np.sqrt(1.0 - q[3] * q[3])
    if math.isclose(den, 0.0):
        return np.zeros(3, dtype=np.float32)
    return (q[:3] * 2.0 * math.acos(q[3]) / den).astype(np.float32)


def matrix_to_quat(matrix: np.ndarray) -> np.ndarray:
    """3x3 rotation matrix -> x-y-z-w quaternion (float64), by Shepperd's branch on the largest diagonal."""
    m = np.asarray(matrix, dtype=np.float64)
    trace = m[0, 0] + m[1, 1] + m[2, 2]
    if trace > 0:
        s = 2.0 * np.sqrt(trace + 1.0)
        w, x, y, z = 0.25 * s, (m[2, 1] - m[1, 2]) / s, (m[0, 2] - m[2, 0]) / s, (m[1, 0] - m[0, 1]) / s
    elif m[0, 0] > m[1, 1] and m[0, 0] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[0, 0] - m[1, 1] - m[2, 2])
        w, x, y, z = (m[2, 1] - m[1, 2]) / s, 0.25 * s, (m[0, 1] + m[1, 0]) / s, (m[0, 2] + m[2, 0]) / s
    elif m[1, 1] > m[2, 2]:
        s = 2.0 * np.sqrt(1.0 + m[1, 1] - m[0, 0] - m[2, 2])
        w, x, y, z = (m[0, 2] - m[2, 0]) / s, (m[0, 1] + m[1, 0]) / s, 0.25 * s, (m[1, 2] + m[2, 1]) / s
    else:
        s = 2.0 * np.sqrt(1.0 + m[2, 2] - m[0, 0] - m[1, 1])
        w, x, y, z = (m[1, 0] - m[0, 1]) / s, (m[0, 2] + m[2, 0]) / s, (m[1, 2] + m[2, 1]) / s, 0.25 * s
    return np.array([x, y, z, w])


def observation_payload(observation: dict[str, Any], *, send_wrist_image: bool, send_state: bool,
                        quat_no_antipodal: bool) -> dict[str, Any]:
    """The ``observation`` frame's payload vla-eval's LIBERO benchmark builds for this state.

    ``observation`` is the harness's :class:`~evalharness.policies.base.Observation` (images
    already through the protocol's transforms).
    """
    images = observation["images"]
    payload: dict[str, Any] = {
        "images": {"agentview": np.ascontiguousarray(images["base_0_rgb"])},
        "task_description": str(observation["instruction"]),
    }
    if send_wrist_image:
        payload["images"]["wrist"] = np.ascontiguousarray(images["left_wrist_0_rgb"])
    if send_state:
        robot = observation["robot"]
        to_axis_angle = quat_to_axis_angle_no_antipodal if quat_no_antipodal else quat_to_axis_angle
        gripper = robot["robot0_gripper_qpos"]
        payload["states"] = np.concatenate([robot["robot0_eef_pos"], to_axis_angle(robot["robot0_eef_quat"]), gripper])
        if CONTROLLER_POS in robot and CONTROLLER_ORI in robot:
            pos = np.asarray(robot[CONTROLLER_POS], dtype=np.float32)
            ori = np.asarray(robot[CONTROLLER_ORI], dtype=np.float32)
            payload["controller_states"] = np.concatenate(
                [pos, quat_to_axis_angle(matrix_to_quat(ori)), np.asarray(gripper, dtype=np.float32)])
    return payload


def binarize_gripper(chunk: np.ndarray) -> np.ndarray:
    """The chunk with its last (gripper) column made -1 where negative, else +1."""
    out = np.array(chunk, dtype=np.float64, copy=True)
    out[..., -1] = np.where(out[..., -1] < 0, -1.0, 1.0)
    return out
