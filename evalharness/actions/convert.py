"""Converters: the last steps from unnormalized model actions to LIBERO's action convention.

Each converter is one small named step, listed in order under ``steps`` in the convert
config (the way openpi lists its output transforms):

- ``delta_to_absolute``: add the **raw** (unnormalized) robot state's first ``delta_dims``
  (6) values to action dims ``0 .. delta_dims - 1``. openpi's LIBERO pi0 / pi0-FAST
  configs were trained on actions made relative to the state, so this undoes that; pi0.5
  does not need it. Needs the state the pipeline is called with.
- ``openvla_gripper``: OpenVLA's training data had the gripper as 0 = close, 1 = open, while
  LIBERO wants -1 = open, +1 = close: ``g = -sign(2 g - 1)`` on dim ``gripper_dim`` (6).
  (A value of exactly 0.5 gives 0, as in OpenVLA.)
- ``keep_first_7``: drop every dim after LIBERO's 7 (padding to the model's action dim).
- ``clip``: clip every value to [-1, 1]; ``clip: true`` appends this step at the end.
  Only where the protocol says so; the step records how many values it changed.

The convert group's part is :class:`ConvertSteps` (settings: :class:`ConvertSettings`);
its presets are the files ``conf/convert/*.yaml`` and nothing else: ``none`` (no step),
``openpi_libero`` (delta_to_absolute, keep_first_7), ``openvla`` (keep_first_7,
openvla_gripper).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, field_validator

from evalharness.config.fields import Bool, Count, NonNegativeInt
from evalharness.config.parts import load_part, part_names, plain, resolve_part
from evalharness.errors import DecodeError, UserInputError

LIBERO_ACTION_DIM = 7


class Converter(abc.ABC):
    """One named step on the (H, D) chunk in robot units."""

    name: ClassVar[str]

    @abc.abstractmethod
    def __call__(self, chunk: np.ndarray, state: np.ndarray | None, events: list[str]) -> np.ndarray:
        """Return a new array; never modify ``chunk`` in place."""

    def describe(self) -> dict[str, Any]:
        return {"name": self.name}


class DeltaToAbsolute(Converter):
    """``actions[:, :n] += raw_state[:n]`` (openpi LIBERO pi0 / pi0-FAST)."""

    name: ClassVar[str] = "delta_to_absolute"

    def __init__(self, dims: int = 6) -> None:
        self.dims = dims

    def __call__(self, chunk: np.ndarray, state: np.ndarray | None, events: list[str]) -> np.ndarray:
        if state is None:
            raise UserInputError(f"convert step {self.name!r} needs the raw robot state; the pipeline was "
                                 "called without state= (use a convert config without this step for "
                                 "policies that receive no state)")
        raw = np.asarray(state, dtype=np.float64).reshape(-1)
        if raw.size < self.dims:
            raise DecodeError(f"{self.name}: the state has {raw.size} values; expected at least "
                              f"delta_dims = {self.dims}")
        if not np.isfinite(raw[: self.dims]).all():
            i = int(np.flatnonzero(~np.isfinite(raw[: self.dims]))[0])
            raise DecodeError(f"{self.name}: state value {float(raw[i])} at index {i} is not finite; "
                              "the state added to the actions must be finite")
        if chunk.shape[1] < self.dims:
            raise DecodeError(f"{self.name}: the chunk has {chunk.shape[1]} dims per step; expected at least "
                              f"delta_dims = {self.dims}")
        out = chunk.copy()
        out[:, : self.dims] += raw[: self.dims]
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "dims": self.dims}


class OpenVLAGripper(Converter):
    """Gripper [0 close, 1 open] -> LIBERO's [-1 open, +1 close]: ``-sign(2 g - 1)``."""

    name: ClassVar[str] = "openvla_gripper"

    def __init__(self, dim: int = 6) -> None:
        self.dim = dim

    def __call__(self, chunk: np.ndarray, state: np.ndarray | None, events: list[str]) -> np.ndarray:
        if chunk.shape[1] <= self.dim:
            raise DecodeError(f"{self.name}: the chunk has {chunk.shape[1]} dims per step; gripper_dim "
                              f"{self.dim} does not exist")
        out = chunk.copy()
        out[:, self.dim] = -np.sign(2.0 * out[:, self.dim] - 1.0)
        return out

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "gripper_dim": self.dim}


class KeepFirst7(Converter):
    """Keep LIBERO's 7 action dims (drop padding to the model's action dim)."""

    name: ClassVar[str] = "keep_first_7"

    def __call__(self, chunk: np.ndarray, state: np.ndarray | None, events: list[str]) -> np.ndarray:
        if chunk.shape[1] < LIBERO_ACTION_DIM:
            raise DecodeError(f"{self.name}: the chunk has {chunk.shape[1]} dims per step; LIBERO needs "
                              f"{LIBERO_ACTION_DIM}")
        return chunk[:, :LIBERO_ACTION_DIM].copy()


class Clip(Converter):
    """Clip to [-1, 1], recording how many values were outside."""

    name: ClassVar[str] = "clip"
    LOW, HIGH = -1.0, 1.0

    def __call__(self, chunk: np.ndarray, state: np.ndarray | None, events: list[str]) -> np.ndarray:
        outside = int(((chunk < self.LOW) | (chunk > self.HIGH)).sum())
        if outside:
            worst = float(chunk.flat[np.argmax(np.abs(chunk))])
            events.append(f"clip: {outside} of {chunk.size} action values outside [-1, 1] clipped "
                          f"(most extreme: {worst:.6g})")
        return np.clip(chunk, self.LOW, self.HIGH)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "low": self.LOW, "high": self.HIGH}


STEP_NAMES = ("delta_to_absolute", "openvla_gripper", "keep_first_7", "clip")


class ConvertSettings(BaseModel):
    """``conf/convert/<name>.yaml``: the ordered steps and their parameters."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None  # recorded in the identity as the convert config's name
    steps: list[Literal["delta_to_absolute", "openvla_gripper", "keep_first_7", "clip"]]
    delta_dims: Count  # delta_to_absolute adds raw state[0:delta_dims]
    gripper_dim: NonNegativeInt  # openvla_gripper's dim
    clip: Bool  # true appends a clip to [-1, 1]

    @field_validator("steps", mode="before")
    @classmethod
    def _a_list(cls, value: Any) -> Any:
        if value is None:
            return []
        if isinstance(value, (str, bytes, Mapping)) or not hasattr(value, "__iter__"):
            raise ValueError(f"allowed: a list of step names ({', '.join(STEP_NAMES)})")
        return list(value)


class ConvertSteps:
    """The convert group's part: the ordered converter steps a convert config lists."""

    Settings: ClassVar[type[ConvertSettings]] = ConvertSettings

    def __init__(self, converters: list[Converter], name: str | None = None) -> None:
        self.converters = list(converters)
        self.name = name

    @classmethod
    def from_settings(cls, settings: ConvertSettings) -> ConvertSteps:
        out: list[Converter] = []
        for step in settings.steps:
            if step == "delta_to_absolute":
                out.append(DeltaToAbsolute(settings.delta_dims))
            elif step == "openvla_gripper":
                out.append(OpenVLAGripper(settings.gripper_dim))
            elif step == "keep_first_7":
                out.append(KeepFirst7())
            else:
                out.append(Clip())
        if settings.clip and not (out and isinstance(out[-1], Clip)):
            out.append(Clip())
        return cls(out, settings.name)


def build_convert(cfg: Any) -> ConvertSteps:
    """The convert steps ``cfg`` chooses (``_target_``, or ``name`` -> ``conf/convert/<name>.yaml``;
    default ``none``).

    A ``name`` that is no file in ``conf/convert/`` labels the steps the config lists (over
    ``none``'s defaults), as convert configs always could: a checkpoint may declare
    ``convert: {name: my_robot, steps: [keep_first_7]}``.
    """
    given = plain(cfg, "convert config")
    name = given.get("name")
    if "_target_" not in given and isinstance(name, str) and name not in part_names("convert"):
        given = {**resolve_part("convert", {k: v for k, v in given.items() if k != "name"}), "name": name}
    cls, settings = load_part("convert", given, ConvertSteps)
    return cls.from_settings(settings)


def build_converters(cfg: Any) -> list[Converter]:
    """The ordered converter steps described by a convert config."""
    return build_convert(cfg).converters
