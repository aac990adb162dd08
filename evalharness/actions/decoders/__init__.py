"""Decoders: policy output (token ids or a float chunk) -> normalized (H, D) chunk.

One module per scheme; :func:`build_decoder` picks one by the config's ``name``.

- ``none``: the policy already returns a float chunk (:mod:`.none`);
- ``mint_uniform``: MinT's documented ``i / 256 - 1`` tokens (:mod:`.mint_uniform`);
- ``fast``: FAST DCT + BPE, as pi0-FAST emits (:mod:`.fast`);
- ``pi0_fast``: FAST with the markers read from PaliGemma's tokenizer, openpi's fallbacks (:mod:`.pi0_fast`);
- ``openvla_bins``: OpenVLA's 256 bins at the end of Llama-2's vocabulary (:mod:`.openvla_bins`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from evalharness.actions.decoders.base import Decoder
from evalharness.actions.decoders.fast import FastDecoder
from evalharness.actions.decoders.mint_uniform import MintUniformDecoder
from evalharness.actions.decoders.none import PassthroughDecoder
from evalharness.actions.decoders.openvla_bins import OpenVLABinsDecoder
from evalharness.actions.decoders.pi0_fast import Pi0FastDecoder
from evalharness.errors import UserInputError, choices_error

DECODERS: dict[str, type[Decoder]] = {
    cls.name: cls for cls in (PassthroughDecoder, MintUniformDecoder, FastDecoder, OpenVLABinsDecoder,
                      Pi0FastDecoder)
}

__all__ = ["DECODERS", "Decoder", "build_decoder", "FastDecoder", "MintUniformDecoder",
           "OpenVLABinsDecoder", "PassthroughDecoder"]


def build_decoder(cfg: Mapping[str, Any] | None) -> Decoder:
    """The decoder named by ``cfg["name"]`` (default ``none``), configured by the rest of ``cfg``."""
    cfg = dict(cfg or {})
    name = cfg.get("name", "none")
    if not isinstance(name, str) or name not in DECODERS:
        raise choices_error("decoder", name, list(DECODERS))
    decoder = DECODERS[name].from_config(cfg)
    if not isinstance(decoder, Decoder):  # pragma: no cover - programming error
        raise UserInputError(f"decoder {name!r} did not build")
    return decoder
