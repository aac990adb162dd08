"""Evaluation protocols: the named bundles of settings that make numbers comparable.

Published LIBERO numbers differ in small settings (settle steps, max steps, how many
actions of a chunk run before replanning, image preprocessing) that move scores by
points. A :class:`Protocol` holds all of them; the presets live in ``conf/protocol/`` and
are transcribed from ``docs/reference/protocols.md``. The resolved protocol, with any
override, is written into every run's metadata.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from envs.libero.catalog import SUITES
from envs.libero.env import CAMERAS, LIBERO_CAMERAS
from evalharness.config.validation import validate_settings
from evalharness.config.parts import check_steps


class Protocol(BaseModel):
    """Every setting of an evaluation protocol that can change a success rate."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    settle_steps: int = Field(ge=0, description="steps with settle_action before the policy acts (not counted)")
    settle_action: list[float] = Field(min_length=7, max_length=7)
    max_steps: dict[str, int] = Field(description="max policy steps per suite")
    replan_steps: int = Field(ge=1, description="actions executed from each chunk before querying again")
    render_size: int = Field(ge=8, le=2048, description="camera render size in pixels (square)")
    image_transforms: list[Any] = Field(default_factory=list)
    cameras: list[str] = Field(description="real cameras given to the policy; others are zeros")
    state: bool = Field(True, description="whether the policy receives the 8-D proprio state")
    seed: int = Field(0, ge=0, description="run seed: fixture layout and per-episode policy seeds")
    video_fps: int = Field(10, ge=1)
    episodes_per_task: int = Field(
        50, ge=1, le=50,
        description="episodes per task (init states 0..n-1) the peer publishes with: the default of the LIBERO "
                    "suites' episodes_per_task, which a suite override replaces")

    def context(self) -> dict[str, Any]:
        """The settings that can change an episode's outcome, for the run context hash.

        ``episodes_per_task`` only chooses which episodes a run plans (each episode's key
        holds its init state), so it is left out: a run with more episodes per task
        resumes the episodes a smaller one ran, under the same keys.
        """
        return self.model_dump(exclude={"episodes_per_task"})

    @field_validator("max_steps")
    @classmethod
    def _all_suites(cls, value: dict[str, int]) -> dict[str, int]:
        missing = [s for s in SUITES if s not in value]
        if missing:
            raise ValueError(f"max_steps lacks suites {missing}")
        if any(v < 1 for v in value.values()):
            raise ValueError("max_steps must be >= 1")
        return value

    @field_validator("cameras")
    @classmethod
    def _known_cameras(cls, value: list[str]) -> list[str]:
        bad = [c for c in value if c not in LIBERO_CAMERAS]
        if bad:
            raise ValueError(f"allowed: {', '.join(LIBERO_CAMERAS)}")
        return value

    @field_validator("image_transforms")
    @classmethod
    def _valid_transforms(cls, value: list[Any]) -> list[Any]:
        # conf/image_transform/<name>.yaml: an unknown step or a bad setting is one line
        check_steps("image_transform", value, where="protocol.image_transforms")
        return value


def load_protocol(config: dict[str, Any]) -> Protocol:
    """Validate a protocol config; a bad value gives one line naming key, value and rule."""
    return validate_settings(Protocol, config, "protocol")


__all__ = ["Protocol", "load_protocol", "CAMERAS"]
