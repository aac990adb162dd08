"""The action pipeline: decode -> unnormalize -> convert, as a list of small named steps.

:func:`build_pipeline` takes the three plain config dicts (Hydra groups ``decoder``,
``normalize``, ``convert``) and returns an :class:`ActionPipeline`; calling it on one
policy output (token ids or a float chunk) and the raw robot state gives a
:class:`PipelineResult` whose ``actions`` go to ``env.step`` and whose ``events`` go to
the episode's record.

Failure policy. A policy output that cannot be turned into actions raises
:class:`~evalharness.errors.DecodeError` (one line naming the value and the rule), which
the rollout records as a decode error of that episode; a configuration mistake raises
:class:`~evalharness.errors.UserInputError` when the pipeline is built. The only
fallback is explicit: ``on_error: zeros`` in the decoder config replaces a failed decode
by a zero chunk of the configured horizon **in the model's normalized space** (what openpi
does) which then goes through unnormalize and convert like any chunk, and an event
records it. Every other tolerance (padding FAST coefficients, clipping ids or values) is
likewise an event, never silent.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evalharness.actions import _arrays
from evalharness.actions.convert import LIBERO_ACTION_DIM, Converter, build_convert
from evalharness.actions.decoders import Decoder, load_decoder
from evalharness.actions.normalize import Normalizer, build_normalizer
from evalharness.config.parts import plain
from evalharness.errors import DecodeError, UserInputError

__all__ = ["ActionPipeline", "PipelineResult", "build_pipeline"]


@dataclass
class PipelineResult:
    """What one policy output became.

    ``actions``: float64 (H, 7) in LIBERO's units, ready for ``env.step``.
    ``events``: notable things that happened (fallback used, values clipped, ...).
    ``stages``: the chunk after each named step, in order (for ``evalharness decode``).
    """

    actions: np.ndarray
    events: list[str] = field(default_factory=list)
    stages: dict[str, np.ndarray] = field(default_factory=dict)


class ActionPipeline:
    """decode -> unnormalize -> converter steps, each a named, described step."""

    def __init__(self, decoder: Decoder, normalizer: Normalizer, converters: list[Converter], *,
                 on_error: str = "error", convert_name: str | None = None) -> None:
        if on_error == "zeros" and (decoder.horizon is None or decoder.action_dim is None):
            raise UserInputError(f"decoder {decoder.name!r} on_error 'zeros' needs horizon and action_dim to size "
                                 "the zero chunk; set both, or use on_error: error")
        self.decoder = decoder
        self.normalizer = normalizer
        self.converters = list(converters)
        self.on_error = on_error
        self.convert_name = convert_name

    @property
    def step_names(self) -> list[str]:
        """The steps in the order they run."""
        return ["decode", "unnormalize", *(c.name for c in self.converters)]

    def __call__(self, output: Any, state: Any = None, *, require_libero_shape: bool = True) -> PipelineResult:
        """Turn one policy output into (H, 7) LIBERO actions; raise DecodeError when impossible.

        ``require_libero_shape=False`` (for ``evalharness decode`` only) skips the final
        (H, 7) check so that a debugging session can look at any decoded width.
        """
        events: list[str] = []
        stages: dict[str, np.ndarray] = {}
        raw_state = None if state is None else np.asarray(state, dtype=np.float64)

        chunk = self._decode(output, events)
        stages["decode"] = chunk
        chunk = self.normalizer.unnormalize(chunk)
        stages["unnormalize"] = chunk
        for converter in self.converters:
            chunk = converter(chunk, raw_state, events)
            stages[converter.name if converter.name not in stages else f"{converter.name}#{len(stages)}"] = chunk

        if require_libero_shape and not is_libero_shape(chunk):
            raise DecodeError(f"pipeline: produced actions of shape {chunk.shape}; LIBERO needs (H, "
                              f"{LIBERO_ACTION_DIM}) with H >= 1 (add keep_first_7 to the convert steps when "
                              "the model's action dim is wider)")
        _arrays.check_finite(chunk, "pipeline: final actions")
        return PipelineResult(actions=np.ascontiguousarray(chunk, dtype=np.float64), events=events, stages=stages)

    def _decode(self, output: Any, events: list[str]) -> np.ndarray:
        try:
            chunk = self.decoder.decode(output, events)
            _arrays.check_finite(chunk, f"decoder {self.decoder.name!r}")
            return chunk
        except DecodeError as exc:
            if self.on_error != "zeros":
                raise
            shape = (self.decoder.horizon, self.decoder.action_dim)
            events.append(f"decode fallback (on_error=zeros): used a {shape[0]}x{shape[1]} zero chunk in "
                          f"normalized space because {exc}")
            return np.zeros(shape, dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        """Names and parameters of every step (with stats / tokenizer sha256), JSON-serializable."""
        return {
            "decoder": {**self.decoder.describe(), "on_error": self.on_error},
            "normalize": self.normalizer.describe(),
            "convert": {"name": self.convert_name, "steps": [c.describe() for c in self.converters]},
        }


def is_libero_shape(actions: np.ndarray) -> bool:
    """(H, 7) with H >= 1: what ``env.step`` takes, one row at a time."""
    return actions.ndim == 2 and actions.shape[0] >= 1 and actions.shape[1] == LIBERO_ACTION_DIM


def build_pipeline(decoder_cfg: Any = None, normalize_cfg: Any = None, convert_cfg: Any = None) -> ActionPipeline:
    """Build the pipeline from the three configs (each may be None / empty = ``none``).

    Each is a part of its group (:mod:`evalharness.config.parts`): a ``_target_`` and its
    settings, or a ``name`` read from ``conf/<group>/<name>.yaml``. Configuration mistakes
    (unknown names or keys, missing stats / tokenizer files, bad values) raise
    UserInputError here, before any episode runs.
    """
    where = "action pipeline config"
    decoder, decoder_settings = load_decoder(plain(decoder_cfg, where))
    convert = build_convert(plain(convert_cfg, where))
    return ActionPipeline(decoder, build_normalizer(plain(normalize_cfg, where)), convert.converters,
                          on_error=decoder_settings.on_error, convert_name=convert.name)
