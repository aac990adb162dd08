"""What every decoder (policy output -> normalized action chunk) provides.

A decoder turns one policy output into an (H, D) float64 chunk in the model's normalized
action space, or raises :class:`~evalharness.errors.DecodeError`. Anything it tolerates
instead of raising (padding, clipping an id) it appends to ``events``, so the episode's
record shows it. The ``on_error`` fallback is not the decoder's business: the pipeline
applies it, which keeps each decoder a plain function of its input.

Its settings are one pydantic model, a subclass of :class:`DecoderSettings` (which adds the
keys every decoder accepts: ``name``, ``on_error``); ``conf/decoder/<name>.yaml`` names the
class by ``_target_`` and spells out every setting (see :mod:`evalharness.config.parts`).
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

ON_ERROR_CHOICES = ("error", "zeros")


class DecoderSettings(BaseModel):
    """The keys every decoder config accepts, whatever the decoder."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str | None = None  # the config's name (conf/decoder/<name>.yaml); the decoder records its own
    on_error: Literal["error", "zeros"] = "error"  # zeros: the pipeline replaces a failed decode by zeros


class Decoder(abc.ABC):
    """Turns policy output into a normalized (H, D) chunk."""

    name: ClassVar[str]
    #: Its settings model (``conf/decoder/<name>.yaml`` spells out every field).
    Settings: ClassVar[type[DecoderSettings]]

    horizon: int | None = None
    action_dim: int | None = None

    @classmethod
    @abc.abstractmethod
    def from_settings(cls, settings: Any) -> Decoder:
        """Build from validated settings (a file it needs that is missing raises UserInputError)."""

    @abc.abstractmethod
    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        """Policy output -> (H, D) float64 normalized chunk; DecodeError when impossible."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """Name and every parameter that affects the result (JSON-serializable)."""
