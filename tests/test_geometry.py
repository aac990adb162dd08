"""The proprio state's quaternion -> axis-angle conversion against SciPy.

``envs.libero.geometry.quat_xyzw_to_axis_angle`` follows robosuite's convention (angle
``2 * acos(w)`` in [0, 2*pi]), which openpi, OpenVLA and LeRobot used when their LIBERO
datasets were converted. SciPy's ``Rotation.as_rotvec`` is the independent reference: it
returns the same rotation with the angle folded into [0, pi]. So for ``w >= 0`` the two
agree value for value, and for ``w < 0`` ours is SciPy's vector taken the long way round
(``r * (1 - 2*pi/|r|)``), which is the same rotation. Both properties are checked over
random quaternions of both signs of ``w`` and near the identity; NumPy only, no simulator.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.spatial.transform import Rotation

from envs.libero.geometry import quat_xyzw_to_axis_angle


def _random_unit_quaternions(rng: np.random.Generator, n: int) -> np.ndarray:
    quats = rng.normal(size=(n, 4))
    return quats / np.linalg.norm(quats, axis=1, keepdims=True)


def _near_identity(rng: np.random.Generator, n: int, sign: float, smallest: float) -> np.ndarray:
    """Turns of ``smallest`` .. 1e-3 rad about random axes, as (x, y, z, w) with ``w`` of ``sign``."""
    axes = rng.normal(size=(n, 3))
    axes /= np.linalg.norm(axes, axis=1, keepdims=True)
    angles = 10.0 ** rng.uniform(math.log10(smallest), -3, size=n)
    quats = np.concatenate([axes * np.sin(angles / 2)[:, None], np.cos(angles / 2)[:, None]], axis=1)
    return sign * quats


def _scipy_in_robosuite_convention(quat: np.ndarray) -> np.ndarray:
    """SciPy's rotation vector, unfolded to robosuite's angle 2*acos(w) when w < 0."""
    rotvec = Rotation.from_quat(quat).as_rotvec()  # angle in [0, pi]
    if quat[3] >= 0:
        return rotvec
    angle = np.linalg.norm(rotvec)
    return rotvec * (1.0 - 2.0 * math.pi / angle)


QUATS = _random_unit_quaternions(np.random.default_rng(14), 2000)


def test_the_sample_covers_both_signs_of_w() -> None:
    assert (QUATS[:, 3] < 0).sum() > 500 and (QUATS[:, 3] > 0).sum() > 500


@pytest.mark.parametrize("sign", ["w>=0", "w<0"])
def test_random_quaternions_match_scipy(sign: str) -> None:
    quats = QUATS[QUATS[:, 3] >= 0] if sign == "w>=0" else QUATS[QUATS[:, 3] < 0]
    for quat in quats:
        ours = quat_xyzw_to_axis_angle(quat)
        # the same rotation as SciPy's reading of the quaternion...
        difference = Rotation.from_rotvec(ours) * Rotation.from_quat(quat).inv()
        assert difference.magnitude() < 1e-9, (quat, ours)
        # ...in robosuite's convention: angle 2*acos(w), axis along the quaternion's (x, y, z)
        np.testing.assert_allclose(ours, _scipy_in_robosuite_convention(quat), rtol=1e-9, atol=1e-9)
        assert math.isclose(np.linalg.norm(ours), 2 * math.acos(quat[3]), rel_tol=1e-9, abs_tol=1e-9)


def test_w_below_zero_is_not_folded_to_the_inverse_rotation() -> None:
    # a quarter turn about +z written with w < 0: -q is the same rotation
    quat = -np.array([0.0, 0.0, math.sin(math.pi / 4), math.cos(math.pi / 4)])
    ours = quat_xyzw_to_axis_angle(quat)
    np.testing.assert_allclose(ours, [0.0, 0.0, -1.5 * math.pi], atol=1e-12)
    np.testing.assert_allclose(Rotation.from_rotvec(ours).as_matrix(), Rotation.from_quat(quat).as_matrix(), atol=1e-12)


# The angle is read from w = cos(angle / 2) and the axis length from sqrt(1 - w**2), as
# robosuite (and so every LIBERO training set) does. Rounding w limits that near w = +-1:
# with w > 0 the error is about sqrt(machine epsilon) ~ 1.5e-8 rad (a 1e-9 rad turn has
# w == 1.0 exactly); with w < 0 the vector is ~2*pi long and its length error grows as
# eps / angle**2, so turns below ~1e-4 rad written with w < 0 are not checked. Far from
# anything the robot's end effector reaches, but it sets these bounds.
@pytest.mark.parametrize(("sign", "smallest", "tolerance"), [(1.0, 1e-9, 5e-8), (-1.0, 1e-4, 1e-6)])
def test_near_identity_matches_scipy(sign: float, smallest: float, tolerance: float) -> None:
    for quat in _near_identity(np.random.default_rng(7), 300, sign, smallest):
        ours = quat_xyzw_to_axis_angle(quat)
        difference = Rotation.from_rotvec(ours) * Rotation.from_quat(quat).inv()
        assert difference.magnitude() < tolerance, (quat, ours)
        expected = _scipy_in_robosuite_convention(quat) if np.linalg.norm(ours) > 0 else np.zeros(3)
        np.testing.assert_allclose(ours, expected, rtol=0, atol=tolerance)


@pytest.mark.parametrize("quat", [[0, 0, 0, 1], [0, 0, 0, -1], [0, 0, 0, 1 + 1e-12], [1e-14, 0, 0, 1]])
def test_exact_identity_is_zero(quat: list[float]) -> None:
    ours = quat_xyzw_to_axis_angle(np.array(quat, dtype=np.float64))
    assert ours.shape == (3,) and ours.dtype == np.float64
    np.testing.assert_allclose(ours, 0.0, atol=1e-12)


def test_float32_input_from_the_simulator_is_accepted() -> None:
    quat = QUATS[0].astype(np.float32)
    ours = quat_xyzw_to_axis_angle(quat)
    difference = Rotation.from_rotvec(ours) * Rotation.from_quat(quat.astype(np.float64)).inv()
    assert difference.magnitude() < 1e-5
