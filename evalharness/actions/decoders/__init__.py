"""Decoders: policy output (token ids or a float chunk) -> normalized (H, D) chunk.

One module per scheme, each a :class:`~evalharness.actions.decoders.base.Decoder` with one
settings model, chosen by ``conf/decoder/<name>.yaml``'s ``_target_``:

- ``none``: the policy already returns a float chunk (:mod:`.none`);
- ``mint_uniform``: MinT's documented ``i / 256 - 1`` tokens (:mod:`.mint_uniform`);
- ``fast``: FAST DCT + BPE, as pi0-FAST emits (:mod:`.fast`);
- ``pi0_fast``: FAST with the markers read from PaliGemma's tokenizer, openpi's fallbacks (:mod:`.pi0_fast`);
- ``openvla_bins``: OpenVLA's 256 bins at the end of Llama-2's vocabulary (:mod:`.openvla_bins`).

Adding a decoder
================

1. **The class.** Subclass :class:`~evalharness.actions.decoders.base.Decoder` in a module of
   this package (or anywhere importable). Set ``name``; declare its settings as a subclass
   of :class:`~evalharness.actions.decoders.base.DecoderSettings` (pydantic, one field per
   key; use the types of :mod:`evalharness.config.fields` so a bad value says what is
   allowed) and point ``Settings`` at it; implement ``from_settings(settings)``,
   ``decode(output, events)`` (raise :class:`~evalharness.errors.DecodeError` for output
   that cannot be decoded, append to ``events`` what you tolerate) and ``describe()``
   (every parameter that changes the result: it is part of every episode's key). Set
   ``horizon`` and ``action_dim`` when known, so ``on_error: zeros`` can size its chunk.
2. **Its config**, ``conf/decoder/<name>.yaml``: ``_target_`` naming the class, ``name``,
   and every setting with its default and a comment::

       # What it decodes, in one line.
       _target_: evalharness.actions.decoders.mine.MyDecoder
       name: mine
       action_dim: 7
       on_error: error

   Then ``evalharness decoder=mine decoder.action_dim=8`` selects and configures it, and a
   checkpoint's ``policy.yaml`` may declare ``decoder: {name: mine}`` (a file of
   ``conf/decoder/``) or ``decoder: {_target_: ..., ...}``. The YAML may also live in a
   folder of your own: ``evalharness hydra.searchpath=[file://DIR] decoder=mine`` reads
   ``DIR/decoder/mine.yaml``. There is no registry: ``tests/test_adding_a_part.py`` adds a
   decoder with one class and one YAML file.
3. **Test it** next to the others (``tests/test_actions_*.py``): well-formed output decodes
   to what the scheme says, malformed output is a one-line DecodeError.
"""

from __future__ import annotations

from typing import Any

from evalharness.actions.decoders.base import Decoder, DecoderSettings
from evalharness.actions.decoders.fast import FastDecoder
from evalharness.actions.decoders.mint_uniform import MintUniformDecoder
from evalharness.actions.decoders.none import PassthroughDecoder
from evalharness.actions.decoders.openvla_bins import OpenVLABinsDecoder
from evalharness.config.parts import load_part

__all__ = ["Decoder", "DecoderSettings", "build_decoder", "load_decoder", "FastDecoder", "MintUniformDecoder",
           "OpenVLABinsDecoder", "PassthroughDecoder"]


def load_decoder(cfg: Any) -> tuple[Decoder, DecoderSettings]:
    """The decoder ``cfg`` chooses (``_target_``, or ``name`` -> ``conf/decoder/<name>.yaml``;
    default ``none``) and its validated settings."""
    cls, settings = load_part("decoder", cfg, Decoder)
    return cls.from_settings(settings), settings


def build_decoder(cfg: Any) -> Decoder:
    """The decoder ``cfg`` chooses, configured by the rest of ``cfg``."""
    return load_decoder(cfg)[0]
