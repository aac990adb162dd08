"""Frames from the env's render path are byte for byte robosuite's ``MjSim.render``.

The env renders both cameras with one scene rebuild (``envs.libero.render``); robosuite
rebuilds the scene per camera. Compared at several states (after reset, after arm motion
and a gripper close), for each camera alone and both together, in either order.
"""

from __future__ import annotations

import numpy as np
import pytest

pytestmark = pytest.mark.sim


def test_frames_equal_robosuite_render(assets_installed):
    from envs.libero.env import LiberoEnv

    env = LiberoEnv("libero_goal", 1, camera_size=(48, 64))
    try:
        sim = env._sim
        rng = np.random.default_rng(0)
        env.reset_to(4)
        checked = 0
        for phase in range(3):
            both = env.render_images()
            alone = {cam: env.render_images((cam,))[cam] for cam in ("left_wrist_0_rgb", "base_0_rgb")}
            reference = {
                cam: sim.render(camera_name=name, width=64, height=48)
                for cam, name in (("base_0_rgb", "agentview"), ("left_wrist_0_rgb", "robot0_eye_in_hand"))
            }
            for cam, frame in reference.items():
                assert frame.shape == (48, 64, 3)
                assert both[cam].tobytes() == frame.tobytes(), f"{cam} (both cameras) differs at phase {phase}"
                assert alone[cam].tobytes() == frame.tobytes(), f"{cam} (alone) differs at phase {phase}"
                checked += 1
            assert not np.array_equal(reference["base_0_rgb"], reference["left_wrist_0_rgb"])
            assert env.render_upright().tobytes() == reference["base_0_rgb"][::-1].tobytes()
            assert not both["right_wrist_0_rgb"].any()
            for _ in range(6):
                action = rng.uniform(-1, 1, size=7)
                action[6] = 1.0 if phase else -1.0
                env.step_physics(action)
        assert checked == 6
    finally:
        env.close()
