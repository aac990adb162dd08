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

Presets (``conf/convert/*.yaml`` mirror :data:`PRESETS`): ``none`` (no step),
``openpi_libero`` (delta_to_absolute, keep_first_7), ``openvla`` (keep_first_7,
openvla_gripper).
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from evalharness.actions import _config
from evalharness.errors import DecodeError, UserInputError, choices_error

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

DEFAULTS: dict[str, Any] = {"name": None, "steps": [], "delta_dims": 6, "gripper_dim": 6, "clip": False}

PRESETS: dict[str, dict[str, Any]] = {
    "none": {"name": "none", "steps": [], "delta_dims": 6, "gripper_dim": 6, "clip": False},
    "openpi_libero": {"name": "openpi_libero", "steps": ["delta_to_absolute", "keep_first_7"],
                      "delta_dims": 6, "gripper_dim": 6, "clip": False},
    "openvla": {"name": "openvla", "steps": ["keep_first_7", "openvla_gripper"],
                "delta_dims": 6, "gripper_dim": 6, "clip": False},
}


def build_converters(cfg: Mapping[str, Any] | None) -> list[Converter]:
    """The ordered converter steps described by a convert config."""
    s = _config.merge("convert", cfg, DEFAULTS)
    steps = s["steps"] if s["steps"] is not None else []
    if isinstance(steps, (str, bytes, Mapping)) or not hasattr(steps, "__iter__"):
        raise UserInputError(f"convert steps {steps!r} is not valid; allowed: a list of step names "
                             f"({', '.join(STEP_NAMES)})")
    delta_dims = _config.integer("convert", "delta_dims", s["delta_dims"], minimum=1)
    gripper_dim = _config.integer("convert", "gripper_dim", s["gripper_dim"], minimum=0)
    clip = _config.boolean("convert", "clip", s["clip"])
    out: list[Converter] = []
    for step in list(steps):
        if step == "delta_to_absolute":
            out.append(DeltaToAbsolute(delta_dims))
        elif step == "openvla_gripper":
            out.append(OpenVLAGripper(gripper_dim))
        elif step == "keep_first_7":
            out.append(KeepFirst7())
        elif step == "clip":
            out.append(Clip())
        else:
            raise choices_error("convert step", step, list(STEP_NAMES))
    if clip and not (out and isinstance(out[-1], Clip)):
        out.append(Clip())
    return out
