"""Reference policies that need no model: the floor a real policy must beat.

``zero`` holds still (gripper open): it measures how often a task is "solved" by doing
nothing, which should be never. ``random`` samples uniform actions from a generator
seeded by the episode's seed, so its outcomes are reproducible across runs and workers.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalharness.errors import UserInputError
from evalharness.policies.base import Policy


def _check_horizon(horizon: int) -> int:
    if not isinstance(horizon, int) or horizon < 1:
        raise UserInputError(f"policy.horizon={horizon!r} is not valid; allowed: an integer >= 1")
    return horizon


class ZeroPolicy(Policy):
    """No motion, gripper open (-1)."""

    name = "zero"

    def __init__(self, horizon: int = 1) -> None:
        self.horizon = _check_horizon(horizon)

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
        self.horizon = _check_horizon(horizon)
        if not 0.0 < float(scale) <= 1.0:
            raise UserInputError(f"policy.scale={scale!r} is not valid; allowed: 0 < scale <= 1")
        self.scale = float(scale)
        self._rng = np.random.default_rng(0)

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "horizon": self.horizon, "scale": self.scale}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._rng = np.random.default_rng(seed)

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        chunk = self._rng.uniform(-self.scale, self.scale, size=(self.horizon, 7))
        chunk[:, 6] = np.sign(chunk[:, 6]) + (chunk[:, 6] == 0)
        return chunk
