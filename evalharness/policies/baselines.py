"""Reference policies that need no model: the floor a real policy must beat.

``zero`` holds still (gripper open): it measures how often a task is "solved" by doing
nothing, which should be never. ``random`` samples uniform actions from a generator
seeded by the episode's seed, so its outcomes are reproducible across runs and workers.
"""

from __future__ import annotations

from typing import Annotated, Any

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainValidator

from evalharness.config.fields import Count
from evalharness.config.validation import validate_settings
from evalharness.policies.base import Policy


def _scale(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError("allowed: 0 < scale <= 1")
    return float(value)


class ZeroSettings(BaseModel):
    """``policy=zero`` (``conf/policy/zero.yaml``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    horizon: Count  # actions per query


class RandomSettings(ZeroSettings):
    """``policy=random`` (``conf/policy/random.yaml``)."""

    scale: Annotated[float, PlainValidator(_scale)]  # arm actions uniform in [-scale, scale]


class ZeroPolicy(Policy):
    """No motion, gripper open (-1)."""

    name = "zero"

    def __init__(self, horizon: int = 1) -> None:
        self.horizon = validate_settings(ZeroSettings, {"horizon": horizon}, "policy").horizon

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "horizon": self.horizon}

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        chunk = np.zeros((self.horizon, 7))
        chunk[:, 6] = -1.0
        return chunk


class RandomPolicy(Policy):
    """Uniform random actions in [-scale, scale] (arm) and a random gripper sign."""

    name = "random"

    def __init__(self, horizon: int = 1, scale: float = 1.0) -> None:
        settings = validate_settings(RandomSettings, {"horizon": horizon, "scale": scale}, "policy")
        self.horizon = settings.horizon
        self.scale = settings.scale
        self._rng = np.random.default_rng(0)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "horizon": self.horizon, "scale": self.scale}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        chunk = self._rng.uniform(-self.scale, self.scale, size=(self.horizon, 7))
        chunk[:, 6] = np.sign(chunk[:, 6]) + (chunk[:, 6] == 0)
        return chunk
