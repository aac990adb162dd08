"""The env's frames are robosuite's own camera observations, on both physics paths.

robosuite samples an observation inside the control step (envs.libero.sampled_scene); the
env renders on demand with the scene of that substep swapped in. Checked here on a task of
three suites (table and floor scenes, a wrist camera moving with the arm): for the same
actions, ``render_images`` after every step equals, byte for byte, the images robosuite's
step returned with its camera observables on, with robosuite's step and with the fast one;
and rendering leaves the simulator's data exactly as it was.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.libero.sampled_scene import SCENE_FIELDS

pytestmark = [pytest.mark.sim, pytest.mark.usefixtures("assets_installed")]

SIZE = 64
CAMERAS = {"base_0_rgb": "agentview_image", "left_wrist_0_rgb": "robot0_eye_in_hand_image"}


def _actions(steps: int) -> np.ndarray:
    rng = np.random.default_rng(3)
    moves = rng.uniform(-0.8, 0.8, (steps, 6))
    gripper = np.where(np.arange(steps) % 6 < 3, -1.0, 1.0)[:, None]
    return np.concatenate([moves, gripper], axis=1)


def _data_bytes(env) -> bytes:
    data = env._sim.data._data
    return b"".join(np.asarray(getattr(data, name)).tobytes() for name in (*SCENE_FIELDS, "qvel", "qacc_warmstart"))


@pytest.mark.parametrize("suite", ["libero_spatial", "libero_object", "libero_10"])
def test_frames_equal_robosuites_camera_observations(suite) -> None:
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, 0, camera_size=SIZE, fast_physics=False)
    try:
        inner = env._env.env
        for name in CAMERAS.values():
            inner.modify_observable(name, "enabled", True)
        actions = _actions(12)
        env.reset_to(0, layout_seed=7)
        theirs, ours_slow = [], []
        for action in actions:
            env.step_physics(action)
            theirs.append({cam: np.array(env._raw_obs[name]) for cam, name in CAMERAS.items()})
            before = _data_bytes(env)
            ours_slow.append(env.render_images(tuple(CAMERAS)))
            assert _data_bytes(env) == before, "rendering changed the simulator's data"
        for name in CAMERAS.values():
            inner.modify_observable(name, "enabled", False)
        env.fast_physics = True
        env.reset_to(0, layout_seed=7)
        ours_fast = []
        for action in actions:
            env.step_physics(action)
            ours_fast.append(env.render_images(tuple(CAMERAS)))
            ours_fast.append(env.render_images(tuple(CAMERAS)))  # a second render is the same
    finally:
        env.close()
    moved = 0
    for step, reference in enumerate(theirs):
        for cam in CAMERAS:
            np.testing.assert_array_equal(ours_slow[step][cam], reference[cam], err_msg=f"slow step {step} {cam}")
            np.testing.assert_array_equal(ours_fast[2 * step][cam], reference[cam], err_msg=f"fast step {step} {cam}")
            np.testing.assert_array_equal(ours_fast[2 * step + 1][cam], reference[cam], err_msg=f"fast step {step} {cam}")
        moved += int(step > 0 and not np.array_equal(reference["base_0_rgb"], theirs[step - 1]["base_0_rgb"]))
    assert moved >= len(theirs) - 2, "the arm hardly moved: the check would not see a substep's difference"


def test_after_a_reset_frames_show_the_state_as_set() -> None:
    """No step has sampled yet: the frames are the live render, as set_init_state's observation."""
    from envs.libero.env import LiberoEnv

    env = LiberoEnv("libero_goal", 0, camera_size=SIZE)
    try:
        env.reset_to(0, layout_seed=7)
        env.step_physics(_actions(1)[0])
        env.reset_to(1, layout_seed=7)
        live = env._renderer.render(["agentview"])["agentview"]
        np.testing.assert_array_equal(env.render_images(("base_0_rgb",))["base_0_rgb"], live)
        env.step_physics(_actions(1)[0])
        stepped = env.render_images(("base_0_rgb",))["base_0_rgb"]
        assert not np.array_equal(stepped, env._renderer.render(["agentview"])["agentview"]), \
            "after a step the frame is the sampled substep's, not the step's end"
    finally:
        env.close()
