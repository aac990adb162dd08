"""OpenVLA's action bins: 256 uniform bins over [-1, 1] in the last ids of Llama-2's vocabulary.

OpenVLA discretizes each normalized action value with 256 edges evenly spaced over
[-1, 1] (so 255 bins, whose centres are the decoded values) and writes bin ``k`` as token
``V - k`` with ``V = 32000``, the Llama-2 vocabulary size; 7 consecutive tokens are one
7-D action. Decoding is ``centres[clip(V - id - 1, 0, 254)]``.

The clip hides two different things: id ``V - 256`` (a value of exactly +1.0, which
``digitize`` puts past the last edge) legitimately lands on the last centre, but ids
outside ``[V - 256, V)`` are not action tokens at all (text, or the padding rows of the
resized embedding) and OpenVLA silently maps them to an end bin. Here such ids raise
DecodeError by default; ``out_of_range: clip`` reproduces OpenVLA and records an event.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import numpy as np

from evalharness.actions import _arrays, _config
from evalharness.actions.decoders.base import Decoder
from evalharness.errors import DecodeError

LLAMA2_VOCAB_SIZE = 32000
N_BINS = 256
ACTION_DIM = 7
OUT_OF_RANGE_CHOICES = ("error", "clip")

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
                  out_of_range: str = "error", events: list[str] | None = None) -> np.ndarray:
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
            events.append(f"{_WHERE}: {outside.size} of {ids.size} ids outside [{low}, {high}) clipped to the "
                          f"nearest end bin as OpenVLA does (first: id {int(ids[i])} at position {i})")
    centres = bin_centres(n_bins)
    index = np.clip(vocab_size - ids - 1, 0, centres.size - 1)
    return centres[index].reshape(steps, action_dim)


class OpenVLABinsDecoder(Decoder):
    """Configured :func:`decode_tokens`."""

    name: ClassVar[str] = "openvla_bins"
    DEFAULTS: ClassVar[dict[str, Any]] = {
        "action_dim": ACTION_DIM,
        "horizon": 1,
        "vocab_size": LLAMA2_VOCAB_SIZE,
        "n_bins": N_BINS,
        "out_of_range": "error",
    }

    def __init__(self, *, action_dim: int = ACTION_DIM, horizon: int | None = 1,
                 vocab_size: int = LLAMA2_VOCAB_SIZE, n_bins: int = N_BINS, out_of_range: str = "error") -> None:
        self.action_dim = action_dim
        self.horizon = horizon
        self.vocab_size = vocab_size
        self.n_bins = n_bins
        self.out_of_range = out_of_range

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any] | None) -> OpenVLABinsDecoder:
        s = cls.settings(cfg)
        where = "decoder 'openvla_bins'"
        n_bins = _config.integer(where, "n_bins", s["n_bins"], minimum=2)
        return cls(
            action_dim=_config.integer(where, "action_dim", s["action_dim"], minimum=1),
            horizon=_config.integer(where, "horizon", s["horizon"], minimum=1, allow_none=True),
            vocab_size=_config.integer(where, "vocab_size", s["vocab_size"], minimum=n_bins),
            n_bins=n_bins,
            out_of_range=_config.choice(where, "out_of_range", s["out_of_range"], OUT_OF_RANGE_CHOICES),
        )

    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        return decode_tokens(output, vocab_size=self.vocab_size, n_bins=self.n_bins, action_dim=self.action_dim,
                             horizon=self.horizon, out_of_range=self.out_of_range, events=events)

    def encode(self, chunk: Any) -> np.ndarray:
        """Inverse of :meth:`decode` within half a bin (for tests and fixtures)."""
        return encode_chunk(chunk, vocab_size=self.vocab_size, n_bins=self.n_bins)

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "action_dim": self.action_dim, "horizon": self.horizon,
                "vocab_size": self.vocab_size, "n_bins": self.n_bins, "out_of_range": self.out_of_range}
