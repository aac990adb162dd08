"""``camera``: the agentview camera orbits a pivot above the table (LIBERO-Plus's parametrization).

The pivot is (0, 0, 0.8) in the table scenes; in LIBERO-Object's floor scenes, whose
agentview sits elsewhere, it is the point at the same place relative to the camera.

From LIBERO's agentview pose, in this order: elevation V (orbit about the y-parallel
axis through the pivot, upward), azimuth H (orbit about the world z axis through the
pivot), distance S (the camera-to-pivot vector scaled), roll R (orientation only, about
the camera's optical axis) and tilt E (orientation only, about the camera's vertical
axis). Like LIBERO-Plus, each episode changes one group: (H, V), H alone, S alone or
(R, E). Magnitudes lie in the level's fifth of LIBERO-Plus's ranges:
|H| <= 75 deg, V in [0, 15] deg, S in [1, 2], |R|, |E| <= 10 deg. The wrist camera and
the field of view are untouched. The edit is of ``cam_pos`` / ``cam_quat`` of the
compiled model, so physics is unaffected.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from scipy.spatial.transform import Rotation

from envs.libero.perturb.base import ModelPatch, Perturbation, PerturbationSettings, band, subset_of

PIVOT = np.array([0.0, 0.0, 0.8])
#: LIBERO's agentview pose in its table scenes, for which LIBERO-Plus defines the pivot.
TABLE_AGENTVIEW_POS = np.array([0.6586, 0.0, 1.6104])
TABLE_AGENTVIEW_QUAT = np.array([0.63801772, 0.30484972, 0.30484984, 0.63801772])
GROUPS = ("hv", "h", "s", "re")
MAX = {"H": 75.0, "V": 15.0, "S": 1.0, "R": 10.0, "E": 10.0}  # S: the scale's excess over 1


def _wxyz_to_rotation(q: np.ndarray) -> Rotation:
    return Rotation.from_quat([q[1], q[2], q[3], q[0]])


def _rotation_to_wxyz(r: Rotation) -> np.ndarray:
    x, y, z, w = r.as_quat()
    return np.array([w, x, y, z])


def scene_pivot(pos: np.ndarray, quat: np.ndarray) -> np.ndarray:
    """The pivot for a scene whose agentview is at (pos, quat).

    It keeps the place relative to the camera that (0, 0, 0.8) has in the table scenes, so
    it is exactly (0, 0, 0.8) there; LIBERO-Object's floor scenes move the camera, and the
    pivot moves with it (stays above their objects).
    """
    in_camera = _wxyz_to_rotation(TABLE_AGENTVIEW_QUAT).inv().apply(PIVOT - TABLE_AGENTVIEW_POS)
    return np.asarray(pos, dtype=np.float64) + _wxyz_to_rotation(quat).apply(in_camera)


def orbit(pos: np.ndarray, quat: np.ndarray, p: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    """The camera pose (pos, wxyz quat) after elevation, azimuth, distance, roll and tilt."""
    rot = _wxyz_to_rotation(quat)
    pivot = scene_pivot(pos, quat)
    rel = np.asarray(pos, dtype=np.float64) - pivot
    for world in (Rotation.from_euler("y", -p["V"], degrees=True), Rotation.from_euler("z", p["H"], degrees=True)):
        rel = world.apply(rel)
        rot = world * rot
    rel = rel * p["S"]
    rot = rot * Rotation.from_euler("z", p["R"], degrees=True) * Rotation.from_euler("y", p["E"], degrees=True)
    return pivot + rel, _rotation_to_wxyz(rot)


class CameraSettings(PerturbationSettings):
    camera: str = "agentview"  # the camera that orbits (the wrist camera is untouched)
    groups: Annotated[tuple[str, ...] | None, subset_of(GROUPS)] = None  # null = all of them

class CameraOrbit(Perturbation):
    name = "camera"

    Settings = CameraSettings

    def __init__(self, level: int | None = None, camera: str = "agentview", groups: list[str] | None = None) -> None:
        super().__init__(level)
        self.camera = camera
        self.groups = tuple(groups) if groups else GROUPS

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        group = self.groups[int(rng.integers(len(self.groups)))]
        p = {"group": group, "H": 0.0, "V": 0.0, "S": 1.0, "R": 0.0, "E": 0.0}
        sign = lambda: float(rng.choice([-1.0, 1.0]))  # noqa: E731
        if group in ("hv", "h"):
            p["H"] = sign() * band(rng, self.level, 0.0, MAX["H"])
        if group == "hv":
            p["V"] = band(rng, self.level, 0.0, MAX["V"])
        if group == "s":
            p["S"] = 1.0 + band(rng, self.level, 0.0, MAX["S"])
        if group == "re":
            p["R"] = sign() * band(rng, self.level, 0.0, MAX["R"])
            p["E"] = sign() * band(rng, self.level, 0.0, MAX["E"])
        return p

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        model = env._sim.model
        cid = model.camera_name2id(self.camera)
        pos, quat = orbit(model.cam_pos[cid], model.cam_quat[cid], params)
        patch.set(model.cam_pos, cid, pos)
        patch.set(model.cam_quat, cid, quat)
        return {"cam_pos": [round(float(v), 6) for v in pos], "cam_quat": [round(float(v), 6) for v in quat]}
