"""The contract of one perturbation dimension, and the model-edit bookkeeping they share.

A dimension never keeps per-episode state: :meth:`Perturbation.draw` returns the episode's
parameters (plain JSON, so they can be hashed into the episode key and stored in its
record), and the hooks receive them back. That is what makes a recorded episode
replayable from its record alone.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, ConfigDict, PlainValidator

from envs.errors import UserInputError

if TYPE_CHECKING:
    from envs.libero.env import LiberoEnv

LEVELS = range(1, 6)


class PlacementImpossible(Exception):
    """No candidate satisfied a dimension's constraints (e.g. no collision-free spot)."""


def check_level(level: Any, where: str) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        raise UserInputError(f"{where}={level!r} is not valid; allowed: an integer level 1..5")
    return level


def _level(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value not in LEVELS:
        raise ValueError("allowed: an integer level 1..5")
    return value


def subset_of(choices: Sequence[str]) -> PlainValidator:
    """A settings field holding some of ``choices`` (a list), or null for all of them."""

    def check(value: Any) -> tuple[str, ...] | None:
        if value is None:
            return None
        items = [value] if isinstance(value, str) else list(value) if isinstance(value, (list, tuple)) else None
        if items is None or any(item not in choices for item in items):
            raise ValueError(f"allowed: a subset of {list(choices)}")
        return tuple(items) or None

    return PlainValidator(check)


def number(*, nullable: bool) -> PlainValidator:
    """A finite number as a float (or null when ``nullable``)."""

    def check(value: Any) -> float | None:
        if value is None and nullable:
            return None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not np.isfinite(value):
            raise ValueError("allowed: null or a number" if nullable else "allowed: a number")
        return value

    return PlainValidator(check)


class PerturbationSettings(BaseModel):
    """The key every dimension takes; a dimension's own settings model adds its keys.

    The harness validates a dimension's config with its ``Settings`` (one line naming the
    key, the value and what is allowed) and then builds the class from the validated
    values, so the constructors trust their arguments.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    level: Annotated[int | None, PlainValidator(_level)] = None  # null = the group's perturb.level


def band(rng: np.random.Generator, level: int, low: float, high: float) -> float:
    """A magnitude in level ``level``'s fifth of [low, high]: level 1 the gentlest fifth."""
    step = (high - low) / 5.0
    return float(rng.uniform(low + step * (level - 1), low + step * level))


class ModelPatch:
    """Writes into the compiled model's arrays and remembers the originals to undo them."""

    def __init__(self) -> None:
        self._saved: list[tuple[np.ndarray, Any, np.ndarray]] = []
        self._callbacks: list[Any] = []

    def set(self, array: np.ndarray, index: Any, value: Any) -> None:
        self._saved.append((array, index, np.array(array[index], copy=True)))
        array[index] = value

    def save_attr(self, obj: Any, name: str) -> None:
        """Remember a Python attribute (e.g. the controller's null-space target)."""
        self._saved.append((obj, name, np.array(getattr(obj, name), copy=True)))  # type: ignore[arg-type]

    def after_undo(self, callback: Any) -> None:
        """Run ``callback()`` once the values are restored (e.g. re-upload a mesh to the GPU)."""
        self._callbacks.append(callback)

    def undo(self) -> None:
        for target, index, original in reversed(self._saved):
            if isinstance(index, str):
                setattr(target, index, original)
            else:
                target[index] = original
        self._saved.clear()
        callbacks, self._callbacks = self._callbacks, []
        for callback in callbacks:
            callback()


class Perturbation:
    """One dimension. Subclasses set ``name``, ``physical`` and override the hooks they need.

    ``level`` None means "the group's ``perturb.level``" (filled in by the harness).
    ``physical`` dimensions change the physics (contacts, the start state); the episode's
    validity is checked only when one is present.
    """

    name = "perturbation"
    physical = False
    #: Its settings model (``conf/perturb/<name>.yaml`` spells out every field).
    Settings: ClassVar[type[PerturbationSettings]] = PerturbationSettings

    def __init__(self, level: int | None = None) -> None:
        self.level = None if level is None else check_level(level, f"perturb.{self.name}.level")

    def with_level(self, level: int) -> "Perturbation":
        if self.level is None:
            self.level = check_level(level, "perturb.level")
        return self

    # ----- per episode ----------------------------------------------------------------

    def draw(self, rng: np.random.Generator, task: Any) -> dict[str, Any]:
        """This episode's parameters (JSON-able), from the episode's RNG and the task."""
        return {}

    def apply(self, env: "LiberoEnv", params: dict[str, Any], patch: ModelPatch) -> dict[str, Any]:
        """Edit the model / state after the init state is set; returns resolved facts to record."""
        return {}

    def corrupt(self, images: dict[str, np.ndarray], params: dict[str, Any], frame: int) -> dict[str, np.ndarray]:
        """The policy's images after rendering (frame counts renders since reset)."""
        return images

    def instruction(self, params: dict[str, Any]) -> str | None:
        return None

    def after_step(self, env: "LiberoEnv", params: dict[str, Any], state: dict[str, Any], step: int) -> bool:
        """Called after each policy step (``step`` counts from 1); True when the state was edited."""
        return False
