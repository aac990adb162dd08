"""The episode record: the one line the result store keeps per finished episode.

Everything a summary, a table, a regression gate or a resume needs about an episode is in
this record, and nothing is recomputed from anywhere else. That is why the model is
strict (frozen, unknown fields rejected, invariants validated): a record that could be
half-wrong would make every number built on it untrustworthy, and a field typo in a
writer should fail loudly at write time rather than silently vanish from a summary.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["EpisodeRecord", "Outcome"]

Outcome = Literal["success", "failure", "error"]

_OPTIONAL_WHEN_NONE = ("perturbation", "control_key")

_Seconds = Field(ge=0.0, allow_inf_nan=False)


class EpisodeRecord(BaseModel):
    """One evaluated episode.

    ``success`` is the policy's verdict; ``error_kind`` (an :class:`~evalharness.errors.
    EpisodeError` kind) marks an episode that could not reach a verdict at all. The two are
    exclusive: an errored episode always has ``success=False`` and is counted as an error,
    never as a failure (see :attr:`outcome`).
    """

    model_config = ConfigDict(frozen=True, extra="forbid", strict=False)

    key: str = Field(min_length=1, description="Stable hash of everything that determines the outcome.")
    suite: str = Field(min_length=1)
    task_index: int = Field(ge=0)
    task_name: str
    instruction: str
    init_state: int = Field(ge=0)
    seed: int
    success: bool
    steps: int = Field(ge=0, description="Policy-phase control steps executed.")
    error_kind: str | None = None
    error_message: str | None = None
    wall_time_s: float = _Seconds
    policy_time_s: float = _Seconds
    env_time_s: float = _Seconds
    render_time_s: float = _Seconds
    video: str | None = Field(default=None, description="Path relative to the run directory.")
    action_fingerprint: str = Field(
        pattern=r"^[0-9a-f]*$",
        description="Lowercase hex digest of the executed actions (empty if none ran).",
    )
    events: list[str] = Field(default_factory=list)
    policy_stats: dict[str, float] = Field(
        default_factory=dict, description="What the policy reported about the episode (Policy.episode_stats)."
    )
    attempts: int = Field(default=1, ge=1)
    perturbation: dict[str, Any] | None = Field(
        default=None,
        description="perturb group: the dimensions' configs, levels and parameters applied (None: unperturbed).",
    )
    control_key: str | None = Field(default=None, description="Key of this perturbed episode's clean twin.")

    @model_validator(mode="after")
    def _errors_are_not_verdicts(self) -> "EpisodeRecord":
        # An episode that errored has no verdict; claiming success for it would count a
        # crash as a solved task.
        if self.error_kind is not None:
            if not self.error_kind:
                raise ValueError("error_kind must be None or a non-empty string")
            if self.success:
                raise ValueError("an errored episode (error_kind set) cannot have success=True")
        return self

    @property
    def outcome(self) -> Outcome:
        """``"error"`` when the episode could not run to a verdict, else success/failure."""
        if self.error_kind is not None:
            return "error"
        return "success" if self.success else "failure"

    def to_json_line(self) -> str:
        """Compact one-line JSON (no trailing newline), the store's on-disk form."""
        # The perturb fields are left out when unset, so unperturbed runs write the same
        # lines as before the perturb group existed.
        return self.model_dump_json(exclude={k for k in _OPTIONAL_WHEN_NONE if getattr(self, k) is None})

    @classmethod
    def from_json_line(cls, line: str | bytes) -> "EpisodeRecord":
        """Parse and validate one stored line."""
        return cls.model_validate_json(line)
