"""``scale``: the target object made smaller or larger, by editing the compiled model.

How, honestly: LIBERO objects collide through box primitives and are drawn with one mesh
per object instance (``<object>_..._vis``, not shared with other instances). So the edit
is exact for geometry without recompiling: the collision boxes' sizes and positions in
the body frame, the visual mesh's vertices (``mesh_vert``, re-uploaded to the GPU) and
the geoms' bounding radii / boxes are multiplied by the factor, and the object is lifted
or lowered so that its lowest collision point stays where it was. **Limits:** mass and
inertia are left as they were (a recompile with the mesh's ``scale`` attribute would
recompute them from the assets' settings); textures are stretched with the mesh; an
object drawn with a mesh shared by other geoms would be refused (it would scale them
too). Level L: factor 1 + 0.1 L or 1 - 0.1 L (the direction drawn), i.e. x0.5..x1.5.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from envs.libero.perturb.base import ModelPatch, Perturbation, PerturbationSettings, PlacementImpossible, number
from envs.libero.perturb.scene import body_geoms, free_objects, target_object

MESH = 7  # mujoco.mjtGeom.mjGEOM_MESH


def _lowest_point(env, geoms: list[int]) -> float:
    data, model = env._sim.data, env._sim.model
    low = np.inf
    for g in geoms:
        half = model.geom_size[g]
        corners = np.array([[sx, sy, sz] for sx in (-1, 1) for sy in (-1, 1) for sz in (-1, 1)]) * half
        world = data.geom_xpos[g] + corners @ data.geom_xmat[g].reshape(3, 3).T
        low = min(low, float(world[:, 2].min()))
    return low


def _upload_mesh(env, mesh: int) -> None:
    import mujoco

    context = env._sim._render_context_offscreen
    if context is not None:
        context.gl_ctx.make_current()
        mujoco.mjr_uploadMesh(env._sim.model._model, context.con, mesh)


class ScaleSettings(PerturbationSettings):
    factor: Annotated[float | None, number(nullable=True)] = None  # null = 1 +- 0.1 * level, drawn

class ScaleObject(Perturbation):
    name = "scale"
    physical = True

    Settings = ScaleSettings

    def __init__(self, level: int | None = None, factor: float | None = None) -> None:
        super().__init__(level)
        self.factor = factor  # overrides the drawn factor

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        if self.factor is not None:
            return {"factor": float(self.factor)}
        return {"factor": float(1.0 + float(rng.choice([-1.0, 1.0])) * 0.1 * self.level)}

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        model, data = env._sim.model, env._sim.data
        f = float(params["factor"])
        name = target_object(env)
        collision = body_geoms(env, name, visual=False)
        visual = body_geoms(env, name, visual=True)
        env._sim.forward()
        floor_before = _lowest_point(env, [g for g in collision if model.geom_type[g] == 6])
        meshes = sorted({int(model.geom_dataid[g]) for g in visual if model.geom_type[g] == MESH})
        for mesh in meshes:
            users = [g for g in range(model.ngeom) if model.geom_type[g] == MESH and model.geom_dataid[g] == mesh]
            if set(users) - set(visual):
                raise PlacementImpossible(f"{name}'s mesh {mesh} is shared with other geoms; it cannot be scaled alone")
            start, count = int(model.mesh_vertadr[mesh]), int(model.mesh_vertnum[mesh])
            rows = slice(start, start + count)
            patch.set(model.mesh_vert, rows, model.mesh_vert[rows] * f)
            patch.after_undo(lambda mesh=mesh: _upload_mesh(env, mesh))
            _upload_mesh(env, mesh)
        for g in collision + visual:
            if model.geom_type[g] != MESH:
                patch.set(model.geom_size, g, model.geom_size[g] * f)
            patch.set(model.geom_pos, g, model.geom_pos[g] * f)
            patch.set(model.geom_rbound, g, model.geom_rbound[g] * f)
            patch.set(model.geom_aabb, g, model.geom_aabb[g] * f)
        env._sim.forward()
        lift = floor_before - _lowest_point(env, [g for g in collision if model.geom_type[g] == 6])
        adr = free_objects(env)[name]
        data.qpos[adr + 2] += lift
        return {"object": name, "factor": f, "meshes": len(meshes), "collision_geoms": len(collision), "lift": round(lift, 6)}
