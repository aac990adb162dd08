"""``light``: the scene's lights made dark, bright, glaring or coming from behind.

Edits ``light_ambient`` / ``light_diffuse`` / ``light_specular`` / ``light_dir`` of every
light and the headlight in the compiled model (render-only: physics is unaffected). Each
episode draws one mode; the level sets how strong it is:

- ``dark``: every intensity times 1 - 0.17 * level (0.83 .. 0.15);
- ``bright``: diffuse and ambient times 1 + 0.3 * level (1.3 .. 2.5);
- ``glare``: specular raised to 0.3 + 0.14 * level, diffuse times 1 + 0.15 * level, and
  every light tipped 5 * level degrees from its own direction toward a drawn heading
  (within +-30 degrees of the camera's side);
- ``backlight``: every light tipped 8 * level degrees from its own direction toward the
  camera's side (so it shines from behind the scene), the front (head) light dimmed to
  1 - 0.14 * level (0.86 .. 0.3) of its intensity.

Directions are tipped from each light's own direction rather than set outright: LIBERO's
lights are spotlights aimed at the table, and a direction set far from that aim moves
the lit spot off the scene, which darkens the image at every level alike (the level then
no longer ordered what the policy sees; docs/robustness.md has the measured distances).
The drawn parameter is named ``heading`` (it was ``azimuth`` when directions were set
outright), so episodes drawn under the old meaning keep keys of their own and are never
reused by a resumed run.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from envs.libero.perturb.base import ModelPatch, Perturbation, PerturbationSettings, subset_of

MODES = ("dark", "bright", "glare", "backlight")


def tip(directions: np.ndarray, heading: float, degrees: float) -> np.ndarray:
    """Each direction turned by ``degrees`` toward the horizontal ``heading`` (radians
    from +x, the camera's side), about the horizontal axis perpendicular to that heading."""
    from scipy.spatial.transform import Rotation

    directions = np.atleast_2d(np.asarray(directions, dtype=np.float64))
    if not directions.size:  # a scene without lights (only the headlight)
        return directions
    toward = np.array([np.cos(heading), np.sin(heading), 0.0])
    axis = np.cross(toward, [0.0, 0.0, 1.0])  # turns straight down (-z) toward ``toward``
    return Rotation.from_rotvec(np.radians(degrees) * axis).apply(directions)


class LightSettings(PerturbationSettings):
    modes: Annotated[tuple[str, ...] | None, subset_of(MODES)] = None  # null = all of them


class Lighting(Perturbation):
    name = "light"
    Settings = LightSettings

    def __init__(self, level: int | None = None, modes: list[str] | None = None) -> None:
        super().__init__(level)
        self.modes = tuple(modes) if modes else MODES

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        return {"mode": self.modes[int(rng.integers(len(self.modes)))], "heading": float(rng.uniform(-30.0, 30.0))}

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        model = env._sim.model
        level, mode = self.level, params["mode"]
        head = model.vis.headlight
        n = model.nlight
        ambient, diffuse, specular = (np.array(a) for a in (model.light_ambient, model.light_diffuse, model.light_specular))
        direction = np.array(model.light_dir)
        head_ambient, head_diffuse = np.array(head.ambient), np.array(head.diffuse)
        az = np.radians(params["heading"])
        if mode == "dark":
            f = 1.0 - 0.17 * level
            ambient, diffuse, specular, head_ambient, head_diffuse = (a * f for a in (ambient, diffuse, specular, head_ambient, head_diffuse))
        elif mode == "bright":
            f = 1.0 + 0.3 * level
            ambient, diffuse, head_ambient, head_diffuse = (np.clip(a * f, 0, 1) for a in (ambient, diffuse, head_ambient, head_diffuse))
        elif mode == "glare":
            specular = np.full_like(specular, 0.3 + 0.14 * level)
            diffuse = np.clip(diffuse * (1.0 + 0.15 * level), 0, 1)
            direction = tip(direction, az, 5.0 * level)
        else:  # backlight: from behind the scene (-x side) toward the camera (+x)
            direction = tip(direction, az, 8.0 * level)
            f = 1.0 - 0.14 * level
            head_ambient, head_diffuse = head_ambient * f, head_diffuse * f
        for i in range(n):
            patch.set(model.light_ambient, i, ambient[i])
            patch.set(model.light_diffuse, i, diffuse[i])
            patch.set(model.light_specular, i, specular[i])
            patch.set(model.light_dir, i, direction[i] / np.linalg.norm(direction[i]))
        patch.set(head.ambient, slice(None), head_ambient)
        patch.set(head.diffuse, slice(None), head_diffuse)
        return {"diffuse": [round(float(v), 4) for v in diffuse[0]] if n else [], "dir": [round(float(v), 4) for v in direction[0]] if n else []}
