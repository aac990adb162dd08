"""Fitting a FAST tokenizer (byte-level BPE over DCT coefficients) on action chunks.

The published universal tokenizer fits most robots, but a checkpoint trained with its own
FAST vocabulary needs that vocabulary to decode, and tests need a small one they can
build in a temporary directory. A tokenizer fitted here is interchangeable with one
fitted by the FAST processor (``UniversalActionProcessor.fit`` in physical-intelligence's
``processing_action_tokenizer.py``) on the same data: same vocabulary, same ids. That
means following its steps exactly, including the ones that look accidental:

1. DCT each chunk over time (orthonormal), flatten frequency-major, multiply by ``scale``
   and round; ``min_token`` / ``max_token`` = the smallest / largest rounded coefficient.
   The processor refuses data whose range ``max_token - min_token`` exceeds ``vocab_size``.
2. Write each chunk as the characters ``chr(c - min_token)``.
3. Train a BPE with the components of ``tokenizers.ByteLevelBPETokenizer()`` (byte-level
   pre-tokenizer without prefix space, byte-level decoder and post-processor), a trainer
   with ``min_frequency`` 2, no special tokens, ``max_token_length`` 10000, and as
   **initial alphabet the characters chr(0) .. chr(max_token - min_token)**, not the 256
   byte-level symbols. Those characters enter the vocabulary first (in that order), then
   the byte-level symbols the data produces, then the merges; many of the initial
   characters never occur after byte-level pre-tokenization, but they take ids, so
   leaving them out would renumber every id.

A consequence of the processor's recipe, kept here: the tokenizer encodes only
characters it holds as symbols, and byte-level pre-tokenization turns the characters for
coefficients ``min_token + 0..32`` (and every character past chr(126)) into other
symbols, which are in the vocabulary only when the data produced them. So a coefficient
that never occurred in the fitting data may be unencodable (the ``tokenizers`` encoder
drops it silently; :func:`~evalharness.actions.decoders.fast.encode_chunk` raises).
Fit on data that covers the range the model will emit.

``min_token`` may be set lower than the data's minimum; the alphabet then starts at that
value, as the processor's would if the data reached it (with the caveat above for values
the data never produced).

:meth:`FastFit.save` writes ``tokenizer.json`` and a ``processor_config.json`` with the
same keys as the FAST processor's (``scale``, ``min_token``, ``vocab_size``,
``time_horizon``, ``action_dim``), and :meth:`FastFit.decoder_config` gives the dict for
``conf/decoder/fast.yaml``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from evalharness.actions.decoders import fast
from evalharness.errors import UserInputError

if TYPE_CHECKING:
    from tokenizers import Tokenizer

#: The FAST processor's trainer settings (``UniversalActionProcessor.fit``).
PROCESSOR_MIN_FREQUENCY = 2
PROCESSOR_MAX_TOKEN_LENGTH = 10000


@dataclass(frozen=True)
class FastFit:
    """A fitted tokenizer and the parameters needed to decode with it."""

    tokenizer: Tokenizer
    scale: float
    min_token: int
    max_token: int
    horizon: int
    action_dim: int
    n_chunks: int
    mean_tokens_per_chunk: float
    max_roundtrip_error: float

    def save(self, out_dir: str | Path) -> Path:
        """Write ``tokenizer.json`` + ``processor_config.json`` into ``out_dir``; return the tokenizer path."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        path = out / "tokenizer.json"
        self.tokenizer.save(str(path))
        (out / "processor_config.json").write_text(json.dumps({
            "scale": self.scale,
            "min_token": self.min_token,
            "vocab_size": self.tokenizer.get_vocab_size(),
            "time_horizon": self.horizon,
            "action_dim": self.action_dim,
        }, indent=2) + "\n")
        return path

    def decoder_config(self, tokenizer_path: str | Path, *, id_space: str = "fast") -> dict[str, Any]:
        """The ``decoder`` config dict that decodes ids produced with this tokenizer."""
        return {"name": "fast", "tokenizer_path": str(tokenizer_path), "horizon": self.horizon,
                "action_dim": self.action_dim, "scale": self.scale, "min_token": self.min_token,
                "id_space": id_space}


def load_chunks(path: str | Path) -> np.ndarray:
    """Action chunks from a ``.npy`` file of shape (N, H, D), finite, as float64."""
    file = Path(path).expanduser()
    if file.suffix != ".npy":
        raise UserInputError(f"chunks file {str(file)!r} is not valid; allowed: a .npy file of shape (N, H, D)")
    if not file.is_file():
        raise UserInputError(f"chunks file {str(file)!r} is not an existing file")
    try:
        arr = np.load(file, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise UserInputError(f"chunks file {str(file)!r} is not a readable .npy array ({exc})") from None
    return check_chunks(arr, f"chunks file {str(file)!r}")


def check_chunks(chunks: Any, what: str = "chunks") -> np.ndarray:
    try:
        arr = np.asarray(chunks, dtype=np.float64)
    except (TypeError, ValueError):
        raise UserInputError(f"{what} is not numeric; allowed: an array of shape (N, H, D)") from None
    if arr.ndim != 3 or min(arr.shape) < 1:
        raise UserInputError(f"{what} has shape {arr.shape}; allowed: an array of shape (N, H, D), N, H, D >= 1")
    if not np.isfinite(arr).all():
        raise UserInputError(f"{what} contains NaN or infinity; allowed: finite values")
    return arr


def fit_fast_tokenizer(chunks: Any, *, scale: float = fast.UNIVERSAL_SCALE, vocab_size: int = 1024,
                       min_frequency: int = PROCESSOR_MIN_FREQUENCY, min_token: int | None = None) -> FastFit:
    """Fit a FAST tokenizer on (N, H, D) normalized chunks, as the FAST processor's ``fit`` does.

    ``min_token`` defaults to the smallest rounded coefficient in the data (the
    processor's only choice); pass a lower value to leave room for chunks more extreme
    than the training data. ``min_frequency`` other than 2 departs from the processor.
    """
    arr = check_chunks(chunks)
    if scale <= 0:
        raise UserInputError(f"scale {scale!r} is not valid; allowed: a number > 0")
    if min_frequency < 1:
        raise UserInputError(f"min_frequency {min_frequency} is not valid; allowed: >= 1")
    coeffs = np.stack([fast.chunk_to_coefficients(c, scale) for c in arr])
    data_min, data_max = int(coeffs.min()), int(coeffs.max())
    if min_token is None:
        min_token = data_min
    elif min_token > data_min:
        raise UserInputError(f"min_token {min_token} is not valid; allowed: <= {data_min}, the smallest "
                             "coefficient in the data")
    span = data_max - min_token
    if span > vocab_size:  # the processor's own limit (it asserts max - min <= vocab_size)
        raise UserInputError(f"vocab_size {vocab_size} is not valid; allowed: >= {span}, the range of the "
                             f"coefficients ({min_token}..{data_max}) at scale {scale:g}")
    texts = [fast.coefficients_to_text(c, min_token) for c in coeffs]
    tokenizer = _train_like_the_processor(texts, alphabet_size=span + 1, vocab_size=vocab_size,
                                          min_frequency=min_frequency)

    horizon, action_dim = arr.shape[1], arr.shape[2]
    lengths, worst = [], 0.0
    for chunk, text in zip(arr, texts):
        ids = tokenizer.encode(text).ids
        lengths.append(len(ids))
        back = fast.decode_fast_ids(ids, tokenizer, horizon=horizon, action_dim=action_dim, scale=scale,
                                    min_token=min_token)
        worst = max(worst, float(np.abs(back - chunk).max()))
    return FastFit(tokenizer=tokenizer, scale=float(scale), min_token=int(min_token), max_token=data_max,
                   horizon=horizon, action_dim=action_dim, n_chunks=arr.shape[0],
                   mean_tokens_per_chunk=float(np.mean(lengths)), max_roundtrip_error=worst)


def _train_like_the_processor(texts: list[str], *, alphabet_size: int, vocab_size: int,
                              min_frequency: int) -> Tokenizer:
    """A BPE built from ``ByteLevelBPETokenizer()``'s components, trained with the processor's trainer."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=[], initial_alphabet=[chr(i) for i in range(alphabet_size)],
                                  max_token_length=PROCESSOR_MAX_TOKEN_LENGTH)
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer
