"""``runtime_move``: the target object jumps once during the episode (LIBERO-PRO's runtime move).

Once the gripper's end effector comes within ``trigger_m`` (0.09 m) of the target, or at
policy step ``fallback_step`` (160) if it never does, the target's free joint is shifted
by 0.03 * level m (3-15 cm) in x-y, using the same collision-free heading search as
``position`` (a move that fits nowhere is skipped and recorded as such). It happens at
most once per episode; the step and the shift are recorded.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from pydantic import Field

from envs.libero.perturb.base import Perturbation, PerturbationSettings, PlacementImpossible, number
from envs.libero.perturb.scene import object_positions, place_object, target_object

STEP_M = 0.03


class RuntimeMoveSettings(PerturbationSettings):
    trigger_m: Annotated[float, number(nullable=False)] = 0.09  # the jump comes when the gripper is this near
    fallback_step: Annotated[int, Field(strict=True, ge=1)] = 160  # ... or at this policy step

class RuntimeMove(Perturbation):
    name = "runtime_move"
    physical = True

    Settings = RuntimeMoveSettings

    def __init__(self, level: int | None = None, trigger_m: float = 0.09, fallback_step: int = 160) -> None:
        super().__init__(level)
        self.trigger_m = float(trigger_m)
        self.fallback_step = int(fallback_step)

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        return {"distance": STEP_M * self.level, "heading": float(rng.uniform(0, 2 * np.pi))}

    def after_step(self, env, params: dict[str, Any], state: dict[str, Any], step: int) -> bool:
        if state:
            return False  # once per episode
        name = target_object(env)
        gap = float(np.linalg.norm(env._raw_obs["robot0_eef_pos"] - object_positions(env)[name]))
        if gap > self.trigger_m and step < self.fallback_step:
            return False
        state.update({"step": step, "trigger": "near" if gap <= self.trigger_m else "fallback", "object": name})
        try:
            shift, heading = place_object(env, name, params["distance"], params["heading"])
        except PlacementImpossible as exc:
            state["skipped"] = str(exc)
            return False
        state.update({"shift": [round(float(v), 6) for v in shift], "heading": round(heading, 6)})
        return True
