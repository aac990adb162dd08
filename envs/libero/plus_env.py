"""Building a LIBERO-Plus variant's env with hf-libero, the way LIBERO-Plus's own code builds it.

Two things of a variant are fixed when LIBERO builds the scene (see :mod:`envs.libero.plus_data`):

- **camera**: the problem class sets agentview through ``Arena.set_camera``; while the env is
  built, that call gets the variant's pose (:func:`envs.libero.plus_camera.libero_plus_pose`),
  which is what every LIBERO-Plus problem class computes from the same base pose;
- **robot init**: upstream builds the arm as robot class ``MountedPanda<k>`` (``OnTheGroundPanda<k>``
  in floor scenes), whose only difference is ``init_qpos`` (the wheel's 500-entry tables,
  generated with seed 42).
  LIBERO's ``set_init_state`` then restores the saved arm pose, so what stays perturbed is
  the controller's null-space target (``initial_joint``), exactly as upstream.

The classes are registered with robosuite on first use, as subclasses of hf-libero's
``MountedPanda`` / ``OnTheGroundPanda`` (the classes upstream's are copies of).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from envs.libero.plus_camera import libero_plus_pose
from envs.libero.plus_data import Variant, robot_init_table


def robot_name(variant: Variant) -> str:
    """The ``robots`` argument LIBERO's problem class receives (it prefixes ``Mounted``)."""
    return "Panda" if variant.robot_init == 0 else f"Panda{variant.robot_init}"


def register_robot(k: int) -> list[str]:
    """Register ``MountedPanda<k>`` and ``OnTheGroundPanda<k>`` with robosuite (idempotent)."""
    import numpy as np
    from libero.libero.envs.robots.mounted_panda import MountedPanda
    from libero.libero.envs.robots.on_the_ground_panda import OnTheGroundPanda
    from robosuite.models.robots.robot_model import REGISTERED_ROBOTS
    from robosuite.robots import ROBOT_CLASS_MAPPING
    from robosuite.robots.single_arm import SingleArm

    names = []
    for kind, parent in (("MountedPanda", MountedPanda), ("OnTheGroundPanda", OnTheGroundPanda)):
        name = f"{kind}{k}"
        if name not in REGISTERED_ROBOTS:
            qpos = robot_init_table(kind)[k]

            def init_qpos(self, qpos=qpos) -> np.ndarray:
                return np.array(qpos)

            type(name, (parent,), {"init_qpos": property(init_qpos), "__doc__": f"LIBERO-Plus robot init state {k}."})
        ROBOT_CLASS_MAPPING.setdefault(name, SingleArm)
        names.append(name)
    return names


@contextlib.contextmanager
def building(variant: Variant) -> Iterator[dict]:
    """While LIBERO builds ``variant``'s env: its agentview pose and robot; yields the env kwargs."""
    from robosuite.models.arenas.arena import Arena

    if variant.robot_init:
        register_robot(variant.robot_init)
    horizontal, vertical, scale_pct, roll, tilt = variant.camera
    original = Arena.set_camera

    def set_camera(self, camera_name, pos, quat, camera_attribs=None):
        if camera_name == "agentview":
            pos, quat = libero_plus_pose(pos, quat, horizontal, vertical, float(int(scale_pct) / 100), roll, tilt)
        return original(self, camera_name, pos, quat, camera_attribs)

    Arena.set_camera = set_camera
    try:
        yield {"robots": [robot_name(variant)]}
    finally:
        Arena.set_camera = original
