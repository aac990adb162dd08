"""The LIBERO Gymnasium env, on the real simulator (small images, short horizons)."""

from __future__ import annotations

import subprocess
import sys

import gymnasium
import numpy as np
import pytest

import envs  # noqa: F401
from envs.errors import UserInputError
from envs.libero.catalog import load_init_states
from envs.libero.env import CAMERAS, LiberoEnv

pytestmark = pytest.mark.sim
SIZE = 48


@pytest.fixture(scope="module")
def goal_env(assets_installed):
    env = gymnasium.make("LIBERO/libero_goal-3-v0", camera_size=SIZE)
    yield env
    env.close()


def random_actions(n: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).uniform(-1, 1, size=(n, 7))


def test_make_gives_three_camera_observation(goal_env):
    obs, info = goal_env.reset(options={"init_state": 1})
    assert set(obs["images"]) == set(CAMERAS)
    for cam in CAMERAS:
        assert obs["images"][cam].shape == (SIZE, SIZE, 3) and obs["images"][cam].dtype == np.uint8
    assert obs["images"]["base_0_rgb"].std() > 0 and obs["images"]["left_wrist_0_rgb"].std() > 0
    assert not obs["images"]["right_wrist_0_rgb"].any()
    assert {k: bool(v) for k, v in obs["image_mask"].items()} == {
        "base_0_rgb": True, "left_wrist_0_rgb": True, "right_wrist_0_rgb": False}
    assert obs["state"].shape == (8,) and obs["state"].dtype == np.float32
    assert obs["instruction"] == "open the top drawer and put the bowl inside"
    assert info["init_state"] == 1 and info["task_index"] == 3
    assert goal_env.observation_space.contains(obs)


def test_check_env_passes(goal_env):
    """check_env passes; its only warnings are the two about the state's infinite bounds
    (axis-angle and gripper), which the env's docstring explains: they have no bound that
    always holds."""
    import warnings

    from gymnasium.utils.env_checker import check_env

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        check_env(goal_env.unwrapped, skip_render_check=False)
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2, messages
    assert any("minimum value is -infinity" in m for m in messages) and any("maximum value is infinity" in m for m in messages)
    state = goal_env.observation_space["state"]
    assert np.isinf(state.low[3:]).all() and np.isinf(state.high[3:]).all() and np.isfinite(state.low[:3]).all()


def test_state_box_bounds_the_position_by_the_arms_reach(goal_env):
    """The position's bound holds for any joint angles (2000 random configurations of the
    arm, by MuJoCo's forward kinematics on a scratch copy) and along a random-action
    episode; the other five entries stay unbounded (see env.py)."""
    import mujoco

    from envs.libero.state_bounds import reach_radius

    env = goal_env.unwrapped
    space = env.observation_space["state"]
    assert np.isfinite(space.low[:3]).all() and np.isfinite(space.high[:3]).all()
    assert np.isinf(space.low[3:]).all() and np.isinf(space.high[3:]).all()
    model, site = env._sim.model._model, env._robot.eef_site_id
    mount, radius = reach_radius(model, site)
    assert 0.8 < radius < 2.0  # a Panda's links, roughly 1.2 m end to end
    np.testing.assert_allclose(env._sim.data._data.xpos[mount], env._robot.base_pos, atol=1e-9)
    center = (space.low[:3].astype(np.float64) + space.high[:3]) / 2

    data = mujoco.MjData(model)
    rng = np.random.default_rng(0)
    arm = [model.joint(name).id for name in env._robot.robot_joints]
    farthest = 0.0
    for _ in range(2000):
        for joint in arm:
            data.qpos[model.jnt_qposadr[joint]] = rng.uniform(-np.pi, np.pi)
        mujoco.mj_kinematics(model, data)
        farthest = max(farthest, float(np.linalg.norm(data.site_xpos[site] - data.xpos[mount])))
    assert 0.5 * radius < farthest <= radius

    env.reset_to(0)
    for action in random_actions(60, seed=3):
        env.step_physics(action)
        state = env.proprio_state()
        assert space.contains(state) and np.linalg.norm(state[:3] - center) <= radius + 1e-3


@pytest.mark.parametrize(("suite", "task", "k"), [("libero_spatial", 0, 3), ("libero_object", 5, 7), ("libero_10", 2, 49)])
def test_reset_reproduces_libero_set_init_state(assets_installed, suite, task, k):
    env = LiberoEnv(suite, task, camera_size=SIZE)
    try:
        env.reset_to(k)
        expected = load_init_states(suite, task)[k]
        np.testing.assert_array_equal(env.sim_state(), expected)
        # LIBERO's own path, on the same underlying env: reset + set_init_state.
        env._env.reset()
        env._env.set_init_state(expected)
        np.testing.assert_array_equal(env._env.get_sim_state(), expected)
    finally:
        env.close()


def test_same_actions_same_states_and_images_regardless_of_history(goal_env):
    env = goal_env.unwrapped
    actions = random_actions(15)

    def episode(k: int):
        env.reset_to(k, layout_seed=7)
        for a in actions:
            env.step_physics(a)
        return env.sim_state(), env.render_images()

    first_state, first_images = episode(0)
    episode(1)  # a different episode in between must not leak into the next one
    second_state, second_images = episode(0)
    np.testing.assert_array_equal(first_state, second_state)
    for cam in CAMERAS:
        np.testing.assert_array_equal(first_images[cam], second_images[cam])


def test_fresh_env_agrees_with_reused_env(goal_env, assets_installed):
    env = goal_env.unwrapped
    actions = random_actions(10, seed=3)
    env.reset_to(4, layout_seed=7)
    for a in actions:
        env.step_physics(a)
    reused = env.sim_state()
    reused_images = env.render_images()
    fresh = LiberoEnv("libero_goal", 3, camera_size=SIZE)
    try:
        fresh.reset_to(4, layout_seed=7)
        for a in actions:
            fresh.step_physics(a)
        np.testing.assert_array_equal(fresh.sim_state(), reused)
        # Two envs alive in one process: each must render its own scene (robosuite does
        # not switch GL contexts by itself).
        fresh_images = fresh.render_images()
        again = env.render_images()
        for cam in CAMERAS:
            np.testing.assert_array_equal(fresh_images[cam], reused_images[cam])
            np.testing.assert_array_equal(again[cam], reused_images[cam])
    finally:
        fresh.close()
    np.testing.assert_array_equal(env.render_images()["base_0_rgb"], reused_images["base_0_rgb"])


def test_on_demand_frames_equal_libero_observables(goal_env):
    env = goal_env.unwrapped
    env.reset_to(2)
    for a in random_actions(5, seed=1):
        env.step_physics(a)
    inner = env._env.env
    env._sim._render_context_offscreen.gl_ctx.make_current()  # robosuite's observables do not
    names = ("agentview_image", "robot0_eye_in_hand_image")
    for name in names:
        inner.modify_observable(name, "enabled", True)
    try:
        observed = inner._get_observations(force_update=True)
    finally:
        for name in names:
            inner.modify_observable(name, "enabled", False)
    frames = env.render_images()
    np.testing.assert_array_equal(frames["base_0_rgb"], observed["agentview_image"])
    np.testing.assert_array_equal(frames["left_wrist_0_rgb"], observed["robot0_eye_in_hand_image"])
    np.testing.assert_array_equal(env.render_upright(), observed["agentview_image"][::-1])


def test_privileged_state_lists_object_poses(goal_env):
    env = goal_env.unwrapped
    env.reset_to(0)
    state = env.privileged_state()
    assert {"akita_black_bowl_1_pos", "plate_1_pos", "wine_bottle_1_quat"} <= set(state)
    assert all(k.endswith(("_pos", "_quat")) for k in state)
    assert all(v.shape == ((3,) if k.endswith("_pos") else (4,)) for k, v in state.items())


def test_state_layout_matches_raw_proprioception(goal_env):
    from scipy.spatial.transform import Rotation

    env = goal_env.unwrapped
    env.reset_to(0)
    robot = env.robot_state()
    state = env.proprio_state()
    np.testing.assert_allclose(state[:3], robot["robot0_eef_pos"], rtol=1e-6)
    np.testing.assert_allclose(state[6:], robot["robot0_gripper_qpos"], rtol=1e-6)
    rotvec = Rotation.from_quat(robot["robot0_eef_quat"]).as_rotvec()  # scipy uses x, y, z, w too
    angle = np.linalg.norm(rotvec)
    # Same rotation (an axis-angle is unique up to the 2*pi wrap of the angle).
    np.testing.assert_allclose(Rotation.from_rotvec(state[3:6]).as_matrix(), Rotation.from_rotvec(rotvec).as_matrix(), atol=1e-5)
    assert angle > 0


def test_step_reports_libero_goal_check(goal_env):
    """reward / terminated follow LIBERO's goal check (the scripted-policy test covers a success)."""
    env = goal_env.unwrapped
    env.reset(options={"init_state": 0})
    _, reward, terminated, truncated, info = env.step(np.zeros(7))
    assert bool(env._env.check_success()) is False
    assert (reward, terminated, truncated, info["success"]) == (0.0, False, False, False)


@pytest.mark.parametrize(
    ("options", "needle"),
    [({"init_state": 50}, "init state 50 is not valid; allowed: 0..49"),
     ({"init_state": -1}, "allowed: 0..49"),
     ({"init_sate": 1}, "reset option(s) ['init_sate'] not valid; allowed: init_state")],
)
def test_bad_reset_options_are_clear(goal_env, options, needle):
    with pytest.raises(UserInputError) as info:
        goal_env.reset(options=options)
    assert needle in str(info.value)


def test_bad_action_is_rejected(goal_env):
    goal_env.reset(options={"init_state": 0})
    with pytest.raises(ValueError, match=r"shape \(6,\)"):
        goal_env.unwrapped.step_physics(np.zeros(6))
    with pytest.raises(ValueError, match="non-finite"):
        goal_env.unwrapped.step_physics(np.array([0, 0, np.nan, 0, 0, 0, 0]))


def test_no_egl_noise_at_interpreter_exit(assets_installed):
    code = (
        "import gymnasium, envs\n"
        "env = gymnasium.make('LIBERO/libero_object-0-v0', camera_size=32)\n"
        "env.reset(options={'init_state': 0})\n"
        "print('built')\n"  # exits without env.close()
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "built" in out.stdout
    assert "EGLError" not in out.stderr and "Traceback" not in out.stderr, out.stderr
