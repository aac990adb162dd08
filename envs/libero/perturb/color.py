"""``color`` and ``texture``: the target object's and the table's appearance.

``color`` sets the rgba of the target object's visual geoms and of the table's (or, in
table-less scenes, the floor's) to a drawn colour and removes their textures
(``geom_rgba``, ``mat_rgba``, ``mat_texid = -1``, as LIBERO-PRO does). The level sets how
far the colour is from grey: saturation 0.2 * level. ``texture`` instead gives those
materials another texture already in the model (drawn), tinted more strongly as the
level rises. Render-only edits: physics is unaffected.
"""

from __future__ import annotations

import colorsys
from typing import Any

import numpy as np

from envs.libero.perturb.base import ModelPatch, Perturbation
from envs.libero.perturb.scene import body_geoms, target_object

SURFACE_PREFIXES = ("main_table", "table", "floor")


def _surface_geoms(env) -> list[int]:
    model = env._sim.model
    ids = []
    for g in range(model.ngeom):
        name = model.geom_id2name(g) or ""
        body = model.body_id2name(int(model.geom_bodyid[g])) or ""
        if name.startswith(("table_visual", "floor")) or (body.startswith("main_table") and model.geom_group[g] == 1):
            ids.append(g)
    return ids


def _targets(env) -> dict[str, list[int]]:
    try:
        target = target_object(env)
    except LookupError:  # e.g. "open the drawer": the object of interest is a fixture
        target = env._env.env.obj_of_interest[0]
    return {"object": body_geoms(env, target, visual=True), "surface": _surface_geoms(env)}


def _rgba(hue: float, level: int, value: float) -> list[float]:
    r, g, b = colorsys.hsv_to_rgb(hue, 0.2 * level, value)
    return [r, g, b, 1.0]


class Recolor(Perturbation):
    name = "color"

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        return {part: {"hue": float(rng.uniform()), "value": float(rng.uniform(0.5, 1.0))} for part in ("object", "surface")}

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        model = env._sim.model
        applied = {}
        for part, geoms in _targets(env).items():
            rgba = _rgba(params[part]["hue"], self.level, params[part]["value"])
            for g in geoms:
                patch.set(model.geom_rgba, g, rgba)
                mat = int(model.geom_matid[g])
                if mat >= 0:
                    patch.set(model.mat_rgba, mat, rgba)
                    patch.set(model.mat_texid, mat, -1)
            applied[part] = {"geoms": len(geoms), "rgba": [round(v, 4) for v in rgba]}
        return applied


class Retexture(Perturbation):
    name = "texture"

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        return {part: {"pick": float(rng.uniform()), "hue": float(rng.uniform())} for part in ("object", "surface")}

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        model = env._sim.model
        textures = [t for t in range(model.ntex) if model.tex_type[t] == 0]  # 2-D textures
        applied = {}
        for part, geoms in _targets(env).items():
            mats = sorted({int(model.geom_matid[g]) for g in geoms if model.geom_matid[g] >= 0})
            own = {int(t) for m in mats for t in np.atleast_1d(model.mat_texid[m]) if t >= 0}
            choices = [t for t in textures if t not in own] or textures
            tex = choices[int(params[part]["pick"] * len(choices)) % len(choices)] if choices else -1
            tint = _rgba(params[part]["hue"], self.level, 1.0)
            for m in mats:
                texid = np.array(model.mat_texid[m], copy=True)
                texid[...] = -1
                texid.flat[1 if texid.size > 1 else 0] = tex  # mjTEXROLE_RGB
                patch.set(model.mat_texid, m, texid)
                patch.set(model.mat_rgba, m, tint)
            applied[part] = {"materials": len(mats), "texture_id": int(tex)}
        return applied
