"""``decoder=pi0_fast``: FAST tokens as a real pi0-FAST emits them, with the markers read from PaliGemma's tokenizer.

pi0-FAST answers ``"Action: "`` + FAST ids mapped into PaliGemma's vocabulary + ``"|"`` +
EOS. The plain ``fast`` decoder needs those marker ids typed in by hand; this preset
derives them from the PaliGemma SentencePiece model it is given (``paligemma_tokenizer``):
``action_prefix_ids = encode("Action: ")``, ``action_end_ids = encode("|")``,
``eos_id = eos_id()`` and ``vocab_size = vocab_size()``, and refuses in one line when
they cannot be derived (no such file, not a SentencePiece model, no EOS piece, a marker
that is also an action id).

``on_error`` decides what malformed output becomes:

- ``openpi`` (the preset's default, since pi0-FAST's peer is openpi): exactly what
  openpi's ``FASTTokenizer.extract_actions`` and the FAST processor's ``decode`` return,
  case by case. The ids are decoded to text, cut at ``"Action: "`` and ``"|"``,
  stripped and re-encoded; no ``"Action: "`` gives a zero chunk; ids the FAST vocabulary
  does not hold are dropped (the ``tokenizers`` decode skips them); a negative id, or a
  coefficient count other than H x D, gives a zero chunk; a lone UTF-8 byte decodes to
  U+FFFD and so to a huge coefficient, as in openpi. Every such case is recorded as a
  ``decode_event:`` event, counted per episode as ``decode_events`` and in the summary.
- ``error`` / ``zeros``: the ``fast`` decoder's id-level cut with the derived markers,
  which refuses all of the above (``zeros`` then falls back to a zero chunk in the
  pipeline). On well-formed output all three give the same chunk.

``tests/test_fidelity_openpi.py`` proves ``openpi`` equal to openpi's own code on
well-formed and malformed streams (``docs/fidelity.md``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar, Literal

import numpy as np

from evalharness.actions import _arrays
from evalharness.actions.decoders import fast
from evalharness.actions.decoders.base import DecoderSettings
from evalharness.actions.files import existing_file, sha256_file
from evalharness.config.fields import Count, Int, NonNegativeInt, PositiveFloat
from evalharness.errors import DecodeError, UserInputError

DECODE_EVENT = "decode_event: "
ACTION_MARKER = "Action: "
END_MARKER = "|"
_WHERE = "decoder 'pi0_fast'"


def load_paligemma_tokenizer(path: Any) -> Any:
    """The SentencePiece model at ``path``; one line when it is missing or not a model."""
    import sentencepiece

    file = existing_file(_WHERE, "paligemma_tokenizer", path)
    try:
        return sentencepiece.SentencePieceProcessor(model_file=str(file))
    except (RuntimeError, OSError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserInputError(f"{_WHERE} paligemma_tokenizer {str(file)!r} is not a SentencePiece model "
                             f"({reason}); allowed: PaliGemma's tokenizer.model") from None


class Pi0FastSettings(DecoderSettings):
    """``conf/decoder/pi0_fast.yaml``."""

    tokenizer_path: Any  # required: the FAST processor's tokenizer.json
    paligemma_tokenizer: Any  # required: PaliGemma's SentencePiece tokenizer.model
    horizon: Count
    action_dim: Count
    scale: PositiveFloat
    min_token: Int
    skip_tokens: NonNegativeInt
    on_length_mismatch: Literal["error", "zeros", "pad_truncate"]
    on_error: Literal["error", "zeros", "openpi"] = "openpi"  # type: ignore[assignment]


class Pi0FastDecoder(fast.FastDecoder):
    """:class:`~evalharness.actions.decoders.fast.FastDecoder` with PaliGemma-derived markers and openpi's fallbacks."""

    name: ClassVar[str] = "pi0_fast"
    Settings: ClassVar[type[Pi0FastSettings]] = Pi0FastSettings  # type: ignore[assignment]

    @classmethod
    def from_settings(cls, settings: Pi0FastSettings) -> Pi0FastDecoder:  # type: ignore[override]
        sp = load_paligemma_tokenizer(settings.paligemma_tokenizer)
        if sp.eos_id() < 0:
            raise UserInputError(f"{_WHERE} paligemma_tokenizer {str(settings.paligemma_tokenizer)!r} has no EOS "
                                 "piece, so the end of the actions cannot be derived; allowed: PaliGemma's "
                                 "tokenizer.model")
        prefix, end = sp.encode(ACTION_MARKER), sp.encode(END_MARKER)
        if not prefix or not end:
            raise UserInputError(f"{_WHERE} paligemma_tokenizer encodes {ACTION_MARKER!r} or {END_MARKER!r} to no ids; "
                                 "allowed: PaliGemma's tokenizer.model")
        path = existing_file(_WHERE, "tokenizer_path", settings.tokenizer_path)
        try:
            decoder = cls(
                fast.load_tokenizer(path), tokenizer_path=path, horizon=settings.horizon,
                action_dim=settings.action_dim, scale=settings.scale, min_token=settings.min_token,
                id_space="paligemma", vocab_size=sp.vocab_size(), skip_tokens=settings.skip_tokens,
                action_prefix_ids=prefix, action_end_ids=end, eos_id=sp.eos_id(),
                on_length_mismatch=settings.on_length_mismatch,
            )
        except UserInputError as exc:  # a derived marker that is also an action id
            raise UserInputError(f"{exc} (derived from paligemma_tokenizer {str(settings.paligemma_tokenizer)!r}: "
                                 "it does not fit this FAST tokenizer)") from None
        decoder.paligemma = sp
        decoder.paligemma_path = Path(settings.paligemma_tokenizer)
        decoder.paligemma_sha256 = sha256_file(decoder.paligemma_path)
        decoder.openpi = settings.on_error == "openpi"
        return decoder

    paligemma: Any = None
    paligemma_path: Path | None = None
    paligemma_sha256: str | None = None
    openpi: bool = False

    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        if not self.openpi:
            return super().decode(output, events)
        return self._decode_as_openpi(_arrays.token_ids(output, "pi0_fast"), events)

    def _decode_as_openpi(self, ids: np.ndarray, events: list[str]) -> np.ndarray:
        """openpi's ``extract_actions`` then the FAST processor's ``decode``, with an event per irregularity."""
        shape = (self.horizon, self.action_dim)
        try:
            text = self.paligemma.decode([int(i) for i in ids])
        except (IndexError, RuntimeError, OverflowError) as exc:  # openpi raises too: no chunk at all
            raise DecodeError(f"pi0_fast: output ids outside PaliGemma's vocabulary ({exc})") from None
        if ACTION_MARKER not in text:
            events.append(f"{DECODE_EVENT}no {ACTION_MARKER!r} in the {ids.size} output ids; a zero chunk, as openpi")
            return np.zeros(shape)
        span = text.split(ACTION_MARKER)[1].split(END_MARKER)[0].strip()
        raw = np.array(self.paligemma.encode(span), dtype=np.int64)
        try:
            direct = fast.cut_action_ids(ids, prefix_ids=self.action_prefix_ids, end_ids=self.action_end_ids,
                                         eos_id=self.eos_id).tolist()
        except DecodeError:
            direct = None
        if direct != raw.tolist():
            events.append(f"{DECODE_EVENT}openpi's text round trip changed the action ids ({'?' if direct is None else len(direct)} "
                          f"between the markers, {raw.size} re-encoded: stray, text or pad ids dropped or re-tokenized)")
        fast_ids = (self.vocab_size - 1 - self.skip_tokens - raw).tolist()
        if any(i < 0 for i in fast_ids):  # the processor's decode fails and gives zeros
            events.append(f"{DECODE_EVENT}an id in the action span is not a FAST id (below the FAST range); "
                          "a zero chunk, as openpi")
            return np.zeros(shape)
        vocab = self.tokenizer.get_vocab_size()
        dropped = sum(i >= vocab for i in fast_ids)
        if dropped:
            events.append(f"{DECODE_EVENT}{dropped} id(s) in the action span outside the FAST vocabulary; "
                          "dropped, as openpi's FAST decode does")
        decoded = self.tokenizer.decode(fast_ids, skip_special_tokens=False)
        if fast._REPLACEMENT_CHAR in decoded:
            events.append(f"{DECODE_EVENT}the action ids decode to invalid UTF-8 (U+FFFD); read as coefficient "
                          f"{ord(fast._REPLACEMENT_CHAR) + self.min_token}, as openpi does")
        coeffs = fast.text_to_coefficients(decoded, self.min_token)
        if coeffs.size != self.horizon * self.action_dim:
            events.append(f"{DECODE_EVENT}{len(fast_ids)} action ids decoded to {coeffs.size} DCT coefficients; "
                          f"expected {self.horizon} x {self.action_dim}; a zero chunk, as openpi")
            return np.zeros(shape)
        return fast.coefficients_to_chunk(coeffs, self.horizon, self.action_dim, self.scale)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "name": self.name,
                "paligemma_tokenizer": str(self.paligemma_path) if self.paligemma_path else None,
                "paligemma_tokenizer_sha256": self.paligemma_sha256,
                "malformed_output": "openpi" if self.openpi else "refused (DecodeError)"}
