"""Fit a FAST action tokenizer (byte-level BPE over DCT coefficients) on action chunks.

Reads CHUNKS, a .npy array of shape (N, H, D) of action chunks already normalized the
way the model sees them (about [-1, 1]), and fits FAST exactly as the FAST processor's
fit does, so the result is interchangeable with the processor's on the same data: DCT
over time (orthonormal), multiply by --scale and round, min_token = the smallest
coefficient, chr(c - min_token) per coefficient with all dims' lowest frequencies first,
then a byte-level BPE of --vocab-size tokens whose initial alphabet is chr(0) ..
chr(max_token - min_token).

Writes OUT/tokenizer.json and OUT/processor_config.json (scale, min_token, vocab_size,
time_horizon, action_dim), reports the compression and the largest round-trip error over
the data (coefficient rounding bounds it by sqrt(H) * 0.5 / scale), and prints the decoder
config (conf/decoder/fast.yaml keys) that decodes ids made with this tokenizer.

example:
  evalharness fit-fast chunks.npy --out fast_tokenizer --scale 10 --vocab-size 1024
"""

from __future__ import annotations

import argparse

import yaml

from evalharness.actions.fast_fit import fit_fast_tokenizer, load_chunks


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("chunks", metavar="CHUNKS", help=".npy file of normalized action chunks, shape (N, H, D)")
    parser.add_argument("--out", required=True, metavar="DIR", help="directory for tokenizer.json and "
                        "processor_config.json (created if missing)")
    parser.add_argument("--scale", type=float, default=10.0, help="DCT coefficient scale (default 10, as the "
                        "universal tokenizer)")
    parser.add_argument("--vocab-size", type=int, default=1024, help="BPE vocabulary size, at least the "
                        "coefficient range max_token - min_token (default 1024)")
    parser.add_argument("--min-frequency", type=int, default=2, help="minimum pair count for a merge "
                        "(default 2, as the processor; another value departs from it)")
    parser.add_argument("--min-token", type=int, default=None, help="smallest coefficient of the alphabet "
                        "(default: the smallest in the data, as the processor; values the data never produced may "
                        "still be unencodable: fit on data covering the range)")


def run(args: argparse.Namespace) -> int:
    chunks = load_chunks(args.chunks)
    fit = fit_fast_tokenizer(chunks, scale=args.scale, vocab_size=args.vocab_size,
                             min_frequency=args.min_frequency, min_token=args.min_token)
    path = fit.save(args.out)
    n, h, d = chunks.shape
    print(f"fitted FAST tokenizer on {n} chunks of {h} x {d}")
    print(f"  vocabulary: {fit.tokenizer.get_vocab_size()} tokens (byte-level BPE, initial alphabet of "
          f"{fit.max_token - fit.min_token + 1} characters)")
    print(f"  coefficients: scale {fit.scale:g}, min_token {fit.min_token}, max_token {fit.max_token}")
    print(f"  tokens per chunk: {fit.mean_tokens_per_chunk:.1f} on average, vs {h * d} values "
          f"({h * d / max(fit.mean_tokens_per_chunk, 1e-9):.1f}x compression)")
    print(f"  round trip: max |decoded - chunk| = {fit.max_roundtrip_error:.3g} (rounding: <= "
          f"{0.5 / fit.scale * h ** 0.5:.3g})")
    print(f"  wrote {path} and {path.parent / 'processor_config.json'}")
    print()
    print("decoder config (ids straight from this tokenizer; for pi0-FAST-style PaliGemma ids use id_space: "
          "paligemma):")
    print(yaml.safe_dump(fit.decoder_config(path.resolve()), sort_keys=False).rstrip())
    return 0
