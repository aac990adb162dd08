"""pi0-FAST's prompt prefix as token ids, and back.

The client encodes ``Task: <instruction>, State: <discretized state>;\\n`` (text built by
:func:`evalharness.actions.state_tokens.pi0_fast_prefix`) with BOS, as openpi's FAST
tokenizer does, using the SentencePiece model at ``policy.tokenizer`` (PaliGemma's
``tokenizer.model`` for a real pi0-FAST). More than :data:`~evalharness.transports.mint.wire.MAX_PREFIX_TOKENS`
tokens is, as openpi does (``FASTTokenizer.tokenize`` with ``max_token_len`` 180), cut to the
first 180 ids and recorded as a ``prompt_truncated:`` event (``too_long: truncate``, the
default, counted per episode as ``prompt_truncations``); ``too_long: error`` refuses it
instead. A truncated prompt has no ``State: ...;`` ending, so ``evalharness serve`` cannot
read it back; a real pi0-FAST takes it as openpi's does.

The protocol carries these token ids, not the instruction's text. ``evalharness serve``
recovers the instruction by decoding the ids with the same tokenizer and parsing the text
between ``Task: `` and the last ``, State: ``. What comes back is the *cleaned*
instruction (lower-cased, stripped, ``_`` as spaces); LIBERO's instructions already have
that form, so a served policy receives the same text as one run in-process.

Without a SentencePiece model (``tokenizer: null``) the ids are the text's UTF-8 bytes
after a BOS id of 256. That only makes sense between the harness's own client and server
(``runner.policy_server=auto`` uses it); a real MinT pi0-FAST needs PaliGemma's tokenizer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evalharness.actions import files as _config
from evalharness.actions.state_tokens import discretize_state, pi0_fast_prefix
from evalharness.errors import PolicyError, UserInputError
from evalharness.transports.mint.wire import MAX_PREFIX_TOKENS

BYTES_BOS = 256
TOO_LONG_CHOICES = ("truncate", "error")
TRUNCATED_EVENT = "prompt_truncated: "
_PREFIX = re.compile(r"^Task: (?P<instruction>.*), State: (?P<state>[-0-9 ]*);\s*$", re.DOTALL)


@dataclass(frozen=True)
class Prefix:
    tokens: list[int]
    events: list[str]


class PromptCodec:
    """Encodes the pi0-FAST prefix and decodes it again (server side)."""

    def __init__(self, tokenizer: str | Path | None = None, *, state_out_of_range: str = "clip",
                 max_tokens: int = MAX_PREFIX_TOKENS, too_long: str = "error") -> None:
        self.max_tokens = max_tokens
        self.too_long = too_long
        self.state_out_of_range = state_out_of_range
        self._sp: Any = None
        self.tokenizer_sha256: str | None = None
        if tokenizer is not None:
            import sentencepiece

            path = _config.existing_file("policy", "tokenizer", tokenizer)
            self.tokenizer_sha256 = _config.sha256_file(path)
            try:
                self._sp = sentencepiece.SentencePieceProcessor(model_file=str(path))
            except (RuntimeError, OSError) as exc:
                raise UserInputError(f"tokenizer {str(path)!r} is not a SentencePiece model ({exc})") from None

    def describe(self) -> dict[str, Any]:
        return {
            "format": "Task: <instruction>, State: <bins>;\\n",
            "tokenizer": "sentencepiece" if self._sp is not None else "utf8-bytes",
            "tokenizer_sha256": self.tokenizer_sha256,
            "max_prefix_tokens": self.max_tokens,
            "state_out_of_range": self.state_out_of_range,
            **({"too_long": self.too_long} if self.too_long != "error" else {}),
        }

    def encode(self, instruction: str, normalized_state: Any) -> Prefix:
        """Token ids (with BOS) of the prefix; PolicyError past the token limit."""
        state = discretize_state(np.asarray(normalized_state, dtype=np.float64), out_of_range=self.state_out_of_range)
        text = pi0_fast_prefix(instruction, state)
        if self._sp is not None:
            tokens = [int(t) for t in self._sp.encode(text, add_bos=True)]
        else:
            tokens = [BYTES_BOS, *text.encode("utf-8")]
        events = list(state.events)
        if len(tokens) > self.max_tokens:
            if self.too_long == "error":
                raise PolicyError(f"the prompt is {len(tokens)} tokens; pi0-FAST takes at most {self.max_tokens} "
                                  f"(instruction {instruction[:60]!r})")
            events.append(f"{TRUNCATED_EVENT}the prompt is {len(tokens)} tokens; cut to the first "
                          f"{self.max_tokens}, as openpi does (instruction {instruction[:60]!r})")
            tokens = tokens[: self.max_tokens]
        return Prefix(tokens, events)

    def decode(self, tokens: list[int]) -> tuple[str, list[int]]:
        """(instruction, state bins) from prefix ids; ValueError when they do not hold a prefix."""
        if self._sp is not None:
            ids = tokens[1:] if tokens and tokens[0] == self._sp.bos_id() else tokens
            if any(not 0 <= t < self._sp.get_piece_size() for t in ids):
                raise ValueError("prefix token id outside the tokenizer's vocabulary")
            text = self._sp.decode(ids)
        else:
            ids = tokens[1:] if tokens and tokens[0] == BYTES_BOS else tokens
            if any(not 0 <= t < 256 for t in ids):
                raise ValueError("prefix token id is not a byte (the server reads utf8-bytes prompts)")
            text = bytes(ids).decode("utf-8", errors="replace")
        match = _PREFIX.match(text)
        if match is None:
            raise ValueError(f"prefix does not read 'Task: <instruction>, State: <bins>;' ({len(text)} characters)")
        return match["instruction"], [int(v) for v in match["state"].split()]
