"""The ``none`` decoder: the policy already returns a continuous (H, D) chunk.

Policies such as pi0 / pi0.5 (and pi0-FAST served by MinT's action sessions) return
normalized floats, so there is nothing to decode; this step only checks the chunk (2-D,
finite, and the configured horizon / width when they are set) so that a malformed output
is reported as a decode error rather than reaching the simulator.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np

from evalharness.actions import _arrays
from evalharness.actions.decoders.base import Decoder, DecoderSettings
from evalharness.config.fields import OptionalCount
from evalharness.errors import DecodeError


class PassthroughSettings(DecoderSettings):
    """``conf/decoder/none.yaml``."""

    horizon: OptionalCount  # if set, the chunk must have exactly this many steps
    action_dim: OptionalCount  # if set, the chunk must have exactly this many dims per step


class PassthroughDecoder(Decoder):
    """Accepts a float chunk as is (after checking it)."""

    name: ClassVar[str] = "none"
    Settings: ClassVar[type[PassthroughSettings]] = PassthroughSettings

    def __init__(self, *, horizon: int | None = None, action_dim: int | None = None) -> None:
        self.horizon = horizon
        self.action_dim = action_dim

    @classmethod
    def from_settings(cls, settings: PassthroughSettings) -> PassthroughDecoder:
        return cls(horizon=settings.horizon, action_dim=settings.action_dim)

    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        chunk = _arrays.float_chunk(output, "decoder 'none'")
        if self.horizon is not None and chunk.shape[0] != self.horizon:
            raise DecodeError(f"decoder 'none': chunk has {chunk.shape[0]} steps; "
                              f"the configured horizon is {self.horizon}")
        if self.action_dim is not None and chunk.shape[1] != self.action_dim:
            raise DecodeError(f"decoder 'none': chunk has {chunk.shape[1]} dims per step; "
                              f"the configured action_dim is {self.action_dim}")
        return chunk

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "horizon": self.horizon, "action_dim": self.action_dim}
