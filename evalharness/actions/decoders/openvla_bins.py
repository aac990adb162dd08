"""OpenVLA's action bins: 256 uniform bins over [-1, 1] in the last ids of Llama-2's vocabulary.

OpenVLA discretizes each normalized action value with 256 edges evenly spaced over
[-1, 1] (so 255 bins, whose centres are the decoded values) and writes bin ``k`` as token
``V - k`` with ``V = 32000``, the Llama-2 vocabulary size; 7 consecutive tokens are one
7-D action. Decoding is ``centres[clip(V - id - 1, 0, 254)]``.

The clip hides two different things: id ``V - 256`` (a value of exactly +1.0, which
``digitize`` puts past the last edge) legitimately lands on the last centre, but ids
outside ``[V - 256, V)`` are not action tokens at all (text, or the padding rows of the
resized embedding) and OpenVLA silently maps them to an end bin. ``out_of_range: clip``,
the default, reproduces OpenVLA (so ``protocol=openvla`` acts where OpenVLA acts) and
records every such action as a ``decode_event``, counted per episode and in the summary,
so malformed output is visible rather than papered over; ``out_of_range: error`` refuses it
with a DecodeError instead.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

import numpy as np
from pydantic import ValidationInfo, field_validator

from evalharness.actions import _arrays
from evalharness.actions.decoders.base import Decoder, DecoderSettings
from evalharness.config.fields import Count, OptionalCount, at_least
from evalharness.errors import DecodeError

LLAMA2_VOCAB_SIZE = 32000
N_BINS = 256
ACTION_DIM = 7

_WHERE = "openvla_bins"


def bin_edges(n_bins: int = N_BINS) -> np.ndarray:
    """The ``n_bins`` edges evenly spaced over [-1, 1]."""
    return np.linspace(-1.0, 1.0, n_bins)


def bin_centres(n_bins: int = N_BINS) -> np.ndarray:
    """The ``n_bins - 1`` centres between consecutive edges: the values ids decode to."""
    edges = bin_edges(n_bins)
    return (edges[:-1] + edges[1:]) / 2.0


def encode_chunk(chunk: Any, *, vocab_size: int = LLAMA2_VOCAB_SIZE, n_bins: int = N_BINS) -> np.ndarray:
    """(H, D) normalized chunk -> time-major ids ``V - digitize(clip(a, -1, 1), edges)``."""
    arr = np.asarray(chunk, dtype=np.float64)
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise ValueError(f"expected a finite (H, D) chunk; got shape {arr.shape}")
    bins = np.digitize(np.clip(arr, -1.0, 1.0), bin_edges(n_bins))
    return (vocab_size - bins).astype(np.int64).reshape(-1)


def decode_tokens(tokens: Any, *, vocab_size: int = LLAMA2_VOCAB_SIZE, n_bins: int = N_BINS,
                  action_dim: int = ACTION_DIM, horizon: int | None = None,
                  out_of_range: str = "clip", events: list[str] | None = None) -> np.ndarray:
    """Ids (time-major, ``action_dim`` per step) -> (H, action_dim) chunk of bin centres."""
    ids = _arrays.token_ids(tokens, _WHERE)
    if ids.size == 0:
        raise DecodeError(f"{_WHERE}: got no tokens; expected {action_dim} per action")
    if ids.size % action_dim:
        raise DecodeError(f"{_WHERE}: {ids.size} tokens is not a multiple of action_dim {action_dim}; "
                          "expected one token per dimension per step")
    steps = ids.size // action_dim
    if horizon is not None and steps != horizon:
        raise DecodeError(f"{_WHERE}: {ids.size} tokens make {steps} steps; the configured horizon is "
                          f"{horizon} ({horizon * action_dim} tokens)")
    low, high = vocab_size - n_bins, vocab_size  # valid ids: [low, high)
    outside = np.flatnonzero((ids < low) | (ids >= high))
    if outside.size:
        i = int(outside[0])
        rule = f"allowed: {low} <= id < {high} (the last {n_bins} ids of a {vocab_size}-token vocabulary)"
        if out_of_range == "error":
            raise DecodeError(f"{_WHERE}: id {int(ids[i])} at position {i} is not an action token; {rule}")
        if events is not None:
            events.append(f"decode_event: {_WHERE}: {outside.size} of {ids.size} ids outside [{low}, {high}) clipped to the "
                          f"nearest end bin as OpenVLA does (first: id {int(ids[i])} at position {i})")
    centres = bin_centres(n_bins)
    index = np.clip(vocab_size - ids - 1, 0, centres.size - 1)
    return centres[index].reshape(steps, action_dim)


class OpenVLABinsSettings(DecoderSettings):
    """``conf/decoder/openvla_bins.yaml``."""

    action_dim: Count
    horizon: OptionalCount  # null: any whole number of actions
    n_bins: Annotated[int, at_least(2)]
    vocab_size: Count
    out_of_range: Literal["clip", "error"]  # clip: OpenVLA's behaviour, recorded as a decode_event

    @field_validator("vocab_size")
    @classmethod
    def _holds_the_bins(cls, value: int, info: ValidationInfo) -> int:
        n_bins = info.data.get("n_bins")
        if n_bins is not None and value < n_bins:
            raise ValueError(f"allowed: an integer >= n_bins ({n_bins})")
        return value


class OpenVLABinsDecoder(Decoder):
    """Configured :func:`decode_tokens`."""

    name: ClassVar[str] = "openvla_bins"
    Settings: ClassVar[type[OpenVLABinsSettings]] = OpenVLABinsSettings

    def __init__(self, *, action_dim: int = ACTION_DIM, horizon: int | None = 1,
                 vocab_size: int = LLAMA2_VOCAB_SIZE, n_bins: int = N_BINS, out_of_range: str = "clip") -> None:
        self.action_dim = action_dim
        self.horizon = horizon
        self.vocab_size = vocab_size
        self.n_bins = n_bins
        self.out_of_range = out_of_range

    @classmethod
    def from_settings(cls, settings: OpenVLABinsSettings) -> OpenVLABinsDecoder:
        return cls(action_dim=settings.action_dim, horizon=settings.horizon, vocab_size=settings.vocab_size,
                   n_bins=settings.n_bins, out_of_range=settings.out_of_range)

    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        return decode_tokens(output, vocab_size=self.vocab_size, n_bins=self.n_bins, action_dim=self.action_dim,
                             horizon=self.horizon, out_of_range=self.out_of_range, events=events)

    def encode(self, chunk: Any) -> np.ndarray:
        """Inverse of :meth:`decode` within half a bin (for tests and fixtures)."""
        return encode_chunk(chunk, vocab_size=self.vocab_size, n_bins=self.n_bins)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "action_dim": self.action_dim, "horizon": self.horizon,
                "vocab_size": self.vocab_size, "n_bins": self.n_bins, "out_of_range": self.out_of_range}
