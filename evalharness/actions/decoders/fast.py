"""FAST action tokens (what pi0-FAST emits): DCT over time, then byte-pair encoding.

Encoding an (H, D) chunk already normalized to about [-1, 1]:

1. DCT-II over time, per dimension, orthonormal: ``scipy.fft.dct(chunk, axis=0, norm="ortho")``;
2. multiply by ``scale`` (10 for the universal tokenizer) and round to integers;
3. flatten frequency-major, so all dimensions' lowest frequency comes first: coefficient
   ``k * D + d`` is frequency ``k`` of dimension ``d`` (this is what makes BPE effective:
   the zero high frequencies end up in one long run);
4. subtract ``min_token`` and write each integer as the character ``chr(value)``; a BPE
   tokenizer (``tokenizer.json``, vocabulary 2048 for the universal tokenizer) turns the
   string into FAST ids.

pi0-FAST puts FAST ids at the top of the PaliGemma vocabulary (V = 257152), skipping its
last 128 special tokens: ``paligemma_id = V - 1 - 128 - fast_id`` (the same formula maps
back), and emits ``"Action: "`` + action ids + ``"|"`` + EOS.

Decoding reverses all of it: cut the ids between the encoded ``"Action: "`` and ``"|"`` or
EOS (their encoded ids are configuration, since the PaliGemma tokenizer file is not
available here), map back to FAST ids, BPE-decode, ``ord(c) + min_token`` per character,
reshape to (H, D), divide by ``scale``, inverse DCT over time.

The marker ids must not themselves be action ids in the configured id space (PaliGemma's
EOS id 1, for instance, is a valid raw FAST id): such a marker would silently cut the
actions short, so the decoder refuses it when it is built.

When the number of coefficients is not H * D, openpi returns a zero chunk and LeRobot pads
(with zero coefficients) or truncates. Both are available (``on_length_mismatch: zeros |
pad_truncate``) and both add an event to the episode's record; the default is an error.

Where decoding deliberately departs from openpi. For well-formed output the result is the
same; on malformed output this module refuses what openpi papers over, so a broken model
shows up as decode errors in the record instead of as plausible-looking motions:

- **Cutting the actions.** openpi decodes the ids to text, splits on ``"Action: "`` /
  ``"|"`` and re-encodes; this module cuts on the configured id sequences directly (no
  dependency on the PaliGemma tokenizer). A missing ``"Action: "`` is a DecodeError here,
  a zero chunk in openpi.
- **An out-of-vocabulary id inside the action span raises here** (a PaliGemma id outside
  the FAST range, or a FAST id >= the tokenizer's vocabulary). openpi hands the ids to
  the FAST processor, whose ``tokenizers`` decode *silently drops* ids it does not know:
  the remaining coefficients then shift left, and the chunk is either wrong without any
  sign (when the count still happens to be H * D) or replaced by zeros.
- **Invalid UTF-8.** A byte-level BPE decode that yields U+FFFD is a DecodeError here;
  openpi would turn the replacement character into a huge DCT coefficient.
- **Wrong coefficient count.** openpi (the processor) returns zeros, LeRobot pads or
  truncates; here it raises unless ``on_length_mismatch`` picks one of those, and then an
  event records it.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Literal

import numpy as np
from scipy.fft import dct, idct

from evalharness.actions import _arrays
from evalharness.actions.decoders.base import Decoder, DecoderSettings
from evalharness.actions.files import existing_file, sha256_file
from evalharness.config.fields import Count, Int, NonNegativeInt, OptionalInt, OptionalIntList, PositiveFloat
from evalharness.errors import DecodeError, UserInputError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

PALIGEMMA_VOCAB_SIZE = 257152
SKIP_TOKENS = 128
#: Parameters of the published universal FAST tokenizer (``processor_config.json``).
UNIVERSAL_SCALE = 10.0
UNIVERSAL_MIN_TOKEN = -354
PALIGEMMA_EOS_ID = 1

_WHERE = "fast"
_REPLACEMENT_CHAR = "\ufffd"


# --- the id mapping -------------------------------------------------------------------------

def paligemma_to_fast(ids: Any, *, vocab_size: int = PALIGEMMA_VOCAB_SIZE,
                      skip_tokens: int = SKIP_TOKENS) -> np.ndarray:
    """PaliGemma ids -> FAST ids: ``V - 1 - skip_tokens - id`` (the map is its own inverse)."""
    return vocab_size - 1 - skip_tokens - np.asarray(ids, dtype=np.int64)


fast_to_paligemma = paligemma_to_fast


# --- coefficients <-> chunk <-> text ---------------------------------------------------------

def chunk_to_coefficients(chunk: Any, scale: float) -> np.ndarray:
    """(H, D) chunk -> (H, D) integer DCT coefficients, row = frequency."""
    arr = np.asarray(chunk, dtype=np.float64)
    if arr.ndim != 2 or not np.isfinite(arr).all():
        raise ValueError(f"expected a finite (H, D) chunk; got shape {arr.shape}")
    return np.around(dct(arr, axis=0, norm="ortho") * scale).astype(np.int64)


def coefficients_to_chunk(coefficients: Any, horizon: int, action_dim: int, scale: float) -> np.ndarray:
    """Frequency-major coefficients (H * D of them) -> (H, D) chunk via the inverse DCT."""
    coeffs = np.asarray(coefficients, dtype=np.float64).reshape(horizon, action_dim)
    return idct(coeffs / scale, axis=0, norm="ortho")


def coefficients_to_text(coefficients: np.ndarray, min_token: int) -> str:
    """(H, D) coefficients -> the string BPE sees: ``chr(c - min_token)``, frequency-major."""
    values = np.asarray(coefficients, dtype=np.int64).reshape(-1) - min_token
    if values.size and values.min() < 0:
        i = int(np.argmin(values))
        raise ValueError(f"DCT coefficient {int(values[i]) + min_token} (flat index {i}) is below "
                         f"min_token {min_token}; this tokenizer cannot represent it")
    surrogate = (values >= 0xD800) & (values <= 0xDFFF) | (values > 0x10FFFF)
    if surrogate.any():
        i = int(np.flatnonzero(surrogate)[0])
        raise ValueError(f"DCT coefficient {int(values[i]) + min_token} is too large to write as a character")
    return "".join(map(chr, values.tolist()))


def text_to_coefficients(text: str, min_token: int) -> np.ndarray:
    """The inverse of :func:`coefficients_to_text`, flat: ``ord(c) + min_token``."""
    return np.fromiter((ord(c) for c in text), dtype=np.int64, count=len(text)) + min_token


# --- tokenizer file --------------------------------------------------------------------------

def load_tokenizer(path: str | Path) -> Tokenizer:
    """Load a ``tokenizers`` JSON file (the FAST processor's ``tokenizer.json``)."""
    from tokenizers import Tokenizer

    file = existing_file("decoder 'fast'", "tokenizer_path", path)
    try:
        return Tokenizer.from_file(str(file))
    except Exception as exc:  # the Rust side raises plain Exception subclasses
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserInputError(f"decoder 'fast' tokenizer_path {str(file)!r} is not a tokenizers JSON file "
                             f"({reason})") from None


# --- encode / decode -------------------------------------------------------------------------

def encode_chunk(chunk: Any, tokenizer: Tokenizer, *, scale: float = UNIVERSAL_SCALE,
                 min_token: int = UNIVERSAL_MIN_TOKEN) -> np.ndarray:
    """(H, D) normalized chunk -> FAST ids (not mapped into PaliGemma's vocabulary).

    Raises ValueError when a coefficient is outside what ``min_token`` allows or when the
    tokenizer cannot encode the string losslessly (characters missing from its vocabulary).
    """
    text = coefficients_to_text(chunk_to_coefficients(chunk, scale), min_token)
    ids = tokenizer.encode(text).ids
    if tokenizer.decode(ids, skip_special_tokens=False) != text:
        raise ValueError("the BPE tokenizer does not encode this chunk losslessly "
                         "(a coefficient's character is missing from its vocabulary)")
    return np.asarray(ids, dtype=np.int64)


def decode_fast_ids(ids: Any, tokenizer: Tokenizer, *, horizon: int, action_dim: int,
                    scale: float = UNIVERSAL_SCALE, min_token: int = UNIVERSAL_MIN_TOKEN,
                    on_length_mismatch: str = "error", events: list[str] | None = None) -> np.ndarray:
    """FAST ids -> (horizon, action_dim) normalized chunk.

    ``on_length_mismatch`` decides what happens when the ids hold a number of
    coefficients other than ``horizon * action_dim``: ``error`` raises DecodeError,
    ``zeros`` returns a zero chunk (openpi), ``pad_truncate`` pads with zero coefficients or
    drops the extra ones (LeRobot); the last two append an event.
    """
    fast_ids = _arrays.token_ids(ids, _WHERE)
    vocab = tokenizer.get_vocab_size()
    bad = np.flatnonzero((fast_ids < 0) | (fast_ids >= vocab))
    if bad.size:
        i = int(bad[0])
        raise DecodeError(f"{_WHERE}: FAST id {int(fast_ids[i])} at action position {i} is out of "
                          f"range; allowed: 0 <= id < {vocab} (the tokenizer's vocabulary)")
    text = tokenizer.decode(fast_ids.tolist(), skip_special_tokens=False)
    if _REPLACEMENT_CHAR in text:
        raise DecodeError(f"{_WHERE}: BPE decoding gave invalid UTF-8 (U+FFFD at character "
                          f"{text.index(_REPLACEMENT_CHAR)}); the ids do not form whole characters, "
                          "so they cannot be read as DCT coefficients")
    coeffs = text_to_coefficients(text, min_token)
    expected = horizon * action_dim
    if coeffs.size != expected:
        message = (f"{_WHERE}: {fast_ids.size} ids decoded to {coeffs.size} DCT coefficients; expected "
                   f"horizon x action_dim = {horizon} x {action_dim} = {expected}")
        if on_length_mismatch == "zeros":
            _note(events, f"{message}; used a zero chunk (on_length_mismatch=zeros, as openpi)")
            return np.zeros((horizon, action_dim))
        if on_length_mismatch == "pad_truncate":
            verb = "padded with zero coefficients" if coeffs.size < expected else "truncated"
            _note(events, f"{message}; {verb} (on_length_mismatch=pad_truncate, as LeRobot)")
            coeffs = np.concatenate([coeffs, np.zeros(max(expected - coeffs.size, 0), np.int64)])[:expected]
        else:
            raise DecodeError(message)
    return coefficients_to_chunk(coeffs, horizon, action_dim, scale)


def cut_action_ids(ids: np.ndarray, *, prefix_ids: Sequence[int] | None, end_ids: Sequence[int] | None,
                   eos_id: int | None, events: list[str] | None = None) -> np.ndarray:
    """The ids between the ``"Action: "`` marker and the first ``"|"`` marker or EOS.

    Without ``prefix_ids`` the output is taken to start with the action ids. When the
    prefix is configured but absent, that is a DecodeError (openpi would return zeros);
    when it is present but no end follows, the ids up to the end are used and an event
    says so (typically: generation stopped at max_tokens).
    """
    start = 0
    if prefix_ids:
        found = _find(ids, prefix_ids, 0)
        if found is None:
            raise DecodeError(f"{_WHERE}: the 'Action: ' marker ids {list(prefix_ids)} do not occur in the "
                              f"{ids.size} output ids; set action_prefix_ids: null if the output holds only "
                              "action ids")
        start = found + len(prefix_ids)
    end = ids.size
    if end_ids:
        found = _find(ids, end_ids, start)
        if found is not None:
            end = found
    if eos_id is not None:
        hits = np.flatnonzero(ids[start:end] == eos_id)
        if hits.size:
            end = start + int(hits[0])
    if prefix_ids and end == ids.size and (end_ids or eos_id is not None):
        _note(events, f"{_WHERE}: no end marker ('|' ids {list(end_ids or [])} or EOS id {eos_id}) after the "
                      f"action ids; used all {end - start} ids to the end of the output")
    return ids[start:end]


def _find(ids: np.ndarray, pattern: Sequence[int], start: int) -> int | None:
    n = len(pattern)
    first = np.flatnonzero(ids[start:] == pattern[0]) + start
    for i in first.tolist():
        if i + n <= ids.size and ids[i:i + n].tolist() == list(pattern):
            return i
    return None


def _note(events: list[str] | None, message: str) -> None:
    if events is not None:
        events.append(message)


# --- the configured decoder ------------------------------------------------------------------

class FastSettings(DecoderSettings):
    """``conf/decoder/fast.yaml``."""

    tokenizer_path: Any  # required: the FAST processor's tokenizer.json
    horizon: Count
    action_dim: Count
    scale: PositiveFloat
    min_token: Int
    id_space: Literal["paligemma", "fast"]
    vocab_size: Count
    skip_tokens: NonNegativeInt
    action_prefix_ids: OptionalIntList
    action_end_ids: OptionalIntList
    eos_id: OptionalInt
    on_length_mismatch: Literal["error", "zeros", "pad_truncate"]


class FastDecoder(Decoder):
    """FAST (optionally inside PaliGemma's vocabulary) -> normalized (H, D) chunk."""

    name: ClassVar[str] = "fast"
    Settings: ClassVar[type[FastSettings]] = FastSettings

    def __init__(self, tokenizer: Tokenizer, *, horizon: int = 10, action_dim: int = 7,
                 scale: float = UNIVERSAL_SCALE, min_token: int = UNIVERSAL_MIN_TOKEN, id_space: str = "paligemma",
                 vocab_size: int = PALIGEMMA_VOCAB_SIZE, skip_tokens: int = SKIP_TOKENS,
                 action_prefix_ids: Sequence[int] | None = None, action_end_ids: Sequence[int] | None = None,
                 eos_id: int | None = None, on_length_mismatch: str = "error",
                 tokenizer_path: str | Path | None = None) -> None:
        self.tokenizer = tokenizer
        self.horizon = horizon
        self.action_dim = action_dim
        self.scale = scale
        self.min_token = min_token
        self.id_space = id_space
        self.vocab_size = vocab_size
        self.skip_tokens = skip_tokens
        self.action_prefix_ids = tuple(action_prefix_ids) if action_prefix_ids else None
        self.action_end_ids = tuple(action_end_ids) if action_end_ids else None
        self.eos_id = eos_id
        self.on_length_mismatch = on_length_mismatch
        self.tokenizer_path = Path(tokenizer_path) if tokenizer_path is not None else None
        self.tokenizer_sha256 = sha256_file(self.tokenizer_path) if self.tokenizer_path else None
        self._check_markers()

    def action_id_range(self) -> tuple[int, int]:
        """The ids (inclusive, in the output's id space) that are action tokens."""
        n = self.tokenizer.get_vocab_size()
        if self.id_space == "fast":
            return 0, n - 1
        top = self.vocab_size - 1 - self.skip_tokens
        return top - n + 1, top

    def _check_markers(self) -> None:
        """A marker id that is also an action id would cut the actions short, silently: refuse it."""
        low, high = self.action_id_range()
        markers = (("action_prefix_ids", self.action_prefix_ids), ("action_end_ids", self.action_end_ids),
                   ("eos_id", None if self.eos_id is None else (self.eos_id,)))
        for key, ids in markers:
            clash = [i for i in ids or () if low <= i <= high]
            if clash:
                raise UserInputError(f"decoder 'fast' {key} has id {clash[0]}, which is also an action id in "
                                     f"id_space {self.id_space!r} ({low}..{high}); allowed: ids outside that "
                                     "range, or null")

    @classmethod
    def from_settings(cls, settings: FastSettings) -> FastDecoder:
        path = existing_file("decoder 'fast'", "tokenizer_path", settings.tokenizer_path)
        return cls(
            load_tokenizer(path),
            tokenizer_path=path,
            horizon=settings.horizon,
            action_dim=settings.action_dim,
            scale=settings.scale,
            min_token=settings.min_token,
            id_space=settings.id_space,
            vocab_size=settings.vocab_size,
            skip_tokens=settings.skip_tokens,
            action_prefix_ids=settings.action_prefix_ids,
            action_end_ids=settings.action_end_ids,
            eos_id=settings.eos_id,
            on_length_mismatch=settings.on_length_mismatch,
        )

    def decode(self, output: Any, events: list[str]) -> np.ndarray:
        ids = cut_action_ids(_arrays.token_ids(output, _WHERE), prefix_ids=self.action_prefix_ids,
                             end_ids=self.action_end_ids, eos_id=self.eos_id, events=events)
        if self.id_space == "paligemma":
            fast_ids = paligemma_to_fast(ids, vocab_size=self.vocab_size, skip_tokens=self.skip_tokens)
            bad = np.flatnonzero((fast_ids < 0) | (fast_ids >= self.tokenizer.get_vocab_size()))
            if bad.size:
                i = int(bad[0])
                top = self.vocab_size - 1 - self.skip_tokens
                low = top - self.tokenizer.get_vocab_size() + 1
                raise DecodeError(f"{_WHERE}: PaliGemma id {int(ids[i])} at action position {i} is not a FAST "
                                  f"action token; allowed: {low} <= id <= {top} "
                                  f"(V - 1 - {self.skip_tokens} - fast_id, V = {self.vocab_size})")
            ids = fast_ids
        return decode_fast_ids(ids, self.tokenizer, horizon=self.horizon, action_dim=self.action_dim,
                               scale=self.scale, min_token=self.min_token,
                               on_length_mismatch=self.on_length_mismatch, events=events)

    def encode(self, chunk: Any) -> np.ndarray:
        """Chunk -> ids in this decoder's id space, without markers (for tests and fixtures)."""
        ids = encode_chunk(chunk, self.tokenizer, scale=self.scale, min_token=self.min_token)
        if self.id_space == "paligemma":
            ids = fast_to_paligemma(ids, vocab_size=self.vocab_size, skip_tokens=self.skip_tokens)
        return ids

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "tokenizer_path": str(self.tokenizer_path) if self.tokenizer_path else None,
            "tokenizer_sha256": self.tokenizer_sha256,
            "tokenizer_vocab_size": self.tokenizer.get_vocab_size(),
            "horizon": self.horizon,
            "action_dim": self.action_dim,
            "scale": self.scale,
            "min_token": self.min_token,
            "id_space": self.id_space,
            "vocab_size": self.vocab_size,
            "skip_tokens": self.skip_tokens,
            "action_prefix_ids": list(self.action_prefix_ids) if self.action_prefix_ids else None,
            "action_end_ids": list(self.action_end_ids) if self.action_end_ids else None,
            "eos_id": self.eos_id,
            "on_length_mismatch": self.on_length_mismatch,
        }
