"""MinT's documented uniform action tokens: token ``i`` -> ``i / 256 - 1.0``.

MinT's VLA page documents OpenPI FAST output tokens as one token per action dimension per
time step, token values 0-511, and "token i -> continuous value (i / 256) - 1.0, then
rescale to the robot's action range". This module implements that formula as written,
with its constants as parameters (``divisor`` 256, ``offset`` 1.0, token range
``[token_low, token_high)`` = [0, 512)), because the page is the only specification.

What the page leaves ambiguous, and what this module decided:

- **Levels vs. range.** The parameter table says ``quantization_levels`` 256 ("8-bit per
  dimension") yet tokens span 0-511. The two cannot both hold. We follow the formula and
  the stated token range: 512 tokens map onto [-1, 1) in steps of 1/256 (so 9 bits), token
  511 -> 0.99609375, and +1.0 itself is not representable (the encoder clips or refuses).
- **Layout.** The page says "one token per action dimension per time step" but not the
  order. We read it time-major: token ``t * action_dim + d`` is dimension ``d`` of step
  ``t``, the order a per-step autoregressive model would emit.
- **action_dim.** The page's default is 2 (dx, dy); LIBERO needs 7, which is our default.
- **Rescaling.** "then rescale to the robot's action range" does not say with which
  statistics; that is the pipeline's normalize stage, chosen by configuration.
- **Malformed output.** Nothing is said about tokens outside 0-511 or a length that is
  not a whole number of steps; we reject both (DecodeError) rather than guess.
- **Not what pi0-FAST does.** MinT's server sources decode pi0-FAST with FAST (DCT + BPE,
  see :mod:`evalharness.actions.decoders.fast`), not with this scheme.
"""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
from pydantic import ValidationInfo, field_validator

from evalharness.actions import _arrays
from evalharness.actions.decoders.base import Decoder, DecoderSettings
from evalharness.config.fields import Count, FiniteFloat, Int, OptionalCount, PositiveFloat
from evalharness.errors import DecodeError

DIVISOR = 256.0
OFFSET = 1.0
TOKEN_LOW = 0
TOKEN_HIGH = 512  # exclusive
ACTION_DIM = 7

_WHERE = "mint_uniform"


def decode_tokens(tokens: Any, *, action_dim: int = ACTION_DIM, divisor: float = DIVISOR,
                  offset: float = OFFSET, token_low: int = TOKEN_LOW, token_high: int = TOKEN_HIGH,
                  horizon: int | None = None) -> np.ndarray:
    """Tokens (time-major) -> (H, action_dim) chunk of ``token / divisor - offset``.

    Raises DecodeError for a token outside ``[token_low, token_high)``, a length that is
    not a positive multiple of ``action_dim``, or (when ``horizon`` is set) a step count
    other than ``horizon``.
    """
    ids = _arrays.token_ids(tokens, _WHERE)
    if ids.size == 0:
        raise DecodeError(f"{_WHERE}: got no tokens; expected one token per dimension per step "
                          f"(a positive multiple of action_dim {action_dim})")
    bad = np.flatnonzero((ids < token_low) | (ids >= token_high))
    if bad.size:
        i = int(bad[0])
        raise DecodeError(f"{_WHERE}: token {int(ids[i])} at position {i} is out of range; "
                          f"allowed: {token_low} <= token < {token_high}")
    if ids.size % action_dim:
        raise DecodeError(f"{_WHERE}: {ids.size} tokens is not a multiple of action_dim {action_dim}; "
                          "expected one token per dimension per step")
    steps = ids.size // action_dim
    if horizon is not None and steps != horizon:
        raise DecodeError(f"{_WHERE}: {ids.size} tokens make {steps} steps; the configured horizon is "
                          f"{horizon} ({horizon * action_dim} tokens)")
    return (ids.astype(np.float64) / divisor - offset).reshape(steps, action_dim)


def encode_chunk(chunk: Any, *, divisor: float = DIVISOR, offset: float = OFFSET,
                 token_low: int = TOKEN_LOW, token_high: int = TOKEN_HIGH, clip: bool = False) -> np.ndarray:
    """(H, D) chunk -> time-major tokens ``round((x + offset) * divisor)``.

    The inverse of :func:`decode_tokens` within half a quantization step (0.5 / divisor)
    for values in ``[token_low / divisor - offset, (token_high - 1) / divisor - offset]``.
    Values outside that interval raise ValueError unless ``clip`` is set.
    """
    arr = np.asarray(chunk, dtype=np.float64)
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise ValueError(f"expected a finite (H, D) chunk; got shape {arr.shape}")
    tokens = np.rint((arr + offset) * divisor).astype(np.int64).reshape(-1)
    outside = (tokens < token_low) | (tokens >= token_high)
    if outside.any() and not clip:
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(f"value {float(arr.reshape(-1)[i])} maps to token {int(tokens[i])}, outside "
                         f"[{token_low}, {token_high}); pass clip=True to saturate")
    return np.clip(tokens, token_low, token_high - 1)


class MintUniformSettings(DecoderSettings):
    """``conf/decoder/mint_uniform.yaml``."""

    action_dim: Count
    horizon: OptionalCount  # null: any whole number of steps
    divisor: PositiveFloat
    offset: FiniteFloat
    token_low: Int
    token_high: Int  # exclusive

    @field_validator("token_high")
    @classmethod
    def _above_token_low(cls, value: int, info: ValidationInfo) -> int:
        low = info.data.get("token_low")
        if low is not None and value <= low:
            raise ValueError(f"allowed: an integer > token_low ({low})")
        return value


class MintUniformDecoder(Decoder):
    """Configured :func:`decode_tokens`."""

    name: ClassVar[str] = "mint_uniform"
    Settings: ClassVar[type[MintUniformSettings]] = MintUniformSettings

    def __init__(self, *, action_dim: int = ACTION_DIM, horizon: int | None = None, divisor: float = DIVISOR,
                 offset: float = OFFSET, token_low: int = TOKEN_LOW, token_high: int = TOKEN_HIGH) -> None:
        self.action_dim = action_dim
        self.horizon = horizon
        self.divisor = divisor
        self.offset = offset
        self.token_low = token_low
        self.token_high = token_high

    @classmethod
    def from_settings(cls, settings: MintUniformSettings) -> MintUniformDecoder:
        return cls(action_dim=settings.action_dim, horizon=settings.horizon, divisor=settings.divisor,
                   offset=settings.offset, token_low=settings.token_low, token_high=settings.token_high)

    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        return decode_tokens(output, action_dim=self.action_dim, divisor=self.divisor, offset=self.offset,
                             token_low=self.token_low, token_high=self.token_high, horizon=self.horizon)

    def encode(self, chunk: Any, *, clip: bool = False) -> np.ndarray:
        """Inverse of :meth:`decode` (for tests and for building fixtures)."""
        return encode_chunk(chunk, divisor=self.divisor, offset=self.offset, token_low=self.token_low,
                            token_high=self.token_high, clip=clip)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "action_dim": self.action_dim, "horizon": self.horizon,
                "divisor": self.divisor, "offset": self.offset,
                "token_low": self.token_low, "token_high": self.token_high, "layout": "time-major"}
