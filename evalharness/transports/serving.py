"""A harness policy served behind a websocket protocol (openpi's, vla-eval's): what they share.

``evalharness serve --protocol openpi|vla_eval`` builds the policy once, with its whole
action pipeline (both protocols return robot actions: openpi's server unnormalizes,
vla-eval's returns LIBERO actions), and serves it to many connections:

- **one fork per episode stream** (:meth:`ServedPolicy.open_session`): a connection gets
  its own :meth:`~evalharness.policies.base.Policy.fork`, so its random and per-episode
  state is its own, whatever else is served;
- **per-session seeding**: an episode starts with ``reset(instruction, seed=...)``. vla-eval
  announces episodes (``episode_start``; ``policy=vla_eval`` sends the episode's seed in its
  task, vla-eval's own client sends none: seed 0); openpi's protocol has no episode
  boundary and no seed, so a session resets (seed 0) on its first query and whenever the
  prompt changes;
- **batching across sessions** (:class:`Batcher`): one thread owns the model; it takes the
  oldest query and waits up to ``serve.max_wait_ms`` for queries of *other* sessions, up to
  ``serve.max_batch``, then runs one ``act_batch`` over their forks. Each fork answers as it
  would alone, so batching does not change outcomes (``serve.max_batch=1`` calls ``act``
  one query at a time, for bit-exact comparisons with a policy whose batched kernels
  differ in the last bits);
- **chunks**: the protocol module decides what to send back (openpi: the whole chunk;
  vla-eval: one action per observation from a per-session buffer).

What reaches the served policy is rebuilt from the wire (:func:`harness_observation`): the
two cameras (the third is zeros), the instruction, the float32 state; ``robot`` is rebuilt
from the state (eef position, gripper qpos, the quaternion of the axis-angle: close to,
not bit-for-bit, the simulator's). Policies that read privileged simulator state cannot
be served.
"""

from __future__ import annotations

import asyncio
import itertools
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalharness.errors import UserInputError
from evalharness.policies.base import Policy
from evalharness.transports.batch_loop import BatchLoop

__all__ = ["ServedPolicy", "ServedSession", "Batcher", "harness_observation", "build_served_policy"]

CAMERAS = ("base_0_rgb", "left_wrist_0_rgb", "right_wrist_0_rgb")


def _quat_from_axis_angle(axis_angle: np.ndarray) -> np.ndarray:
    angle = float(np.linalg.norm(axis_angle))
    if angle < 1e-12:
        return np.array([0.0, 0.0, 0.0, 1.0])
    axis = np.asarray(axis_angle, dtype=np.float64) / angle
    return np.concatenate([axis * np.sin(angle / 2.0), [np.cos(angle / 2.0)]])


def harness_observation(images: dict[str, np.ndarray | None], instruction: str, state: np.ndarray | None,
                        cameras: tuple[str, ...]) -> dict[str, Any]:
    """The :class:`~evalharness.policies.base.Observation` a served policy gets.

    ``images`` maps harness camera names to what the wire carried (None: not sent);
    ``cameras`` are the protocol's real cameras (the mask); missing ones are zeros.
    """
    shape = next((np.asarray(im).shape for im in images.values() if im is not None), (224, 224, 3))
    out_images = {}
    for cam in CAMERAS:
        image = images.get(cam)
        out_images[cam] = np.ascontiguousarray(image, dtype=np.uint8) if image is not None else np.zeros(shape, np.uint8)
    observation: dict[str, Any] = {
        "images": out_images,
        "image_mask": {cam: cam in cameras and images.get(cam) is not None for cam in CAMERAS},
        "instruction": str(instruction),
    }
    if state is not None:
        s = np.asarray(state, dtype=np.float64).reshape(-1)
        observation["state"] = s.astype(np.float32)
        if s.shape[0] >= 8:
            observation["robot"] = {"robot0_eef_pos": s[:3].copy(), "robot0_eef_quat": _quat_from_axis_angle(s[3:6]),
                                    "robot0_gripper_qpos": s[6:8].copy()}
    observation.setdefault("robot", {"robot0_eef_pos": np.zeros(3), "robot0_eef_quat": np.array([0.0, 0.0, 0.0, 1.0]),
                                     "robot0_gripper_qpos": np.zeros(2)})
    return observation


@dataclass
class ServedSession:
    """One connection's episode stream: its own fork of the served policy."""

    id: str
    policy: Policy
    seed: int = 0
    instruction: str | None = None
    buffer: deque = field(default_factory=deque)  # actions kept for the next observations (vla-eval)


@dataclass
class _Query:
    session: ServedSession
    observation: dict[str, Any]
    future: Future
    auto_reset: bool


class Batcher(BatchLoop[_Query]):
    """A daemon thread running the sessions' queries through the policy in batches
    (:class:`~evalharness.transports.batch_loop.BatchLoop`)."""

    def __init__(self, max_batch: int, max_wait_ms: float) -> None:
        super().__init__(max_batch, max_wait_ms, name="evalharness-ws-batcher")
        self.batch_sizes: dict[int, int] = {}
        self._start()

    def submit(self, session: ServedSession, observation: dict[str, Any], *, auto_reset: bool) -> Future:
        future: Future = Future()
        self._put(_Query(session, observation, future, auto_reset))
        return future

    def _fail(self, query: _Query, exc: BaseException) -> None:
        query.future.set_exception(exc)

    def _run(self, batch: list[_Query]) -> None:
        ready = []
        for query in batch:
            session, instruction = query.session, query.observation["instruction"]
            try:
                if query.auto_reset and instruction != session.instruction:
                    session.policy.reset(instruction, seed=session.seed)
                    session.instruction = instruction
            except Exception as exc:  # noqa: BLE001 - reported to that query's client
                query.future.set_exception(exc)
            else:
                ready.append(query)
        if not ready:
            return
        policies = [q.session.policy for q in ready]
        observations = [q.observation for q in ready]
        try:
            outputs = [policies[0].act(observations[0])] if len(ready) == 1 else \
                type(policies[0]).act_batch(policies, observations)
        except Exception as exc:  # noqa: BLE001 - the shared forward pass failed: every query learns why
            for query in ready:
                query.future.set_exception(exc)
            return
        self.batch_sizes[len(ready)] = self.batch_sizes.get(len(ready), 0) + 1
        for query, output in zip(ready, outputs, strict=True):
            query.future.set_result(output)


class ServedPolicy:
    """The served policy: built once, a fork per session, one batcher."""

    def __init__(self, policy: Policy, *, max_batch: int, max_wait_ms: float, cameras: tuple[str, ...],
                 replan_steps: int, state: bool) -> None:
        self.policy = policy
        self.cameras = tuple(c for c in cameras if policy.cameras is None or c in policy.cameras)
        self.replan_steps = int(replan_steps)
        self.state = bool(state)
        self.max_batch, self.max_wait_ms = max_batch, max_wait_ms
        self.batcher = Batcher(max_batch, max_wait_ms)
        self._ids = itertools.count(1)

    def open_session(self, seed: int = 0) -> ServedSession:
        return ServedSession(id=f"s{next(self._ids)}", policy=self.policy.fork(), seed=int(seed))

    def begin_episode(self, session: ServedSession, instruction: str, seed: int) -> None:
        """An announced episode (vla-eval's ``episode_start``)."""
        session.seed = int(seed)
        session.buffer.clear()
        session.policy.reset(instruction, seed=session.seed)
        session.instruction = instruction

    async def act(self, session: ServedSession, observation: dict[str, Any], *, auto_reset: bool) -> np.ndarray:
        """The session's (H, 7) chunk for ``observation``, through the batcher."""
        from evalharness.policies.chunks import validate_chunk

        output = await asyncio.wrap_future(self.batcher.submit(session, observation, auto_reset=auto_reset))
        return validate_chunk(output)

    def close_session(self, session: ServedSession) -> None:
        try:
            session.policy.close()
        except Exception:  # noqa: BLE001 - closing a fork must not break the server
            pass

    def close(self) -> None:
        self.batcher.stop()
        self.policy.close()


def build_served_policy(config: dict[str, Any]) -> ServedPolicy:
    """The served policy of a composed config: ``policy`` with its full pipeline, ``protocol``, ``serve``."""
    from hydra.errors import InstantiationException

    from evalharness.policies.build import build_policy

    serve = config.get("serve") or {}
    pipeline_cfg = {part: config.get(part) or {"name": "none"} for part in ("decoder", "normalize", "convert")}
    try:
        policy = build_policy(config["policy"], pipeline_cfg)
    except InstantiationException as exc:
        cause = exc.__cause__
        if isinstance(cause, UserInputError):
            raise cause from None
        raise UserInputError(f"policy could not be built: {cause or exc}") from None
    if policy.needs_privileged_state:
        policy.close()
        raise UserInputError(f"policy {policy.name!r} reads privileged simulator state, which a websocket protocol "
                             "does not carry; serve a policy that needs only cameras, state and instruction")
    protocol = config.get("protocol") or {}
    return ServedPolicy(policy, max_batch=int(serve.get("max_batch", 8)), max_wait_ms=float(serve.get("max_wait_ms", 5.0)),
                        cameras=tuple(protocol.get("cameras", CAMERAS[:2])),
                        replan_steps=int(protocol.get("replan_steps", 1)), state=bool(protocol.get("state", True)))
