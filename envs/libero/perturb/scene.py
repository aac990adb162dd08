"""Reading and editing the live LIBERO scene: contacts, free objects, the target, the workspace.

Shared by the physical dimensions (position, runtime_move, robot_init) and the validity
check. Everything here reads the compiled model and the simulator's data directly.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from envs.libero.env import LiberoEnv

FREE_JOINT = 0  # mujoco.mjtJoint.mjJNT_FREE
WORKSPACE_MARGIN = 0.05  # m kept clear of the table's edge
FLOOR_WORKSPACE_PAD = 0.10  # m around the objects' initial spread in table-less scenes


def sim(env: "LiberoEnv"):
    return env._sim


def refresh(env: "LiberoEnv") -> None:
    """Recompute derived quantities and the observables after an edit of the state."""
    env._sim.forward()
    env._raw_obs = env._env.env._get_observations(force_update=True)


def contact_pairs(env: "LiberoEnv") -> set[tuple[str, str]]:
    """The touching geom pairs (by name or id), order-free."""
    model, data = env._sim.model, env._sim.data
    pairs = set()
    for i in range(data.ncon):
        c = data.contact[i]
        a = model.geom_id2name(c.geom1) or f"geom{c.geom1}"
        b = model.geom_id2name(c.geom2) or f"geom{c.geom2}"
        pairs.add((a, b) if a <= b else (b, a))
    return pairs


def free_objects(env: "LiberoEnv") -> dict[str, int]:
    """Object name -> qpos address of its free joint (``<name>_joint0``)."""
    model = env._sim.model
    objects = {}
    for j in range(model.njnt):
        if model.jnt_type[j] == FREE_JOINT:
            name = model.joint_id2name(j) or ""
            objects[name.removesuffix("_joint0")] = int(model.jnt_qposadr[j])
    return objects


def object_positions(env: "LiberoEnv") -> dict[str, np.ndarray]:
    qpos = env._sim.data.qpos
    return {name: np.array(qpos[adr : adr + 3]) for name, adr in free_objects(env).items()}


def object_speeds(env: "LiberoEnv") -> dict[str, float]:
    """Each free object's linear speed (m/s)."""
    model, qvel = env._sim.model, env._sim.data.qvel
    speeds = {}
    for name in free_objects(env):
        dof = int(model.jnt_dofadr[model.joint_name2id(f"{name}_joint0")])
        speeds[name] = float(np.linalg.norm(qvel[dof : dof + 3]))
    return speeds


def target_object(env: "LiberoEnv") -> str:
    """The task's first object of interest with a free joint (the one to manipulate)."""
    movable = free_objects(env)
    for name in env._env.env.obj_of_interest:
        if name in movable:
            return name
    raise LookupError(f"task {env.task.name} has no movable object of interest")


def body_geoms(env: "LiberoEnv", body_prefix: str, *, visual: bool | None = None) -> list[int]:
    """Geom ids of the bodies whose name starts with ``body_prefix`` (the object's subtree).

    ``visual`` True keeps only non-colliding geoms (contype = conaffinity = 0), False only
    colliding ones.
    """
    model = env._sim.model
    ids = []
    for g in range(model.ngeom):
        body = model.body_id2name(int(model.geom_bodyid[g])) or ""
        if not body.startswith(body_prefix):
            continue
        colliding = bool(model.geom_contype[g] or model.geom_conaffinity[g])
        if visual is None or visual != colliding:
            ids.append(g)
    return ids


def workspace(env: "LiberoEnv", start: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) x-y bounds an object may be placed in.

    On a table: the table top's extent less a margin. In table-less (floor) scenes such as
    LIBERO-Object: the objects' initial spread widened by a pad, so nothing goes where the
    scene never puts objects.
    """
    model = env._sim.model
    try:
        g = model.geom_name2id("table_collision")
    except ValueError:
        g = -1
    if g >= 0:
        centre = env._sim.data.geom_xpos[g][:2]
        half = model.geom_size[g][:2]
        return centre - half + WORKSPACE_MARGIN, centre + half - WORKSPACE_MARGIN
    xy = np.array([p[:2] for p in start.values()])
    return xy.min(axis=0) - FLOOR_WORKSPACE_PAD, xy.max(axis=0) + FLOOR_WORKSPACE_PAD


def place_object(
    env: "LiberoEnv", name: str, distance: float, angle: float, directions: int = 16
) -> tuple[np.ndarray, float]:
    """Shift ``name`` by ``distance`` in x-y, trying ``directions`` headings from ``angle``.

    A heading is accepted when the new spot is inside the workspace and the moved object
    touches nothing it did not already touch. Returns (the xy shift, the heading used);
    the state is left with the object moved. Raises PlacementImpossible otherwise (the
    object back where it was).
    """
    from envs.libero.perturb.base import PlacementImpossible

    data = env._sim.data
    adr = free_objects(env)[name]
    dof = _free_dof(env, name)
    origin = np.array(data.qpos[adr : adr + 3])
    low, high = workspace(env, object_positions(env))
    own = set(env._sim.model.geom_id2name(g) or f"geom{g}" for g in body_geoms(env, name))
    env._sim.forward()
    before = {p for p in contact_pairs(env) if p[0] in own or p[1] in own}
    for i in range(directions):
        heading = angle + 2 * np.pi * i / directions
        shift = distance * np.array([np.cos(heading), np.sin(heading)])
        spot = origin[:2] + shift
        if np.any(spot < low) or np.any(spot > high):
            continue
        data.qpos[adr : adr + 2] = spot
        data.qvel[dof : dof + 6] = 0.0
        env._sim.forward()
        touching = {p for p in contact_pairs(env) if p[0] in own or p[1] in own}
        if touching <= before:
            return shift, float(heading)
    data.qpos[adr : adr + 3] = origin
    env._sim.forward()
    raise PlacementImpossible(
        f"no collision-free spot {distance:.3f} m from {name} inside the workspace "
        f"x {low[0]:.2f}..{high[0]:.2f}, y {low[1]:.2f}..{high[1]:.2f} ({directions} headings tried)"
    )


def _free_dof(env: "LiberoEnv", name: str) -> int:  # noqa: D401
    model = env._sim.model
    return int(model.jnt_dofadr[model.joint_name2id(f"{name}_joint0")])
