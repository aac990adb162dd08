"""Generated stand-ins for the two tokenizers pi0-FAST uses, which cannot be downloaded here.

- :func:`paligemma_like_sentencepiece`: a small SentencePiece model laid out like
  PaliGemma's (Gemma's normalizer: no dummy prefix, whitespace kept, digits split; pad 0,
  eos 1, bos 2, unk 3; ``<locNNNN>`` and then 128 ``<segNNN>`` user-defined pieces at the
  very top of the vocabulary). FAST ids land at ``V - 1 - 128 - fast_id``: the first
  ``n_loc`` of them on ``<loc>`` pieces, the rest on ordinary text pieces, as in the real
  PaliGemma (FAST's 2048 ids overrun its 1024 ``<loc>`` pieces), so openpi's
  decode-to-text-and-re-encode path is exercised on both kinds.
- :func:`fitted_fast_tokenizer`: a FAST tokenizer fitted with the project's own
  ``fit_fast_tokenizer`` (the FAST processor's recipe) on smooth random chunks.

Both are written into a test's temporary directory; nothing here is copied from openpi.
"""

from __future__ import annotations

import io
import json
import random
from pathlib import Path

import numpy as np

SKIP_TOKENS = 128
HORIZON = 10
ACTION_DIM = 7
STATE_DIM = 8
WORDS = ("put the black bowl on plate pick up alphabet soup and place it in basket open top drawer of "
         "cabinet turn on stove ketchup cream cheese butter wine bottle rack").split()


def paligemma_like_sentencepiece(directory: Path, *, n_loc: int = 256, seed: int = 0) -> Path:
    """Train a small SentencePiece model and append PaliGemma's top-of-vocabulary pieces."""
    import sentencepiece as spm
    from sentencepiece import sentencepiece_model_pb2 as pb

    rng = random.Random(seed)
    lines = []
    for _ in range(3000):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 10)))
        state = " ".join(str(rng.randint(-1, 255)) for _ in range(STATE_DIM))
        lines += [f"Task: {words}, State: {state};", f"Action: | {words} | {state} |"]
    model = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(lines), model_writer=model, vocab_size=500, byte_fallback=True,
        pad_id=0, eos_id=1, bos_id=2, unk_id=3, character_coverage=1.0, minloglevel=2, hard_vocab_limit=False,
        add_dummy_prefix=False, remove_extra_whitespaces=False, split_digits=True,
        user_defined_symbols=["|"])  # a low id, as PaliGemma's "|", away from the FAST range at the top
    proto = pb.ModelProto()
    proto.ParseFromString(model.getvalue())
    user = pb.ModelProto.SentencePiece.USER_DEFINED
    for name in [f"<loc{i:04d}>" for i in range(n_loc)] + [f"<seg{i:03d}>" for i in range(SKIP_TOKENS)]:
        piece = proto.pieces.add()
        piece.piece, piece.score, piece.type = name, 0.0, user
    path = Path(directory) / "paligemma_like.model"
    path.write_bytes(proto.SerializeToString())
    return path


def smooth_chunks(n: int, seed: int = 0) -> np.ndarray:
    """(n, HORIZON, ACTION_DIM) chunks in about [-1, 1]: random walks, as robot actions look."""
    rng = np.random.default_rng(seed)
    start = rng.uniform(-0.8, 0.8, size=(n, 1, ACTION_DIM))
    steps = rng.normal(0, 0.05, size=(n, HORIZON, ACTION_DIM)).cumsum(axis=1)
    return np.clip(start + steps, -1, 1)


def fitted_fast_tokenizer(directory: Path, *, vocab_size: int = 360, seed: int = 0) -> dict:
    """Fit a FAST tokenizer (``evalharness fit-fast``'s code) and return its decoder parameters."""
    from evalharness.actions.fast_fit import fit_fast_tokenizer

    fit = fit_fast_tokenizer(smooth_chunks(400, seed), vocab_size=vocab_size, min_token=None)
    path = fit.save(Path(directory) / "fast")
    return {"tokenizer_path": str(path), "scale": fit.scale, "min_token": fit.min_token,
            "vocab_size": fit.tokenizer.get_vocab_size(), "horizon": fit.horizon, "action_dim": fit.action_dim}


def norm_stats(directory: Path, *, seed: int = 0) -> Path:
    """An openpi ``norm_stats.json`` (state 8-D, actions 7-D) with one q01 == q99 dimension."""
    rng = np.random.default_rng(seed)

    def entry(dim: int) -> dict:
        mean = rng.normal(0, 0.3, dim)
        std = rng.uniform(0.05, 0.5, dim)
        q01 = mean - rng.uniform(0.1, 1.0, dim)
        q99 = mean + rng.uniform(0.1, 1.0, dim)
        q01[-1] = q99[-1]  # openpi's epsilon keeps this dimension finite
        return {"mean": mean.tolist(), "std": std.tolist(), "q01": q01.tolist(), "q99": q99.tolist()}

    path = Path(directory) / "norm_stats.json"
    path.write_text(json.dumps({"norm_stats": {"state": entry(STATE_DIM), "actions": entry(ACTION_DIM)}}))
    return path
