"""The fast control step gives robosuite's trajectories bit for bit, on all five suites.

Each case steps one env with robosuite's own ``env.step`` (``fast_physics=False``),
recording the actions, then replays that fixed action sequence with
:class:`FastStepper` from the same init state, and compares after every control step: the flattened MuJoCo state (time,
qpos, qvel, act), the solver warm start and ctrl, the controller's goal and torques, the
gripper's integrated command, the observations the harness reads, and the success flag.
The sequence: a scripted reach to an object, a grasp (the gripper closing in contact) and
a lift, then uniformly random actions with the gripper flipping open and closed.
"""

from __future__ import annotations

import numpy as np
import pytest

from envs.errors import UserInputError

SCRIPTED_STEPS = 36
RANDOM_STEPS = 24
CASES = [("libero_spatial", 0, 3), ("libero_object", 1, 5), ("libero_goal", 2, 7), ("libero_10", 3, 11), ("libero_90", 4, 13)]


def _snapshot(env) -> tuple:
    inner = env._env.env
    data = inner.sim.data
    robot = inner.robots[0]
    controller = robot.controller
    return (
        env.sim_state().tobytes(),  # time, qpos, qvel (LIBERO's flattened state)
        np.array(data.act).tobytes(),
        np.array(data.qacc_warmstart).tobytes(),
        np.array(data.ctrl).tobytes(),
        np.asarray(controller.goal_pos).tobytes(),
        np.asarray(controller.goal_ori).tobytes(),
        np.asarray(controller.torques).tobytes(),
        np.asarray(robot.torques).tobytes(),
        np.asarray(robot.gripper.current_action).tobytes(),
        tuple(np.asarray(v).tobytes() for v in env.robot_state().values()),
        tuple(np.asarray(v).tobytes() for v in env.privileged_state().values()),
        env.success,
    )


def _scripted_action(env, target: np.ndarray, i: int) -> np.ndarray:
    """Reach above ``target``, push down into it, close the gripper, lift."""
    eef = env.robot_state()["robot0_eef_pos"]
    goal = target + np.array([0.0, 0.0, 0.12 if i < 12 else -0.1])
    action = np.zeros(7)
    action[:3] = np.clip((goal - eef) * 12.0, -1.0, 1.0)
    action[6] = -1.0 if i < 22 else 1.0
    if i >= 30:
        action[:3] = [0.0, 0.0, 1.0]
    return action


def _run(env, init_state: int, fast: bool, actions: np.ndarray | None = None, random: np.ndarray | None = None):
    """Step robosuite (recording the closed-loop scripted actions) or replay ``actions``."""
    env.fast_physics = fast
    env.reset_to(init_state, layout_seed=1)
    inner = env._env.env
    target = next(v for k, v in env.privileged_state().items() if k.endswith("_pos"))
    # At the reset, the robot's last torques still hold the previous episode's (robosuite
    # does not clear them; the first step overwrites them): compare the simulator only.
    states, taken, gripper_contact = [_snapshot(env)[:4]], [], False
    for i in range(SCRIPTED_STEPS + RANDOM_STEPS):
        if actions is not None:
            action = actions[i]
        elif i < SCRIPTED_STEPS:
            action = _scripted_action(env, target, i)
        else:
            action = random[i - SCRIPTED_STEPS]
        env.step_physics(action)
        taken.append(action)
        states.append(_snapshot(env))
        gripper_contact |= bool(inner.check_contact(inner.robots[0].gripper))
    return states, np.array(taken), gripper_contact


@pytest.mark.sim
@pytest.mark.parametrize(("suite", "task", "init_state"), CASES)
def test_fast_step_replays_robosuite_bit_for_bit(assets_installed, suite, task, init_state):
    from envs.libero.env import LiberoEnv

    env = LiberoEnv(suite, task, camera_size=32)
    try:
        rng = np.random.default_rng(task)
        random = rng.uniform(-1.0, 1.0, size=(RANDOM_STEPS, 7))
        random[:, 6] = np.where(np.arange(RANDOM_STEPS) % 6 < 3, -1.0, 1.0)
        slow, actions, touched = _run(env, init_state, fast=False, random=random)
        fast, _, _ = _run(env, init_state, fast=True, actions=actions)
        assert env.fast_physics
        assert touched, "the scripted sequence never brought the gripper into contact"
        assert len(slow) == len(fast) == SCRIPTED_STEPS + RANDOM_STEPS + 1
        mismatch = [i for i, (a, b) in enumerate(zip(slow, fast)) if a != b]
        assert not mismatch, f"first differing control step: {mismatch[0]}"
    finally:
        env.close()


def test_guard_names_the_changed_source(monkeypatch):
    from envs.libero import fast_step
    from envs.libero.runtime import import_libero

    import_libero()
    assert fast_step.unavailable_reason() is None
    monkeypatch.setitem(fast_step.PINNED_SOURCES, "Controller.update", "0" * 64)
    assert "Controller.update" in fast_step.unavailable_reason()
    with pytest.raises(RuntimeError, match="Controller.update"):
        fast_step.FastStepper(object(), ())


def test_guard_names_the_robosuite_version(monkeypatch):
    import robosuite

    from envs.libero import fast_step

    monkeypatch.setattr(robosuite, "__version__", "1.5.1")
    assert "1.5.1" in fast_step.unavailable_reason()


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_switch_must_be_a_bool(value):
    from envs.libero.env import LiberoEnv

    env = LiberoEnv.__new__(LiberoEnv)
    env._stepper = None
    with pytest.raises(UserInputError, match="fast_physics"):
        env.fast_physics = value
