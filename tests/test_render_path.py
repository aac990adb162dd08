"""Frames from the env's render path are byte for byte robosuite's ``MjSim.render``,
whatever number of render threads a worker gives llvmpipe.

The env renders both cameras with one scene rebuild (``envs.libero.render``); robosuite
rebuilds the scene per camera. Compared (robosuite rendering the same sampled scene,
``envs.libero.sampled_scene``) at several states (after reset, after arm motion
and a gripper close), for each camera alone and both together, in either order.
"""

from __future__ import annotations

import numpy as np
import pytest


@pytest.mark.sim
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
            with env.frame_scene():  # the scene the frames show (tests/test_sampled_scene.py)
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


_FRAME_SCRIPT = """
import hashlib, numpy as np
from envs.libero.env import LiberoEnv
env = LiberoEnv("libero_object", 2, camera_size=64)
env.reset_to(1)
for action in np.random.default_rng(0).uniform(-1, 1, (4, 7)):
    env.step_physics(action)
frames = env.render_images()
print(hashlib.sha256(frames["base_0_rgb"].tobytes() + frames["left_wrist_0_rgb"].tobytes()).hexdigest())
env.close()
"""


@pytest.mark.sim
def test_frames_do_not_depend_on_render_threads(assets_installed):
    """Workers cap llvmpipe's threads (LP_NUM_THREADS); the pixels must not change."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    digests = {}
    for threads in ("1", "2"):
        env = {**os.environ, "PYTHONPATH": str(root), "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"), "LP_NUM_THREADS": threads}
        result = subprocess.run([sys.executable, "-c", _FRAME_SCRIPT], env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 0, result.stderr[-2000:]
        digests[threads] = result.stdout.strip().splitlines()[-1]
    assert len(digests["1"]) == 64
    assert digests["1"] == digests["2"]


def test_render_threads_split_the_cores_between_workers(monkeypatch):
    import os

    from envs.libero import runtime

    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: set(range(8)))
    assert runtime.render_threads_per_worker(1) is None
    assert runtime.render_threads_per_worker(2) == 4
    assert runtime.render_threads_per_worker(8) == 1
    assert runtime.render_threads_per_worker(16) == 1
    monkeypatch.delenv("LP_NUM_THREADS", raising=False)
    runtime.limit_render_threads(3)
    assert os.environ["LP_NUM_THREADS"] == "3"
    runtime.limit_render_threads(5)  # a value already set (by the user) wins
    assert os.environ["LP_NUM_THREADS"] == "3"
