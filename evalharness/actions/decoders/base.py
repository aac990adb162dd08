"""What every decoder (policy output -> normalized action chunk) provides.

A decoder turns one policy output into an (H, D) float64 chunk in the model's normalized
action space, or raises :class:`~evalharness.errors.DecodeError`. Anything it tolerates
instead of raising (padding, clipping an id) it appends to ``events``, so the episode's
record shows it. The ``on_error`` fallback is not the decoder's business: the pipeline
applies it, which keeps each decoder a plain function of its input.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from evalharness.actions import _config

ON_ERROR_CHOICES = ("error", "zeros")

#: Keys every decoder config accepts, whatever the decoder.
COMMON_DEFAULTS: dict[str, Any] = {"name": None, "on_error": "error"}


class Decoder(abc.ABC):
    """Turns policy output into a normalized (H, D) chunk."""

    name: ClassVar[str]
    #: The decoder's own parameters and their defaults (``conf/decoder/<name>.yaml`` mirrors them).
    DEFAULTS: ClassVar[dict[str, Any]]

    horizon: int | None = None
    action_dim: int | None = None

    @classmethod
    def settings(cls, cfg: Mapping[str, Any] | None) -> dict[str, Any]:
        """``cfg`` merged over the defaults, unknown keys refused."""
        defaults = {**COMMON_DEFAULTS, **cls.DEFAULTS, "name": cls.name}
        merged = _config.merge(f"decoder {cls.name!r}", cfg, defaults)
        merged["on_error"] = _config.choice(f"decoder {cls.name!r}", "on_error", merged["on_error"],
                                            ON_ERROR_CHOICES)
        return merged

    @classmethod
    @abc.abstractmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> Decoder:
        """Build from a config dict (validated; mistakes raise UserInputError)."""

    @abc.abstractmethod
    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        """Policy output -> (H, D) float64 normalized chunk; DecodeError when impossible."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Name and every parameter that affects the result (JSON-serializable)."""
