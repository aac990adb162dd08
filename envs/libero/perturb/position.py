"""``position``: the target object starts shifted by 0.04 * level m (4-20 cm) in x-y.

The heading is drawn; a collision-free search then tries 16 headings from it and takes
the first where the object is inside the workspace (the table top less 5 cm, or in
table-less scenes the objects' initial spread plus 10 cm) and touches nothing it did not
touch before. If none fits, the episode's candidate is invalid and the harness
resamples. The distance is exact, so a test can check it; ``distance`` (m) overrides it.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from envs.libero.perturb.base import ModelPatch, Perturbation, PerturbationSettings, number
from envs.libero.perturb.scene import place_object, target_object

STEP_M = 0.04


class PositionSettings(PerturbationSettings):
    distance: Annotated[float | None, number(nullable=True)] = None  # m; null = 0.03 * level

class ShiftObject(Perturbation):
    name = "position"
    physical = True

    Settings = PositionSettings

    def __init__(self, level: int | None = None, distance: float | None = None) -> None:
        super().__init__(level)
        self.distance = distance

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        distance = self.distance if self.distance is not None else STEP_M * self.level
        return {"distance": float(distance), "heading": float(rng.uniform(0, 2 * np.pi))}

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        name = target_object(env)
        shift, heading = place_object(env, name, params["distance"], params["heading"])
        return {"object": name, "shift": [round(float(v), 6) for v in shift], "heading": round(heading, 6)}
