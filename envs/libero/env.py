"""One LIBERO task as a Gymnasium environment with the VLA three-camera observation.

Observation (a ``Dict`` space):

- ``images``: ``base_0_rgb`` (LIBERO's ``agentview`` camera), ``left_wrist_0_rgb``
  (``robot0_eye_in_hand``) and ``right_wrist_0_rgb`` (all zeros: LIBERO has one wrist
  camera), each ``uint8`` of shape (H, W, 3). **Orientation**: frames are exactly LIBERO's
  own ``agentview_image`` / ``robot0_eye_in_hand_image`` arrays, which are upside down
  (OpenGL rows run bottom-up). openpi and OpenVLA rotate them 180 degrees before the
  policy sees them; that is the protocol's job (``evalharness.config.protocol``), not the env's.
  ``render()`` returns an upright agentview frame for humans. **Timing**: after a step,
  frames show the scene at the substep where robosuite sampled the observation (the 24th
  of 25), the frames robosuite's camera observables return and the state ``state``
  describes (:mod:`envs.libero.sampled_scene`).
- ``image_mask``: for each camera, ``True`` when it is a real camera.
- ``state``: ``float32[8]`` = end-effector position (3), end-effector orientation as
  axis-angle (3), gripper finger positions (2). Its ``Box`` declares only the bound
  that holds for every step (:mod:`envs.libero.state_bounds`), and leaves the rest
  infinite, so Gymnasium's ``check_env`` warns about infinite bounds:

  * position: within the arm's reach (the sum of its link offsets) around its mount,
    which LIBERO places per scene; declared (the OSC controller enforces no tighter
    workspace limit);
  * axis-angle: ``2 * acos(w)`` times the axis (the datasets' convention, see
    :func:`envs.libero.geometry.quat_xyzw_to_axis_angle`) lies in [-2 pi, 2 pi] only for
    an exactly unit quaternion: near w = -1 the axis is MuJoCo's ``xquat`` divided by a
    tiny sine, and its rounding error is amplified beyond that range; not declared;
  * gripper: the finger joints' ranges (0..0.04 m and -0.04..0 m) are soft constraints
    in MuJoCo, which contacts and the actuator can overshoot; not declared.

  A bound that a real observation could exceed would make
  ``observation_space.contains`` reject it.
- ``instruction``: the task's language instruction.

``step(action)`` takes LIBERO's 7-D action (6 end-effector deltas in [-1, 1], gripper
-1 open / +1 close). ``reward`` is 1.0 and ``terminated`` is True exactly when LIBERO's
goal predicates hold. ``truncated`` is always False here; the registered ids wrap the env
in Gymnasium's ``TimeLimit``.

``reset(options={"init_state": k})`` puts the scene in LIBERO's fixed initial state k of
the task; without the option, k is drawn from the env's seeded RNG.

Rollout loops that run for hours should use the lower-level interface instead of
``step``: :meth:`LiberoEnv.reset_to`, :meth:`step_physics` (no rendering),
:meth:`render_images` (only when a policy or a video needs frames) and :meth:`observe`.

Determinism: LIBERO's reset is not a function of the init state alone.
1. Fixtures without a joint (cabinets, stoves, racks) are re-placed at random on every
   reset by moving their bodies in the *model*, which the init state does not cover; LIBERO
   draws those positions from NumPy's global RNG, so in openpi's loop they depend on how
   many episodes ran before. Here they are drawn from an RNG seeded by
   ``(layout_seed, init_state)``, and the global RNG is restored afterwards.
2. The Panda gripper's integrated command and MuJoCo's solver warm start carry over from
   the previous episode. Both are cleared.
So an episode's outcome depends only on (task, init state, layout seed, actions), never on
which episodes the env ran before: 1 and N worker processes agree.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import string
import weakref
from typing import Any, Protocol

import gymnasium as gym
import numpy as np
from gymnasium import spaces

from envs.errors import UserInputError
from envs.libero.catalog import INIT_STATES_PER_TASK, TaskInfo, check_init_state, get_task, load_init_states
from envs.libero.geometry import quat_xyzw_to_axis_angle
from envs.libero import plus_data
from envs.libero.pro_data import is_pro_suite
from envs.libero.pro_objects import register_pro_objects
from envs.libero.render import FrameRenderer, free_render_context
from envs.libero.runtime import import_libero
from envs.libero.sampled_scene import SampledScene
from envs.libero.state_bounds import state_bounds



class EpisodePerturbation(Protocol):
    """What the env calls on an episode's perturbation (``envs.libero.perturb.ActivePerturbation``).

    Declared here so the env does not import the perturbations, which import the env:
    they sit above it and edit it through these four hooks.
    """

    def apply(self, env: "LiberoEnv") -> None: ...

    def undo(self) -> None: ...

    def after_step(self, env: "LiberoEnv") -> bool: ...

    def corrupt(self, images: dict[str, np.ndarray]) -> dict[str, np.ndarray]: ...

    def instruction(self) -> str | None: ...

CAMERAS: tuple[str, ...] = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")
LIBERO_CAMERAS: dict[str, str] = {"base_0_rgb": "agentview", "left_wrist_0_rgb": "robot0_eye_in_hand"}
ACTION_DIM = 7
STATE_DIM = 8
# LIBERO-PRO's paraphrases add a typographic apostrophe ("the cabinet’s middle drawer").
INSTRUCTION_CHARSET = frozenset(string.ascii_letters + string.digits + " ,.'-_\u2019")

_live_envs: "weakref.WeakSet[LiberoEnv]" = weakref.WeakSet()
_exit_hook_registered = False


def _close_live_envs() -> None:
    # robosuite frees its EGL context in __del__, which at interpreter exit runs after
    # EGL is torn down and prints an EGLError traceback. Closing first avoids that.
    for env in list(_live_envs):
        env.close()
    gc.collect()


def _track(env: "LiberoEnv") -> None:
    # Registered after robosuite is imported so that it runs before robosuite's own exit
    # hooks (atexit runs last-registered first).
    global _exit_hook_registered
    if not _exit_hook_registered:
        atexit.register(_close_live_envs)
        _exit_hook_registered = True
    _live_envs.add(env)


def _camera_size(size: int | tuple[int, int] | list[int]) -> tuple[int, int]:
    if isinstance(size, (int, np.integer)):
        height = width = int(size)
    else:
        height, width = (int(v) for v in size)
    if height < 8 or width < 8 or height > 2048 or width > 2048:
        raise UserInputError(f"camera size {size!r} is not valid; allowed: 8..2048 pixels per side")
    return height, width


class LiberoEnv(gym.Env):
    """A LIBERO task (suite + task index or name) as a ``gymnasium.Env``."""

    metadata = {"render_modes": ["rgb_array"], "render_fps": 20}

    def __init__(
        self,
        suite: str,
        task: int | str,
        camera_size: int | tuple[int, int] = 128,
        render_mode: str | None = None,
        fast_physics: bool = True,
        instruction: str | None = None,
    ) -> None:
        if render_mode not in (None, "rgb_array"):
            raise UserInputError(f"render_mode {render_mode!r} is not valid; allowed: None, 'rgb_array'")
        self.task: TaskInfo = get_task(suite, task)
        # The instruction the task gives the policy; None = the task's own (suite.prompt=bddl
        # of LIBERO-Plus passes the BDDL's clean one instead of the published prompt).
        self._instruction = instruction if instruction is not None else self.task.instruction
        self.height, self.width = _camera_size(camera_size)
        self.render_mode = render_mode
        self.init_states = load_init_states(self.task.suite, self.task.index)

        import_libero()
        if is_pro_suite(self.task.suite):
            register_pro_objects()  # LIBERO-PRO's extra object classes (envs.libero.pro_objects)
        from libero.libero.envs import OffScreenRenderEnv

        building = contextlib.nullcontext({})
        self._plus_noise = None
        if self.task.suite == plus_data.SUITE:  # LIBERO-Plus: camera and robot fixed at build time
            from envs.libero import plus_env

            variant = plus_data.variants()[self.task.index]
            plus_data.check_runnable([variant])
            building = plus_env.building(variant)
            if variant.noise:
                from envs.libero.plus_noise import SensorNoise, check_image_size

                check_image_size(variant.noise, self.height, self.width)
                self._plus_noise = SensorNoise(variant.noise)
        with building as extra:
            self._env = OffScreenRenderEnv(
                bddl_file_name=str(self.task.bddl_path),
                camera_heights=self.height,
                camera_widths=self.width,
                hard_reset=False,  # rebuilding the model each reset costs ~1.5 s and changes nothing
                ignore_done=True,  # truncation is the caller's (TimeLimit, protocol max steps)
                **extra,
            )
        # Cameras are rendered on demand only: robosuite would render both every step.
        inner = self._env.env
        for observable in ("agentview_image", "robot0_eye_in_hand_image"):
            inner.modify_observable(observable, "enabled", False)
        self._sim = inner.sim
        self._renderer = FrameRenderer(self._sim, self.height, self.width, tuple(LIBERO_CAMERAS.values()))
        # Frames show the scene when the step's observation was sampled, as robosuite's
        # camera observables would (envs.libero.sampled_scene): robosuite's own step calls
        # _update_observables per substep, the fast step calls after_observables.
        self._sampled = SampledScene(inner._observables["robot0_eef_pos"], lambda: inner.sim.data._data)
        update_observables = inner._update_observables

        def update_and_keep_scene(force: bool = False) -> None:
            update_observables(force=force)
            self._sampled.after_observables()

        inner._update_observables = update_and_keep_scene
        self._robot = inner.robots[0]
        self._object_keys = sorted(
            key
            for key, obs in inner._observables.items()
            if obs.modality == "object"
            and obs.is_active()
            and key != "object-state"
            and "_to_robot0_eef_" not in key
        )
        self._read_observables = ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos", *self._object_keys)
        self._stepper = None
        self.fast_physics = fast_physics
        self._raw_obs: dict[str, Any] = {}
        self._success = False
        self._init_state: int | None = None
        self._perturbation: "EpisodePerturbation | None" = None  # see envs.libero.perturb
        self._closed = False
        self._stepped = False

        image = spaces.Box(0, 255, shape=(self.height, self.width, 3), dtype=np.uint8)
        self.observation_space = spaces.Dict(
            {
                "images": spaces.Dict({cam: image for cam in CAMERAS}),
                "image_mask": spaces.Dict({cam: spaces.Box(0, 1, shape=(), dtype=np.bool_) for cam in CAMERAS}),
                "state": spaces.Box(*state_bounds(self._sim.model._model, self._robot.eef_site_id), dtype=np.float32),
                "instruction": spaces.Text(min_length=1, max_length=512, charset=INSTRUCTION_CHARSET),
            }
        )
        self.action_space = spaces.Box(-1.0, 1.0, shape=(ACTION_DIM,), dtype=np.float32)
        _track(self)

    @property
    def fast_physics(self) -> bool:
        """Whether :meth:`step_physics` uses :class:`envs.libero.fast_step.FastStepper`.

        Same trajectories, observations and success flags as robosuite's ``env.step``
        (tested on all five suites), less repeated work. Switching is meant between
        episodes (the bench and the identity test switch it on one env).
        """
        return self._stepper is not None

    @fast_physics.setter
    def fast_physics(self, value: bool) -> None:
        if not isinstance(value, bool):
            raise UserInputError(f"fast_physics={value!r} is not valid; allowed: true, false")
        if not value:
            self._stepper = None
        elif self._stepper is None:
            from envs.libero.fast_step import FastStepper

            try:
                self._stepper = FastStepper(self._env.env, self._read_observables, self._sampled.after_observables)
            except RuntimeError as exc:
                raise UserInputError(f"fast_physics=true is not available: {exc}; set fast_physics=false") from None

    # ----- lower-level interface used by the rollout loop -------------------------------

    def reset_to(self, init_state: int, layout_seed: int = 0, perturbation: "EpisodePerturbation | None" = None) -> None:
        """Put the scene in the task's fixed initial state ``init_state`` (no rendering).

        ``layout_seed`` (with the init state) fixes where LIBERO places jointless fixtures.
        ``perturbation`` is applied after the init state is set and stays active (images,
        instruction, runtime moves) until the next reset, which undoes its model edits.
        """
        k = check_init_state(init_state)
        if self._perturbation is not None:
            self._perturbation.undo()
            self._perturbation = None
        saved = np.random.get_state()
        np.random.seed(np.random.SeedSequence([int(layout_seed), k]).generate_state(1)[0])
        try:
            self._env.reset()
        finally:
            np.random.set_state(saved)
        self._raw_obs = self._env.set_init_state(self.init_states[k])
        self._sampled.forget()  # no step yet: frames show the state as set
        # Clear the history LIBERO's reset leaves behind (see the module docstring).
        gripper = self._robot.gripper
        gripper.current_action = np.zeros(gripper.dof)
        self._sim.data.qacc_warmstart[:] = 0.0
        self._init_state = k
        self._stepped = False  # LIBERO-Plus noise spares set_init_state's observation, as upstream
        if self._plus_noise is not None:
            self._plus_noise.reseed(layout_seed, k)
        if perturbation is not None:
            self._perturbation = perturbation
            perturbation.apply(self)
        self._success = bool(self._env.check_success())

    def step_physics(self, action: np.ndarray) -> bool:
        """Apply one 7-D action (one 20 Hz control step) without rendering; returns success."""
        action = np.asarray(action, dtype=np.float64)
        if action.shape != (ACTION_DIM,):
            raise ValueError(f"action has shape {action.shape}; LIBERO takes shape ({ACTION_DIM},)")
        if not np.all(np.isfinite(action)):
            raise ValueError(f"action contains non-finite values: {action.tolist()}")
        if self._init_state is None:
            raise RuntimeError("call reset() or reset_to() before stepping")
        if self._stepper is not None:
            self._raw_obs, done = self._stepper.step(action)
        else:
            self._raw_obs, _, done, _ = self._env.step(action)
        self._success = bool(done)
        self._stepped = True
        if self._perturbation is not None and self._perturbation.after_step(self):
            self._success = bool(self._env.check_success())
        return self._success

    def render_images(self, cameras: "tuple[str, ...] | None" = None) -> dict[str, np.ndarray]:
        """The three camera images of the current observation (LIBERO's raw orientation).

        After a step they show the scene at the substep where robosuite sampled the step's
        observation, the state :meth:`proprio_state` describes (the 24th of 25 substeps on
        LIBERO, see :mod:`envs.libero.sampled_scene`): the frames robosuite's own camera
        observables return, which every peer's loop feeds its policy. After a reset, the
        state as set. ``cameras`` limits which real cameras are rendered (each costs
        ~70 ms on a CPU); the others come back as zeros, like the padded right wrist camera.
        """
        wanted = CAMERAS if cameras is None else cameras
        real = [cam for cam in CAMERAS if cam in LIBERO_CAMERAS and cam in wanted]
        with self._sampled.swapped_in():
            frames = self._renderer.render([LIBERO_CAMERAS[cam] for cam in real])
        images = {
            cam: frames[LIBERO_CAMERAS[cam]] if cam in real else np.zeros((self.height, self.width, 3), dtype=np.uint8)
            for cam in CAMERAS
        }
        if self._plus_noise is not None and self._stepped and "base_0_rgb" in real:
            images["base_0_rgb"] = self._plus_noise(images["base_0_rgb"])  # LIBERO-Plus: agentview only
        if self._perturbation is not None:
            images = self._perturbation.corrupt(images)
        return images

    def frame_scene(self) -> contextlib.AbstractContextManager[None]:
        """For a block, the simulator holds the scene the frames show (restored after):
        to render it another way, e.g. with robosuite's ``MjSim.render``, and compare."""
        return self._sampled.swapped_in()

    @property
    def noise_seed(self) -> int | None:
        """This episode's LIBERO-Plus noise seed (None without noise): see envs.libero.plus_noise."""
        return self._plus_noise.seed if self._plus_noise is not None else None

    def render_upright(self) -> np.ndarray:
        """The agentview frame turned right side up (rows top-down), for videos and humans.

        An active image corruption is applied as to the policy's agentview (in LIBERO's raw
        orientation, then turned), so a video shows the episode the policy saw.
        """
        with self._sampled.swapped_in():  # the scene the policy's frames show
            frame = self._renderer.render(["agentview"])["agentview"]
        if self._perturbation is not None:
            frame = self._perturbation.corrupt_view({"base_0_rgb": frame})["base_0_rgb"]
        return np.ascontiguousarray(frame[::-1])

    def proprio_state(self) -> np.ndarray:
        """``float32[8]``: eef position, eef axis-angle, gripper qpos."""
        obs = self._raw_obs
        return np.concatenate(
            [
                obs["robot0_eef_pos"],
                quat_xyzw_to_axis_angle(obs["robot0_eef_quat"]),
                obs["robot0_gripper_qpos"],
            ]
        ).astype(np.float32)

    def robot_state(self) -> dict[str, np.ndarray]:
        """Raw proprioception as robosuite reports it (quaternion in x, y, z, w order).

        Also the OSC controller's own end-effector pose at its last update
        (``robot0_controller_eef_pos``, ``robot0_controller_eef_ori_mat``), which some
        clients send (vla-eval's ``controller_states``); absent before the first update.
        """
        state = {key: np.array(self._raw_obs[key]) for key in ("robot0_eef_pos", "robot0_eef_quat", "robot0_gripper_qpos")}
        controller = self._robot.controller
        if getattr(controller, "ee_pos", None) is not None and getattr(controller, "ee_ori_mat", None) is not None:
            state["robot0_controller_eef_pos"] = np.array(controller.ee_pos)
            state["robot0_controller_eef_ori_mat"] = np.array(controller.ee_ori_mat)
        return state

    def privileged_state(self) -> dict[str, np.ndarray]:
        """Every object's simulator position / quaternion (``<name>_pos``, ``<name>_quat``).

        Not available to a real robot; scripted baselines use it to check the harness.
        """
        return {key: np.array(self._raw_obs[key]) for key in self._object_keys}

    def sim_state(self) -> np.ndarray:
        """The flattened MuJoCo state (time, qpos, qvel), as LIBERO's init files store it."""
        return np.array(self._sim.get_state().flatten())

    @property
    def success(self) -> bool:
        return self._success

    @property
    def instruction(self) -> str:
        """The task's instruction, or the active perturbation's paraphrase of it."""
        text = self._perturbation.instruction() if self._perturbation is not None else None
        return text if text is not None else self._instruction

    def observe(self) -> dict[str, Any]:
        """The full observation after the last reset or step (renders the cameras)."""
        return {
            "images": self.render_images(),
            "image_mask": {cam: np.array(cam in LIBERO_CAMERAS) for cam in CAMERAS},
            "state": self.proprio_state(),
            "instruction": self.instruction,
        }

    # ----- Gymnasium interface ------------------------------------------------------------

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None):
        super().reset(seed=seed)
        options = dict(options or {})
        unknown = set(options) - {"init_state"}
        if unknown:
            raise UserInputError(f"reset option(s) {sorted(unknown)} not valid; allowed: init_state")
        if "init_state" in options:
            k = options["init_state"]
        else:
            k = int(self.np_random.integers(INIT_STATES_PER_TASK))
        self.reset_to(k, layout_seed=int(self.np_random.integers(2**31)))
        return self.observe(), self._info()

    def step(self, action):
        success = self.step_physics(action)
        return self.observe(), float(success), success, False, self._info()

    def render(self):
        if self.render_mode != "rgb_array":
            return None
        return self.render_upright()

    def close(self) -> None:
        if getattr(self, "_closed", True):
            return
        self._closed = True
        _live_envs.discard(self)
        try:
            free_render_context(self._sim)
            self._env.close()
        finally:
            self._sim = None
            self._env = None
            self._stepper = None
            gc.collect()

    def _info(self) -> dict[str, Any]:
        return {
            "success": self._success,
            "suite": self.task.suite,
            "task_index": self.task.index,
            "task_name": self.task.name,
            "init_state": self._init_state,
        }
