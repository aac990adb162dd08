"""robosuite 1.4.0's control step without the work it repeats, with bit-identical results.

One 20 Hz control step of robosuite 1.4.0 (``MujocoEnv.step``) runs 25 MuJoCo substeps,
each of them:

1. ``sim.forward()``: a full ``mj_forward`` (position stage with collision detection and
   constraint construction, velocity stage, actuation, constraint solver, sensors);
2. ``_pre_action`` -> ``robot.control`` -> ``controller.update()``, which calls
   ``sim.forward()`` *again* at the same qpos / qvel / ctrl, then reads the end-effector
   pose, its Jacobians, its velocity, the joint-space inertia and the bias forces, and
   computes the torques written to ``ctrl``;
3. ``sim.step()``: ``mj_step``, which runs a third full forward pass at the same qpos /
   qvel (only ``ctrl`` changed) before integrating;
4. ``_update_observables()`` over every observable (31 on a typical LIBERO task).

After the loop come ``_post_action`` (LIBERO's ``_check_success`` via the reward), LIBERO's
second ``_check_success`` and ``_get_observations`` over every observable.

The three forward passes are not interchangeable copies: in MuJoCo 3.3 the constraint
solver warm-starts from ``qacc_warmstart`` and writes its solution back there, so the
second pass's solve starts from the first's result, and the step's solve from the
second's. Skipping a solve would change the trajectory (slightly, but not bit for bit).
What *is* repeated is everything before the solver: passes 2 and 3 recompute the
position and velocity stages (kinematics, inertia, collision detection, constraint
Jacobians: most of a pass) at a qpos / qvel they have already been computed for.

:class:`FastStepper` does the same control step with the repeated work removed:

- pass 1: ``mj_forward``, as robosuite does;
- pass 2 (the controller's): ``mj_forwardSkip(mjSTAGE_VEL)``, MuJoCo's own "positions and
  velocities unchanged" entry point: actuation, smooth acceleration, the constraint
  solve (warm-started like robosuite's) and the acceleration sensors. The controller's
  fields are then filled from that data (:func:`_fill_controller`: the body of
  ``Controller.update`` without its ``sim.forward()``, same arithmetic and same memory
  layouts, since the OSC law's linear algebra rounds differently on another layout).
  Like ``update()``, this happens only when the controller's ``new_update`` flag is set
  (it is not on the first substep after a reset). Then the robot is controlled, which is
  all ``_pre_action`` does for LIBERO's single robot: on the policy step by robosuite's
  own ``robot.control`` (goal, OSC law, torque clipping, gripper, history buffers); on
  the other 24 substeps by :func:`_control_between_goals`, the same method's
  no-new-goal path without the name lookups and limit arrays it rebuilds every call
  (robosuite's OSC law and gripper command still run);
- pass 3 and the integration: ``mj_step``'s sequence with the same skip
  (``mj_checkPos``, ``mj_checkVel``, ``mj_forwardSkip(mjSTAGE_VEL)``, ``mj_checkAcc``,
  ``mj_Euler``); when a check resets a diverged state, the full pass runs instead;
- observables: only those the caller reads are updated, with robosuite's own
  ``Observable.update`` and the same timestep, so their sampling timers (they sample
  after the first substep of a control step) and values are identical; their sensors
  read no other observable's cache entry. Only those are returned;
- ``_post_action`` (reward, done, LIBERO's state trackers) and ``_check_success`` run
  unchanged.

Guards, because the argument above holds for the code it was checked against:
- :func:`unavailable_reason`: robosuite is 1.4.0 and the source of every method the fast
  step reproduces or relies on hashes to what was checked (:data:`PINNED_SOURCES`);
- at construction: one Panda arm with robosuite's OSC_POSE controller and no
  interpolator, the Euler integrator, no control callback, energy and forward/inverse
  comparison disabled; and, on this MuJoCo build, robosuite's three-pass substep and the
  fast one give bit-identical states, warm starts and controller inputs on a few random
  states (:func:`check_substep`).
When a guard fails the env refuses to build with the fast step on and says why
(``LiberoEnv(fast_physics=False)`` / ``fast_physics=false`` turn it off). Whole
trajectories are compared in ``tests/test_fast_step.py`` on tasks of all five suites.
"""

from __future__ import annotations

import copy
import hashlib
import inspect
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

PINNED_ROBOSUITE = "1.4.0"
# sha256 of inspect.getsource() of each method whose behaviour the fast step reproduces
# or relies on, as shipped in robosuite 1.4.0 and hf-libero (checked 2026-12-01).
PINNED_SOURCES: dict[str, str] = {
    "MujocoEnv.step": "ac98fc608a545d1f94132d54efc90fe969ffdc46bc5346d66dacd67ea095208c",
    "MujocoEnv._post_action": "2ff3bf53aead956e59815ce28ece3920af3777f6a2d7e9b56b04b52e542a7123",
    "MujocoEnv._update_observables": "20faacb48a3255e2c91c120bc6f42c56c84735cb287b0f0b87e8eb31b7986417",
    "RobotEnv._pre_action": "ea00772eeb69d6beb2a204fa0f282570f1841fd0c590f37b6fc0da0797a84c0c",
    "SingleArm.control": "34820bee44709801d8c8bf246c91d134b061be926ef3b7be26ed2bac0ce1fafe",
    "Controller.update": "61bc7ed6db461b8a1d60fa3f19662afbf5ae2727d8516c9b1542636602eba582",
    "Controller.run_controller": "cb31d60de4e290d11a39ea7cb2fcdc3e635074da9dc0ea43b6f09ab5d13f0a75",
    "OperationalSpaceController.set_goal": "ee507b85baaf675542e9960bacec9e33a3acca78a6a98ee99a64ceb0c999ecc2",
    "OperationalSpaceController.run_controller": "3d66f12347431b088855c9e7619328928d22433980ae97d00a15174361695df3",
    "Observable.update": "c4bf0658c7e87b7b947d5e70f6fb97a447760f54bedc20cc2c822fe5b24f0e71",
    "BDDLBaseDomain.step": "d63c61a9002801d2b6ae7b5dad450b3b003461ac884597e4b747bc1798f6687a",
    "BDDLBaseDomain._post_action": "c66770c0be3d0bcadabe2129854d85f9abe5934db20d31e45349b6273654ef1f",
    "BDDLBaseDomain._pre_action": "402e79a8355b92eab4a33094a3ca98aae64c065f03fb4d6ec2ad523151bed3ca",
    "Robot.torque_limits": "29c6e9aa3a8b3e76aca65cda985e8a287df7d1aae6c6357764a68c17062f2d1c",
    "Manipulator.grip_action": "7488124ad7ceed4d0dad3471953b7bce46571da6aeeba2baa40dc1d195357c86",
}


def _source_targets() -> dict[str, Any]:
    from libero.libero.envs.bddl_base_domain import BDDLBaseDomain
    from robosuite.controllers.base_controller import Controller
    from robosuite.controllers.osc import OperationalSpaceController
    from robosuite.environments.base import MujocoEnv
    from robosuite.environments.robot_env import RobotEnv
    from robosuite.robots.manipulator import Manipulator
    from robosuite.robots.robot import Robot
    from robosuite.robots.single_arm import SingleArm
    from robosuite.utils.observables import Observable

    return {
        "MujocoEnv.step": MujocoEnv.step,
        "MujocoEnv._post_action": MujocoEnv._post_action,
        "MujocoEnv._update_observables": MujocoEnv._update_observables,
        "RobotEnv._pre_action": RobotEnv._pre_action,
        "SingleArm.control": SingleArm.control,
        "Controller.update": Controller.update,
        "Controller.run_controller": Controller.run_controller,
        "OperationalSpaceController.set_goal": OperationalSpaceController.set_goal,
        "OperationalSpaceController.run_controller": OperationalSpaceController.run_controller,
        "Observable.update": Observable.update,
        "BDDLBaseDomain.step": BDDLBaseDomain.step,
        "BDDLBaseDomain._post_action": BDDLBaseDomain._post_action,
        "BDDLBaseDomain._pre_action": BDDLBaseDomain._pre_action,
        "Robot.torque_limits": Robot.torque_limits.fget,
        "Manipulator.grip_action": Manipulator.grip_action,
    }


def source_hashes() -> dict[str, str]:
    """sha256 of the installed source of every method the fast step depends on."""
    return {
        name: hashlib.sha256(inspect.getsource(fn).encode()).hexdigest()
        for name, fn in _source_targets().items()
    }


def unavailable_reason() -> str | None:
    """Why the fast step cannot be used with the installed robosuite / LIBERO, or None."""
    import robosuite

    if robosuite.__version__ != PINNED_ROBOSUITE:
        return f"it is checked against robosuite {PINNED_ROBOSUITE}; installed: {robosuite.__version__}"
    changed = sorted(name for name, digest in source_hashes().items() if PINNED_SOURCES.get(name) != digest)
    if changed:
        return f"the installed source of {', '.join(changed)} differs from the version it was checked against"
    return None


_STAGE_VEL = 2  # mujoco.mjtStage.mjSTAGE_VEL: positions and velocities are up to date


def _controller_pass(mujoco, model, data) -> None:
    """Pass 2 of robosuite's substep (``controller.update()``'s forward) at an unchanged qpos / qvel."""
    mujoco.mj_forwardSkip(model, data, _STAGE_VEL, 0)


def _physics_substep_tail(mujoco, model, data) -> None:
    """``mj_step`` after a pass at the same qpos / qvel: skip the position and velocity stages."""
    warnings = data.warning
    resets = (warnings[_BADQPOS].number, warnings[_BADQVEL].number)
    mujoco.mj_checkPos(model, data)
    mujoco.mj_checkVel(model, data)
    if (warnings[_BADQPOS].number, warnings[_BADQVEL].number) != resets:
        mujoco.mj_forward(model, data)  # the state was reset: nothing is up to date
    else:
        mujoco.mj_forwardSkip(model, data, _STAGE_VEL, 0)
    mujoco.mj_checkAcc(model, data)
    mujoco.mj_Euler(model, data)


_BADQPOS, _BADQVEL = 1, 2  # mujoco.mjtWarning.mjWARN_BADQPOS / mjWARN_BADQVEL
_READ_FIELDS = ("site_xpos", "site_xmat", "qM", "qfrc_bias", "qvel", "qpos", "sensordata")
_STATE_FIELDS = ("time", "qpos", "qvel", "act", "qacc_warmstart", "ctrl")


def check_substep(model, data, samples: int = 3, seed: int = 0) -> str | None:
    """Run robosuite's substep and the fast one from a few random states; a reason if they differ.

    Works on copies: ``data`` is not modified.
    """
    import mujoco

    rng = np.random.default_rng(seed)
    base = copy.copy(data)
    for sample in range(samples):
        base.ctrl[:] = rng.uniform(-5.0, 5.0, size=model.nu)
        mujoco.mj_step(model, base)  # somewhere new, every derived quantity stale
        slow, fast = copy.copy(base), copy.copy(base)
        mujoco.mj_forward(model, slow)
        mujoco.mj_forward(model, slow)
        mujoco.mj_forward(model, fast)
        _controller_pass(mujoco, model, fast)
        for name in _READ_FIELDS:
            if getattr(slow, name).tobytes() != getattr(fast, name).tobytes():
                return f"on this MuJoCo build the controller would read another {name} (sample {sample})"
        ctrl = rng.uniform(-5.0, 5.0, size=model.nu)
        slow.ctrl[:] = ctrl
        fast.ctrl[:] = ctrl
        mujoco.mj_step(model, slow)
        _physics_substep_tail(mujoco, model, fast)
        for name in _STATE_FIELDS:
            if np.asarray(getattr(slow, name)).tobytes() != np.asarray(getattr(fast, name)).tobytes():
                return f"on this MuJoCo build the fast substep gives another {name} (sample {sample})"
    return None


def mass_matrix_index(mujoco, model, qvel_index) -> np.ndarray:
    """Where each entry of ``mj_fullM(qM)[qvel_index][:, qvel_index]`` sits in ``qM`` (+1; 0 = zero).

    ``mj_fullM`` only scatters ``qM``'s entries into a dense matrix (zeros elsewhere), so
    gathering them through this map gives the same numbers without the nv x nv matrix.
    """
    full = np.zeros((model.nv, model.nv))
    mujoco.mj_fullM(model, full, np.arange(1, model.nM + 1, dtype=np.float64))
    return full[np.ix_(qvel_index, qvel_index)].astype(np.intp)


def _fill_controller(
    mujoco, controller, model, data, site_id: int, jac_shape: tuple[int, int], qvel_index, mass_index: np.ndarray
) -> None:
    """``Controller.update`` of robosuite 1.4.0 without its ``sim.forward()``, same arithmetic."""
    controller.ee_pos = np.array(data.site_xpos[site_id])
    controller.ee_ori_mat = np.array(data.site_xmat[site_id].reshape([3, 3]))
    jacp = np.zeros(jac_shape)
    jacr = np.zeros(jac_shape)
    mujoco.mj_jacSite(model, data, jacp, jacr, site_id)
    controller.ee_pos_vel = np.array(np.dot(jacp, data.qvel))
    controller.ee_ori_vel = np.array(np.dot(jacr, data.qvel))
    controller.joint_pos = np.array(data.qpos[controller.qpos_index])
    controller.joint_vel = np.array(data.qvel[qvel_index])
    controller.J_pos = np.array(jacp.reshape((3, -1))[:, qvel_index])
    controller.J_ori = np.array(jacr.reshape((3, -1))[:, qvel_index])
    controller.J_full = np.array(np.vstack([controller.J_pos, controller.J_ori]))
    # robosuite's two fancy indexings leave the block in Fortran order; the OSC law's
    # linear algebra takes another path (other rounding) for another memory layout.
    qm = np.concatenate(([0.0], data.qM))
    controller.mass_matrix = np.asfortranarray(qm[mass_index])
    controller.new_update = False  # what update() leaves behind: run_controller's call is a no-op


def _control_between_goals(robot, controller, gripper_action, data, torque_low, torque_high, arm_ids, grip_ids,
                           grip_bias, grip_weight) -> None:
    """``SingleArm.control(action, policy_step=False)`` of robosuite 1.4.0, same arithmetic.

    Without the per-call name lookups and limit arrays (computed once per control step by
    the caller, from the same model arrays): the goal is set on the policy step only, and
    the history buffers are pushed on it only, so between goals control is this.
    """
    torques = controller.run_controller()
    robot.torques = np.clip(torques, torque_low, torque_high)
    actual = robot.gripper.format_action(gripper_action)  # integrates the gripper command
    data.ctrl[grip_ids] = grip_bias + grip_weight * actual
    data.ctrl[arm_ids] = robot.torques


class FastStepper:
    """Steps one LIBERO (robosuite 1.4.0) env like ``env.step`` with the repeated work removed.

    ``env`` is the robosuite env (``OffScreenRenderEnv(...).env``); ``read_observables``
    are the observable names the caller reads from the returned observation;
    ``after_observables`` runs after every substep's observable update, where robosuite's
    ``step`` runs ``_update_observables`` (the env keeps the sampled scene there, see
    :mod:`envs.libero.sampled_scene`).
    Raises ``RuntimeError`` with the reason when the guards in the module docstring fail.
    """

    def __init__(self, env, read_observables: Sequence[str],
                 after_observables: Callable[[], None] | None = None) -> None:
        import mujoco
        from robosuite.controllers.osc import OperationalSpaceController
        from robosuite.robots.single_arm import SingleArm

        reason = unavailable_reason()
        if reason is not None:
            raise RuntimeError(reason)
        if len(env.robots) != 1:
            raise RuntimeError(f"it supports one robot; this env has {len(env.robots)}")
        robot = env.robots[0]
        controller = robot.controller
        from libero.libero.envs.bddl_base_domain import BDDLBaseDomain

        overridden = [name for name in ("step", "_pre_action", "_post_action", "_update_observables")
                      if getattr(type(env), name) is not getattr(BDDLBaseDomain, name)]
        if overridden:
            raise RuntimeError(f"{type(env).__name__} overrides {', '.join(overridden)}")
        if env.action_dim != 7:
            reason = f"it supports the 7-D OSC_POSE action; this env takes {env.action_dim}"
        elif type(controller) is not OperationalSpaceController:
            reason = f"it supports robosuite's OSC controller; this env uses {type(controller).__name__}"
        elif controller.interpolator_pos is not None or controller.interpolator_ori is not None:
            reason = "it supports the OSC controller without interpolators"
        self._mujoco = mujoco
        self._model = env.sim.model._model
        self._data = env.sim.data._data
        model = self._model
        if reason is None and model.opt.integrator != mujoco.mjtIntegrator.mjINT_EULER:
            reason = "it supports MuJoCo's Euler integrator"
        if reason is None and model.opt.enableflags & (mujoco.mjtEnableBit.mjENBL_ENERGY | mujoco.mjtEnableBit.mjENBL_FWDINV):
            reason = "it supports models without energy or forward/inverse comparison enabled"
        if reason is None and mujoco.get_mjcb_control() is not None:
            reason = "a MuJoCo control callback is installed"
        if reason is None:
            reason = check_substep(self._model, self._data)
        if reason is not None:
            raise RuntimeError(reason)
        self.env = env
        self._robot = robot
        unknown = [name for name in read_observables if name not in env._observables]
        if unknown:
            raise ValueError(f"unknown observables: {unknown}")
        self._observables = [(name, env._observables[name]) for name in read_observables]
        self._substeps = int(env.control_timestep / env.model_timestep)
        self._after_observables = after_observables
        if not robot.has_gripper or type(robot).control is not SingleArm.control:
            raise RuntimeError("it supports a single arm with a gripper")
        self._mass_index_key: tuple | None = None
        self._mass_index = np.zeros((0, 0), dtype=np.intp)

    def step(self, action: np.ndarray) -> tuple[dict[str, Any], bool]:
        """One control step; returns (the read observations, LIBERO's success flag)."""
        env = self.env
        mujoco = self._mujoco
        model, data = env.sim.model._model, env.sim.data._data  # a hard reset builds a new sim
        if env.done:
            raise ValueError("executing action in terminated episode")
        env.timestep += 1
        controller = self._robot.controller  # robosuite rebuilds it on reset: look it up per step
        site_id = model.site(controller.eef_name).id
        qvel_index = controller.qvel_index
        jac_shape = (3, model.nv)
        if self._mass_index_key != (id(model), tuple(qvel_index)):
            self._mass_index = mass_matrix_index(mujoco, model, qvel_index)
            self._mass_index_key = (id(model), tuple(qvel_index))
        timestep = env.model_timestep
        cache = env._obs_cache
        robot = self._robot
        # Inputs of robot.control that do not change within a control step, computed the
        # way robosuite computes them at every substep.
        torque_low, torque_high = robot.torque_limits
        arm_ids = robot._ref_joint_actuator_indexes
        grip_ids = [model.actuator(name).id for name in robot.gripper.actuators]
        ctrl_range = model.actuator_ctrlrange[grip_ids]
        grip_bias = 0.5 * (ctrl_range[:, 1] + ctrl_range[:, 0])
        grip_weight = 0.5 * (ctrl_range[:, 1] - ctrl_range[:, 0])
        gripper_action = action[controller.control_dim :]
        for substep in range(self._substeps):
            mujoco.mj_forward(model, data)
            # Controller.update() runs its forward and reads only when new_update is set
            # (it is not on the first substep after a reset: robosuite then uses the values
            # read when the controller was built).
            if controller.new_update:
                _controller_pass(mujoco, model, data)
                _fill_controller(mujoco, controller, model, data, site_id, jac_shape, qvel_index, self._mass_index)
            # BDDLBaseDomain._pre_action -> RobotEnv._pre_action with one robot whose
            # action is the whole action: robot.control(action, policy_step).
            if substep == 0:
                robot.control(action, policy_step=True)
            else:
                _control_between_goals(robot, controller, gripper_action, data, torque_low, torque_high, arm_ids,
                                       grip_ids, grip_bias, grip_weight)
            _physics_substep_tail(mujoco, model, data)
            for _, observable in self._observables:
                observable.update(timestep=timestep, obs_cache=cache)
            if self._after_observables is not None:
                self._after_observables()
        env.cur_time += env.control_timestep
        env._post_action(action)
        success = env._check_success()
        return {name: observable.obs for name, observable in self._observables}, bool(success)
