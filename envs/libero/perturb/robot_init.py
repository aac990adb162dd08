"""``robot_init``: the arm starts from a joint vector offset by an L2 norm of 0.1 * level rad.

LIBERO-Plus's start poses lie 0.10-0.50 rad (L2) from LIBERO's default, at most 0.47 rad
in any one joint; here level L gives exactly 0.1 L rad in a drawn direction, capped at
0.47 rad per joint and kept inside the joint limits. LIBERO's reset restores the whole
saved state, the arm included, so the offset is applied **after** the init state is set;
the controller's null-space target is moved to the new pose too (otherwise OSC's
null-space term would slowly pull the arm back toward the default), and the harness
then settles the scene as usual.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np

from envs.libero.perturb.base import ModelPatch, Perturbation, PerturbationSettings, PlacementImpossible, number

MAX_JOINT_OFFSET = 0.47


class RobotInitSettings(PerturbationSettings):
    norm: Annotated[float | None, number(nullable=True)] = None  # rad; null = 0.1 * level

class RobotInit(Perturbation):
    name = "robot_init"
    physical = True

    Settings = RobotInitSettings

    def __init__(self, level: int | None = None, norm: float | None = None) -> None:
        super().__init__(level)
        self.norm = norm  # overrides 0.1 * level (rad), e.g. for a forced impossible start

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        norm = self.norm if self.norm is not None else 0.1 * self.level
        for _ in range(1000):
            direction = rng.standard_normal(7)
            offset = direction / np.linalg.norm(direction) * norm
            if np.abs(offset).max() <= MAX_JOINT_OFFSET:
                break
        return {"offset": [float(v) for v in offset], "norm": float(norm)}

    def apply(self, env, params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        model, data = env._sim.model, env._sim.data
        robot = env._robot
        pos_idx, vel_idx = robot._ref_joint_pos_indexes, robot._ref_joint_vel_indexes
        start = np.array(data.qpos[pos_idx])
        target = start + np.asarray(params["offset"])
        limits = np.array([model.jnt_range[model.joint_name2id(n)] for n in robot.robot_joints])
        if np.any(target < limits[:, 0]) or np.any(target > limits[:, 1]):
            raise PlacementImpossible("the offset start pose is outside the joint limits")
        data.qpos[pos_idx] = target
        data.qvel[vel_idx] = 0.0
        patch.save_attr(robot.controller, "initial_joint")
        robot.controller.update_initial_joints(target)
        return {"start_qpos": [round(float(v), 6) for v in target]}
