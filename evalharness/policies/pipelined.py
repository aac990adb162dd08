"""A policy whose raw output (tokens, normalized chunks) goes through the action pipeline.

Model policies emit what their network emits; the configured decoder, unnormalizer and
converters (Hydra groups ``decoder``, ``normalize``, ``convert``) turn it into robot
actions. Keeping that outside the model wrapper means the same checkpoint can be
evaluated under different decodings from the command line, and the choice is recorded.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalharness.errors import DecodeError, UserInputError
from evalharness.policies.base import Policy


def pipeline_is_identity(pipeline_cfg: dict[str, Any]) -> bool:
    return all((pipeline_cfg.get(part) or {}).get("name", "none") == "none" for part in ("decoder", "normalize", "convert"))


class PipelinedPolicy(Policy):
    """Wraps ``inner``: ``act`` returns ``pipeline(inner.act(obs), state=obs.get('state'))``."""

    def __init__(self, inner: Policy, pipeline_cfg: dict[str, Any]) -> None:
        from evalharness.actions.pipeline import build_pipeline

        self.inner = inner
        self.name = inner.name
        self.needs_privileged_state = inner.needs_privileged_state
        self.cameras = inner.cameras
        self.pipeline = build_pipeline(pipeline_cfg["decoder"], pipeline_cfg["normalize"], pipeline_cfg["convert"])
        self._events: list[str] = []

    def identity(self) -> dict[str, Any]:
        return {**self.inner.identity(), "action_pipeline": self.pipeline.describe()}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None) -> None:
        self._events.clear()
        self.inner.reset(instruction, seed=seed, init_state=init_state)

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        output = self.inner.act(observation)
        # Only some steps (delta_to_absolute) need the state; OpenVLA's pipeline runs without
        # it, under a protocol that gives none (protocol.state=false).
        try:
            result = self.pipeline(output, state=observation.get("state"))
        except UserInputError as exc:  # e.g. delta_to_absolute under a protocol with state: false
            raise DecodeError(str(exc)) from None
        self._events.extend(result.events)
        return result.actions

    def drain_events(self) -> list[str]:
        events = self.inner.drain_events() + self._events
        self._events = []
        return events

    def episode_stats(self) -> dict[str, float | int]:
        return self.inner.episode_stats()

    def close(self) -> None:
        self.inner.close()


def wrap_with_pipeline(policy: Policy, pipeline_cfg: dict[str, Any]) -> Policy:
    """The policy itself when the pipeline is all ``none``, else a :class:`PipelinedPolicy`."""
    if pipeline_is_identity(pipeline_cfg):
        return policy
    return PipelinedPolicy(policy, pipeline_cfg)
