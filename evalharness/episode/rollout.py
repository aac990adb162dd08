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
    def from_protocol(cls, protocol: Protocol, suite: str, max_steps: int | None = None) -> "RolloutSettings":
        return cls(
            settle_steps=protocol.settle_steps,
            settle_action=np.asarray(protocol.settle_action, dtype=np.float64),
            max_steps=int(max_steps) if max_steps is not None else protocol.max_steps[suite],
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
    timers = {"policy": 0.0, "env": 0.0, "render": 0.0}
    fingerprint = hashlib.sha256()
    steps = 0
    success = False
    events: list[str] = []
    error: EpisodeError | None = None

    def timed(bucket: str, fn: Callable[[], Any]) -> Any:
        t0 = time.perf_counter()
        try:
            return fn()
        finally:
            timers[bucket] += time.perf_counter() - t0

    def simulator(bucket: str, fn: Callable[[], Any], what: str = "") -> Any:
        try:
            return timed(bucket, fn)
        except Exception as exc:  # noqa: BLE001 - any simulator failure ends the episode as an error
            raise EnvError(f"{what}{type(exc).__name__}: {exc}") from exc

    def physics(action: np.ndarray) -> bool:
        return simulator("env", lambda: env.step_physics(action))

    def record_frame(upright: np.ndarray | None = None) -> None:
        if frame_sink is not None:
            frame = upright if upright is not None else simulator("render", env.render_upright, "render failed: ")
            frame_sink(frame)

    def reset() -> None:
        try:
            extra = {} if active is None else {"perturbation": active}  # unperturbed: the call as before
            timed("env", lambda: env.reset_to(spec.init_state, layout_seed=spec.seed, **extra))
        except PlacementImpossible:
            raise
        except Exception as exc:  # noqa: BLE001
            raise EnvError(f"reset failed: {type(exc).__name__}: {exc}") from exc

    def settle() -> None:
        for _ in range(settings.settle_steps):
            physics(settings.settle_action)

    active = None
    try:
        active = active_perturbation(spec)
        start_episode(env, spec, active, reset, settle)
        try:
            policy.reset(spec.instruction, seed=spec.episode_seed, init_state=spec.init_state, attempt=attempt)
        except (EpisodeError, UserInputError):  # a configuration mistake (e.g. checkpoint weights that do
            raise                               # not fit its model, found where they load) stops the run
        except Exception as exc:  # noqa: BLE001
            raise PolicyError(f"reset: {type(exc).__name__}: {exc}") from exc

        cameras = policy_cameras(policy, settings)
        blank = settings.image_transform(np.zeros((env.height, env.width, 3), dtype=np.uint8))
        blank.setflags(write=False)
        while steps < settings.max_steps and not success:
            obs, raw = simulator(
                "render", lambda: _observation(env, policy, settings, cameras, blank), "observation failed: "
            )
            if frame_sink is not None:
                # Reuse the agentview frame just rendered for the policy when there is one.
                record_frame(np.ascontiguousarray(raw["base_0_rgb"][::-1]) if "base_0_rgb" in cameras else None)
            try:
                chunk = timed("policy", lambda: policy.act(obs))
            except (EpisodeError, UserInputError):
                raise
            except Exception as exc:  # noqa: BLE001
                raise PolicyError(f"{type(exc).__name__}: {exc}") from exc
            finally:
                events.extend(policy.drain_events())
            chunk = validate_chunk(chunk)
            for i, action in enumerate(chunk[: settings.replan_steps]):
                if i > 0:
                    record_frame()
                success = physics(action)
                fingerprint.update(action.tobytes())
                steps += 1
                if success or steps >= settings.max_steps:
                    break
        if frame_sink is not None:
            record_frame()
    except EpisodeError as exc:
        error = exc
        success = False
    try:
        policy.episode_end(success)
    except Exception as exc:  # noqa: BLE001 - the verdict is known; telling the policy must not cost it
        events.append(f"policy_episode_end_failed: {type(exc).__name__}: {exc}")
    try:
        policy_stats = {k: float(v) for k, v in policy.episode_stats().items()}
    except Exception as exc:  # noqa: BLE001 - diagnostics must never cost the episode its verdict
        policy_stats = {}
        events.append(f"policy_stats_failed: {type(exc).__name__}: {exc}")

    return EpisodeOutcome(
        success=success,
        steps=steps,
        error_kind=None if error is None else error.kind,
        error_message=None if error is None else str(error),
        wall_time_s=time.perf_counter() - start,
        policy_time_s=timers["policy"],
        env_time_s=timers["env"],
        render_time_s=timers["render"],
        action_fingerprint=fingerprint.hexdigest(),
        events=events,
        policy_stats=policy_stats,
        perturbation=perturbation_record(active),
    )
