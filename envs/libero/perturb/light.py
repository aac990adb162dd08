"""``light``: the scene's lights made dark, bright, glaring or coming from behind.

Edits ``light_ambient`` / ``light_diffuse`` / ``light_specular`` / ``light_dir`` of every
light and the headlight in the compiled model (render-only: physics is unaffected). Each
episode draws one mode; the level sets how strong it is:

- ``dark``: every intensity times 1 - 0.17 * level (0.83 .. 0.15);
- ``bright``: diffuse and ambient times 1 + 0.3 * level (1.3 .. 2.5);
- ``glare``: specular raised to 0.3 + 0.14 * level, diffuse times 1 + 0.15 * level, and
  the lights turned toward the camera's side by 10 * level degrees;
- ``backlight``: the lights point from behind the scene toward the camera (+x), their
  elevation lowered from 60 to 20 degrees as the level rises, front (head) light dimmed.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from envs.libero.perturb.base import ModelPatch, Perturbation, PerturbationSettings, subset_of

MODES = ("dark", "bright", "glare", "backlight")


class LightSettings(PerturbationSettings):
    modes: Annotated[tuple[str, ...] | None, subset_of(MODES)] = None  # null = all of them


class Lighting(Perturbation):
    name = "light"
    Settings = LightSettings

    def __init__(self, level: int | None = None, modes: list[str] | None = None) -> None:
        super().__init__(level)
        self.modes = tuple(modes) if modes else MODES

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        return {"mode": self.modes[int(rng.integers(len(self.modes)))], "azimuth": float(rng.uniform(-30.0, 30.0))}

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        model = env._sim.model
        level, mode = self.level, params["mode"]
        head = model.vis.headlight
        n = model.nlight
        ambient, diffuse, specular = (np.array(a) for a in (model.light_ambient, model.light_diffuse, model.light_specular))
        direction = np.array(model.light_dir)
        head_ambient, head_diffuse = np.array(head.ambient), np.array(head.diffuse)
        az = np.radians(params["azimuth"])
        if mode == "dark":
            f = 1.0 - 0.17 * level
            ambient, diffuse, specular, head_ambient, head_diffuse = (a * f for a in (ambient, diffuse, specular, head_ambient, head_diffuse))
        elif mode == "bright":
            f = 1.0 + 0.3 * level
            ambient, diffuse, head_ambient, head_diffuse = (np.clip(a * f, 0, 1) for a in (ambient, diffuse, head_ambient, head_diffuse))
        elif mode == "glare":
            specular = np.full_like(specular, 0.3 + 0.14 * level)
            diffuse = np.clip(diffuse * (1.0 + 0.15 * level), 0, 1)
            tilt = np.radians(90.0 - 10.0 * level)  # from straight down toward the camera (+x)
            direction = np.tile([np.cos(tilt) * np.cos(az), np.cos(tilt) * np.sin(az), -np.sin(tilt)], (n, 1))
        else:  # backlight: from behind the scene (-x side) toward the camera
            elev = np.radians(60.0 - 10.0 * level)
            direction = np.tile([np.cos(elev) * np.cos(az), np.cos(elev) * np.sin(az), -np.sin(elev)], (n, 1))
            head_ambient, head_diffuse = head_ambient * 0.3, head_diffuse * 0.3
        for i in range(n):
            patch.set(model.light_ambient, i, ambient[i])
            patch.set(model.light_diffuse, i, diffuse[i])
            patch.set(model.light_specular, i, specular[i])
            patch.set(model.light_dir, i, direction[i] / np.linalg.norm(direction[i]))
        patch.set(head.ambient, slice(None), head_ambient)
        patch.set(head.diffuse, slice(None), head_diffuse)
        return {"diffuse": [round(float(v), 4) for v in diffuse[0]] if n else [], "dir": [round(float(v), 4) for v in direction[0]] if n else []}
