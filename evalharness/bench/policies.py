"""The bench's stand-in for a VLA: zero actions, but it looks at the cameras it is given.

A policy that ignored its images would let a lazy loop skip rendering; this one reads
every pixel of each camera it declares (a checksum, folded into its ``episode_stats``),
so the bench measures a loop that must render them. Chunks of ``horizon`` actions with
the gripper open, like openpi's example with a model returning 10-step chunks.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from evalharness.errors import UserInputError
from evalharness.policies.base import Policy

CAMERA_NAMES = ("base_0_rgb", "left_wrist_0_rgb")


class CameraZeroPolicy(Policy):
    """Zero arm motion, gripper open; reads the pixels of ``cameras`` at every query."""

    name = "bench_camera_zero"

    def __init__(self, horizon: int = 10, cameras: list[str] | tuple[str, ...] = CAMERA_NAMES) -> None:
        if not isinstance(horizon, int) or horizon < 1:
            raise UserInputError(f"policy.horizon={horizon!r} is not valid; allowed: an integer >= 1")
        unknown = sorted(set(cameras) - set(CAMERA_NAMES))
        if unknown:
            raise UserInputError(f"policy.cameras has {unknown}; allowed: {list(CAMERA_NAMES)}")
        self.horizon = horizon
        self.cameras = tuple(cameras)
        self._pixel_sum = 0

    def identity(self) -> dict[str, Any]:
        return {"name": self.name, "horizon": self.horizon, "cameras": list(self.cameras)}

    def reset(self, instruction: str, *, seed: int, init_state: int | None = None, attempt: int = 1) -> None:
        self._pixel_sum = 0

    def act(self, observation: dict[str, Any]) -> np.ndarray:
        for cam in self.cameras:
            self._pixel_sum += int(np.asarray(observation["images"][cam], dtype=np.uint8).sum(dtype=np.uint64))
        chunk = np.zeros((self.horizon, 7))
        chunk[:, 6] = -1.0
        return chunk

    def episode_stats(self) -> dict[str, float]:
        return {"pixel_sum": float(self._pixel_sum)}
