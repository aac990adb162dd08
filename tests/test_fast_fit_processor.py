"""``fit-fast`` fits as the FAST processor does, so its tokenizer is interchangeable with one
fitted by ``UniversalActionProcessor.fit`` (physical-intelligence/fast) on the same data.

The reference below is an independent reimplementation of the processor's fit from its
documented algorithm, with the ``tokenizers`` library directly (``ByteLevelBPETokenizer``
and a ``BpeTrainer`` whose initial alphabet is chr(0) .. chr(max - min)); transformers'
``PreTrainedTokenizerFast`` wrapper is left out: it does not change the vocabulary or ids.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.fft
from tokenizers import ByteLevelBPETokenizer
from tokenizers.trainers import BpeTrainer

from evalharness.actions.decoders.fast import decode_fast_ids
from evalharness.actions.fast_fit import fit_fast_tokenizer
from evalharness.errors import DecodeError


def chunks(n: int, seed: int, horizon: int = 10, dims: int = 7) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.cumsum(rng.normal(0, 0.2, (n, horizon, dims)), axis=1), -1, 1)


def processor_fit(action_data: np.ndarray, scale: float, vocab_size: int):
    """The processor's fit steps: DCT per chunk, flatten, round(x * scale) - min -> chr, BPE."""
    dct_tokens = [scipy.fft.dct(a, axis=0, norm="ortho").flatten() for a in action_data]
    everything = np.around(np.concatenate(dct_tokens) * scale)
    max_token, min_token = int(everything.max()), int(everything.min())
    assert max_token - min_token <= vocab_size
    strings = ["".join(map(chr, (np.around(t * scale) - min_token).astype(int))) for t in dct_tokens]
    bpe = ByteLevelBPETokenizer()
    trainer = BpeTrainer(vocab_size=vocab_size, min_frequency=2, show_progress=False, special_tokens=[],
                         initial_alphabet=[chr(i) for i in range(max_token - min_token + 1)],
                         max_token_length=10000)
    bpe._tokenizer.train_from_iterator(iter(strings), trainer=trainer)
    return bpe._tokenizer, min_token, strings


@pytest.mark.parametrize("scale, vocab_size, seed", [(10.0, 400, 1), (10.0, 1024, 2), (40.0, 900, 3)])
def test_same_vocabulary_and_ids_as_the_processor(scale, vocab_size, seed):
    data = chunks(150, seed)
    reference, min_token, strings = processor_fit(data, scale, vocab_size)
    fit = fit_fast_tokenizer(data, scale=scale, vocab_size=vocab_size)
    assert fit.min_token == min_token
    assert fit.tokenizer.get_vocab_size() == reference.get_vocab_size()
    assert fit.tokenizer.get_vocab() == reference.get_vocab()
    for text in strings:
        assert fit.tokenizer.encode(text).ids == reference.encode(text).ids
    # ids from the processor's tokenizer decode with the harness's decoder
    ids = reference.encode(strings[0]).ids
    back = decode_fast_ids(ids, fit.tokenizer, horizon=10, action_dim=7, scale=scale, min_token=min_token)
    expected = scipy.fft.idct(np.around(scipy.fft.dct(data[0], axis=0, norm="ortho") * scale) / scale, axis=0,
                              norm="ortho")
    np.testing.assert_allclose(back, expected, atol=1e-12)


def test_the_initial_alphabet_is_the_coefficient_range_not_the_byte_symbols():
    data = chunks(100, 4)
    fit = fit_fast_tokenizer(data, scale=10.0, vocab_size=500)
    vocab = fit.tokenizer.get_vocab()
    span = fit.max_token - fit.min_token
    # chr(0) .. chr(span) take the first ids, in order (they come first in the alphabet)
    assert [vocab[chr(i)] for i in range(span + 1)] == list(range(span + 1))
    assert fit.tokenizer.get_vocab_size() == 500


def test_saved_tokenizer_round_trips_the_processor_fit(tmp_path):
    data = chunks(80, 5)
    reference, _, strings = processor_fit(data, 10.0, 300)
    path = fit_fast_tokenizer(data, scale=10.0, vocab_size=300).save(tmp_path)
    from tokenizers import Tokenizer

    loaded = Tokenizer.from_file(str(path))
    assert loaded.get_vocab() == reference.get_vocab()
    assert [loaded.encode(t).ids for t in strings[:10]] == [reference.encode(t).ids for t in strings[:10]]


def test_out_of_vocabulary_ids_raise_here_but_the_tokenizers_library_drops_them():
    """The documented departure from openpi: its decode path silently drops unknown ids."""
    data = chunks(80, 6)
    _, min_token, strings = processor_fit(data, 10.0, 300)
    fit = fit_fast_tokenizer(data, scale=10.0, vocab_size=300)
    ids = fit.tokenizer.encode(strings[0]).ids
    vocab = fit.tokenizer.get_vocab_size()
    assert fit.tokenizer.decode([*ids, vocab + 5]) == fit.tokenizer.decode(ids)  # silently dropped
    with pytest.raises(DecodeError, match=rf"FAST id {vocab + 5} at action position {len(ids)} is out of range"):
        decode_fast_ids([*ids, vocab + 5], fit.tokenizer, horizon=10, action_dim=7, scale=10.0, min_token=min_token)
