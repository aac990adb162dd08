"""One episode: settle, then observe -> policy -> execute part of the chunk, until done.

This loop runs millions of steps in a benchmark, so it renders only when something needs
pixels: the policy's cameras at query time, and the upright agentview frame for a video
at every step only when the episode is being recorded. Physics steps never render.

Every way an episode can fail to reach a verdict (the policy raises, returns NaN or a
wrongly shaped chunk, decoding fails, the simulator throws) ends that episode with an
error *kind* and message instead of crashing the run, and is never counted as a policy
failure. A :class:`~evalharness.errors.UserInputError` from the policy is not an episode
outcome but a configuration mistake found late (a checkpoint's weights load only where
episodes run): it stops the run with its one line.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from envs.libero.catalog import base_suite
from envs.libero.env import CAMERAS, LiberoEnv
from envs.libero.perturb import PlacementImpossible
from evalharness.errors import EnvError, EpisodeError, PolicyError, UserInputError
from evalharness.episode.perturbed_start import active_perturbation, perturbation_record, start_episode
from evalharness.plan.spec import EpisodeSpec
from evalharness.policies.base import Observation, Policy
from evalharness.policies.chunks import validate_chunk
from evalharness.config.protocol import Protocol
from evalharness.transforms.images import ImageTransform, build_image_transform

FrameSink = Callable[[np.ndarray], None]


@dataclass(frozen=True)
class RolloutSettings:
    """What the loop needs from the protocol, resolved for one suite."""

    settle_steps: int
    settle_action: np.ndarray
    max_steps: int
    replan_steps: int
    cameras: tuple[str, ...]
    give_state: bool
    image_transform: ImageTransform

    @classmethod
    def from_protocol(cls, protocol: Protocol, suite: str, max_steps: int | None = None, task_index: int = 0) -> "RolloutSettings":
        return cls(
            settle_steps=protocol.settle_steps,
            settle_action=np.asarray(protocol.settle_action, dtype=np.float64),
            max_steps=int(max_steps) if max_steps is not None else protocol.max_steps[base_suite(suite, task_index)],
            replan_steps=protocol.replan_steps,
            cameras=tuple(protocol.cameras),
            give_state=protocol.state,
            image_transform=build_image_transform(protocol.image_transforms),
        )


@dataclass
class EpisodeOutcome:
    """What the loop measured; the worker turns it into a stored record."""

    success: bool
    steps: int
    error_kind: str | None
    error_message: str | None
    wall_time_s: float
    policy_time_s: float
    env_time_s: float
    render_time_s: float
    action_fingerprint: str
    events: list[str]
    policy_stats: dict[str, float] = field(default_factory=dict)
    perturbation: dict[str, Any] | None = None  # what the perturb group applied (None: unperturbed)

    @classmethod
    def error_only(cls, error: EpisodeError) -> "EpisodeOutcome":
        """An episode that never ran (its env could not be built, its worker died)."""
        return cls(False, 0, error.kind, str(error), 0.0, 0.0, 0.0, 0.0, "", [])


def policy_cameras(policy: Policy, settings: RolloutSettings) -> tuple[str, ...]:
    """The cameras to render for this policy: the protocol's, narrowed by the policy's own."""
    if policy.cameras is None:
        return settings.cameras
    return tuple(cam for cam in settings.cameras if cam in policy.cameras)


def _observation(
    env: LiberoEnv, policy: Policy, settings: RolloutSettings, cameras: tuple[str, ...], blank: np.ndarray
) -> tuple[Observation, dict[str, np.ndarray]]:
    raw = env.render_images(cameras)
    # Cameras not rendered are all zeros: reuse one preprocessed blank instead of
    # preprocessing zeros at every query (the scripted policy queries every step).
    images = {cam: settings.image_transform(raw[cam]) if cam in cameras else blank for cam in CAMERAS}
    obs: Observation = {
        "images": images,
        "image_mask": {cam: cam in cameras for cam in CAMERAS},
        "instruction": env.instruction,
        "robot": env.robot_state(),
    }
    if settings.give_state:
        obs["state"] = env.proprio_state()
    if policy.needs_privileged_state:
        obs["privileged"] = env.privileged_state()
    return obs, raw


class _Episode:
    """One running episode: its clocks, fingerprint and step count, one method per phase.

    Every simulator call goes through :meth:`simulator` (timed, a failure is an
    :class:`EnvError`); every policy call is timed and a failure is a :class:`PolicyError`;
    a configuration mistake (:class:`UserInputError`) passes through and stops the run.
    """

    def __init__(self, env: LiberoEnv, policy: Policy, spec: EpisodeSpec, settings: RolloutSettings,
                 frame_sink: FrameSink | None) -> None:
        self.env, self.policy, self.spec, self.settings, self.frame_sink = env, policy, spec, settings, frame_sink
        self.timers = {"policy": 0.0, "env": 0.0, "render": 0.0}
        self.fingerprint = hashlib.sha256()
        self.steps = 0
        self.success = False
        self.events: list[str] = []
        self.active: Any = None  # the perturbation applied (None: unperturbed)

    def timed(self, bucket: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            self.timers[bucket] += time.perf_counter() - t0

    def simulator(self, bucket: str, fn: Callable[[], Any], what: str = "") -> Any:
        try:
            return self.timed(bucket, fn)
        except Exception as exc:  # noqa: BLE001 - any simulator failure ends the episode as an error
            raise EnvError(f"{what}{type(exc).__name__}: {exc}") from exc

    def physics(self, action: np.ndarray) -> bool:
        return self.simulator("env", lambda: self.env.step_physics(action))

    def record_frame(self, upright: np.ndarray | None = None) -> None:
        if self.frame_sink is not None:
            frame = upright if upright is not None else self.simulator("render", self.env.render_upright, "render failed: ")
            self.frame_sink(frame)

    def reset_env(self) -> None:
        spec = self.spec
        try:
            extra = {} if self.active is None else {"perturbation": self.active}  # unperturbed: the call as before
            self.timed("env", lambda: self.env.reset_to(spec.init_state, layout_seed=spec.seed, **extra))
            if self.env.noise_seed is not None:  # LIBERO-Plus sensor noise: the episode's draws, replayable
                self.events.append(f"libero_plus_noise_seed: {self.env.noise_seed}")
        except PlacementImpossible:
            raise
        except Exception as exc:  # noqa: BLE001
            raise EnvError(f"reset failed: {type(exc).__name__}: {exc}") from exc

    def settle(self) -> None:
        for _ in range(self.settings.settle_steps):
            self.physics(self.settings.settle_action)

    def reset_policy(self, attempt: int) -> None:
        spec = self.spec
        try:
            self.policy.reset(spec.instruction, seed=spec.episode_seed, init_state=spec.init_state, attempt=attempt)
        except (EpisodeError, UserInputError):  # a configuration mistake (e.g. checkpoint weights that do
            raise                               # not fit its model, found where they load) stops the run
        except Exception as exc:  # noqa: BLE001
            raise PolicyError(f"reset: {type(exc).__name__}: {exc}") from exc

    def query(self, cameras: tuple[str, ...], blank: np.ndarray) -> np.ndarray:
        """Observe (filming the frame when recording), ask the policy, return its validated chunk."""
        obs, raw = self.simulator(
            "render", lambda: _observation(self.env, self.policy, self.settings, cameras, blank), "observation failed: "
        )
        if self.frame_sink is not None:
            # Reuse the agentview frame just rendered for the policy when there is one.
            self.record_frame(np.ascontiguousarray(raw["base_0_rgb"][::-1]) if "base_0_rgb" in cameras else None)
        try:
            chunk = self.timed("policy", lambda: self.policy.act(obs))
        except (EpisodeError, UserInputError):
            raise
        except Exception as exc:  # noqa: BLE001
            raise PolicyError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            self.events.extend(self.policy.drain_events())
        return validate_chunk(chunk)

    def execute(self, chunk: np.ndarray) -> None:
        """Step the first ``replan_steps`` actions of a chunk, stopping at success or max steps."""
        for i, action in enumerate(chunk[: self.settings.replan_steps]):
            if i > 0:
                self.record_frame()
            self.success = self.physics(action)
            self.fingerprint.update(action.tobytes())
            self.steps += 1
            if self.success or self.steps >= self.settings.max_steps:
                break

    def run(self, attempt: int) -> None:
        """Start (perturbed or not), reset the policy, then query and execute until done."""
        self.active = active_perturbation(self.spec)
        start_episode(self.env, self.spec, self.active, self.reset_env, self.settle)
        self.reset_policy(attempt)
        cameras = policy_cameras(self.policy, self.settings)
        blank = self.settings.image_transform(np.zeros((self.env.height, self.env.width, 3), dtype=np.uint8))
        blank.setflags(write=False)
        while self.steps < self.settings.max_steps and not self.success:
            self.execute(self.query(cameras, blank))
        if self.frame_sink is not None:
            self.record_frame()

    def policy_stats(self) -> dict[str, float]:
        try:
            return {k: float(v) for k, v in self.policy.episode_stats().items()}
        except Exception as exc:  # noqa: BLE001 - diagnostics must never cost the episode its verdict
            self.events.append(f"policy_stats_failed: {type(exc).__name__}: {exc}")
            return {}


def run_episode(
    env: LiberoEnv,
    policy: Policy,
    spec: EpisodeSpec,
    settings: RolloutSettings,
    frame_sink: FrameSink | None = None,
    attempt: int = 1,
) -> EpisodeOutcome:
    """Run one episode to success, max steps, or an error (``attempt``: see ``Policy.reset``)."""
    start = time.perf_counter()
    episode = _Episode(env, policy, spec, settings, frame_sink)
    error: EpisodeError | None = None
    try:
        episode.run(attempt)
    except EpisodeError as exc:
        error = exc
        episode.success = False
    try:
        policy.episode_end(episode.success)
    except Exception as exc:  # noqa: BLE001 - the verdict is known; telling the policy must not cost it
        episode.events.append(f"policy_episode_end_failed: {type(exc).__name__}: {exc}")
    policy_stats = episode.policy_stats()
    return EpisodeOutcome(
        success=episode.success,
        steps=episode.steps,
        error_kind=None if error is None else error.kind,
        error_message=None if error is None else str(error),
        wall_time_s=time.perf_counter() - start,
        policy_time_s=episode.timers["policy"],
        env_time_s=episode.timers["env"],
        render_time_s=episode.timers["render"],
        action_fingerprint=episode.fingerprint.hexdigest(),
        events=episode.events,
        policy_stats=policy_stats,
        perturbation=perturbation_record(episode.active),
    )
