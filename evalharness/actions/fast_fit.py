"""Fitting a FAST tokenizer (byte-level BPE over DCT coefficients) on action chunks.

The published universal tokenizer fits most robots, but a checkpoint trained with its own
FAST vocabulary needs that vocabulary to decode, and tests need a small one they can
build in a temporary directory. Fitting follows the FAST recipe: DCT each chunk over time
(orthonormal), scale and round, ``min_token`` = the smallest coefficient seen, write each
chunk as ``chr(c - min_token)`` characters (frequency-major) and train a byte-level BPE
(``tokenizers``) on those strings. Byte-level means any string can be encoded (the 256
byte symbols are always in the vocabulary), which is why ``vocab_size`` must be >= 256.

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

BYTE_ALPHABET_SIZE = 256


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
                       min_frequency: int = 2, min_token: int | None = None) -> FastFit:
    """Fit a byte-level BPE FAST tokenizer on (N, H, D) normalized chunks.

    ``min_token`` defaults to the smallest rounded coefficient in the data; pass a lower
    value to leave room for chunks more extreme than the training data.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    arr = check_chunks(chunks)
    if scale <= 0:
        raise UserInputError(f"scale {scale!r} is not valid; allowed: a number > 0")
    if vocab_size < BYTE_ALPHABET_SIZE:
        raise UserInputError(f"vocab_size {vocab_size} is not valid; allowed: >= {BYTE_ALPHABET_SIZE} "
                             "(the byte-level alphabet)")
    if min_frequency < 1:
        raise UserInputError(f"min_frequency {min_frequency} is not valid; allowed: >= 1")
    coeffs = np.stack([fast.chunk_to_coefficients(c, scale) for c in arr])
    data_min, data_max = int(coeffs.min()), int(coeffs.max())
    if min_token is None:
        min_token = data_min
    elif min_token > data_min:
        raise UserInputError(f"min_token {min_token} is not valid; allowed: <= {data_min}, the smallest "
                             "coefficient in the data")
    texts = [fast.coefficients_to_text(c, min_token) for c in coeffs]

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=vocab_size, min_frequency=min_frequency, show_progress=False,
                                  special_tokens=[], initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tokenizer.train_from_iterator(texts, trainer=trainer)

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
