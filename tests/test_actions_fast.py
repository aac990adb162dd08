"""FAST: DCT over time + BPE, PaliGemma id mapping, marker cutting, length mismatches."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import scipy.fft
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from tokenizers import Tokenizer, decoders, models, trainers

from evalharness.actions.decoders.fast import decode_fast_ids, paligemma_to_fast
from evalharness.actions.decoders import build_decoder
from evalharness.actions.fast_fit import fit_fast_tokenizer
from evalharness.actions.pipeline import build_pipeline
from evalharness.errors import DecodeError, UserInputError

H, D, SCALE = 10, 7, 10.0
PG_V = 257152
# Made-up encodings of "Action: " and "|": PaliGemma's tokenizer is not available here.
PREFIX = [4022, 235292, 235248]
END = [235371]
EOS = 1


def smooth_chunks(n: int, seed: int, horizon: int = H, dims: int = D) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.cumsum(rng.normal(0, 0.15, (n, horizon, dims)), axis=1), -1, 1)


# --- a tokenizer built in the test, from first principles ------------------------------------

def first_principles_text(chunk: np.ndarray, min_token: int) -> tuple[np.ndarray, str]:
    """scipy DCT over time, x scale, round; frequency-major chr(c - min_token)."""
    coeffs = np.around(scipy.fft.dct(chunk, axis=0, norm="ortho") * SCALE).astype(int)
    return coeffs, "".join(chr(int(c) - min_token) for c in coeffs.reshape(-1))  # row = frequency


@pytest.fixture(scope="module")
def golden(tmp_path_factory):
    """A plain character-level BPE (not the harness's fit), its file, and one encoded chunk."""
    chunks = smooth_chunks(40, seed=1)
    min_token = -40
    texts = [first_principles_text(c, min_token)[1] for c in chunks]
    tokenizer = Tokenizer(models.BPE())
    tokenizer.decoder = decoders.Fuse()
    alphabet = [chr(i) for i in range(0, 81)]  # coefficients -40..40
    trainer = trainers.BpeTrainer(vocab_size=200, min_frequency=2, show_progress=False,
                                  initial_alphabet=alphabet, special_tokens=[])
    tokenizer.train_from_iterator(texts, trainer=trainer)
    path = tmp_path_factory.mktemp("golden") / "tokenizer.json"
    tokenizer.save(str(path))
    chunk = chunks[7]
    coeffs, text = first_principles_text(chunk, min_token)
    ids = tokenizer.encode(text).ids
    assert len(ids) < H * D  # BPE merged something: the test exercises real merges
    expected = scipy.fft.idct(coeffs / SCALE, axis=0, norm="ortho")
    return {"path": path, "min_token": min_token, "ids": ids, "chunk": chunk, "expected": expected,
            "coeffs": coeffs}


def golden_cfg(golden, **extra):
    return {"name": "fast", "tokenizer_path": str(golden["path"]), "horizon": H, "action_dim": D,
            "scale": SCALE, "min_token": golden["min_token"], **extra}


def test_golden_chunk_through_a_bpe_fitted_in_the_test(golden):
    pipe = build_pipeline(golden_cfg(golden, id_space="fast"), None, None)
    result = pipe(golden["ids"])
    np.testing.assert_allclose(result.actions, golden["expected"], atol=1e-12)
    # and the reconstruction is the chunk up to the rounding of the coefficients
    assert np.abs(result.actions - golden["chunk"]).max() <= 0.5 / SCALE * math.sqrt(H)
    assert result.events == []


def test_paligemma_mapping_golden_values():
    # paligemma_id = V - 1 - 128 - fast_id, and the same formula maps back
    assert paligemma_to_fast([257023, 254976]).tolist() == [0, 2047]
    assert paligemma_to_fast(paligemma_to_fast([0, 5, 2047])).tolist() == [0, 5, 2047]


def test_full_pi0_fast_output_is_cut_between_the_markers(golden):
    pg_ids = [PG_V - 1 - 128 - i for i in golden["ids"]]
    output = [2, 17, 33] + PREFIX + pg_ids + END + [EOS] + [99, 98]
    pipe = build_pipeline(golden_cfg(golden, action_prefix_ids=PREFIX, action_end_ids=END, eos_id=EOS),
                          None, None)
    result = pipe(output)
    np.testing.assert_allclose(result.actions, golden["expected"], atol=1e-12)
    assert result.events == []
    # EOS alone ends the actions too
    np.testing.assert_allclose(pipe([2] + PREFIX + pg_ids + [EOS, 3]).actions, golden["expected"], atol=1e-12)


def test_missing_end_marker_uses_the_rest_and_says_so(golden):
    pg_ids = [PG_V - 1 - 128 - i for i in golden["ids"]]
    pipe = build_pipeline(golden_cfg(golden, action_prefix_ids=PREFIX, action_end_ids=END, eos_id=EOS),
                          None, None)
    result = pipe(PREFIX + pg_ids)
    np.testing.assert_allclose(result.actions, golden["expected"], atol=1e-12)
    assert len(result.events) == 1 and "no end marker" in result.events[0]


def test_missing_action_prefix_is_a_decode_error(golden):
    pipe = build_pipeline(golden_cfg(golden, action_prefix_ids=PREFIX), None, None)
    with pytest.raises(DecodeError, match=r"the 'Action: ' marker ids \[4022, 235292, 235248\] do not occur"):
        pipe([2, 3, 4])


def test_a_text_token_where_an_action_id_belongs_is_named(golden):
    pipe = build_pipeline(golden_cfg(golden), None, None)
    with pytest.raises(DecodeError) as info:
        pipe([PG_V - 1 - 128 - 3, 5])
    message = str(info.value)
    assert "PaliGemma id 5 at action position 1 is not a FAST action token" in message
    assert f"allowed: {PG_V - 1 - 128 - 199} <= id <= {PG_V - 1 - 128}" in message


def test_fast_id_outside_the_vocabulary(golden):
    pipe = build_pipeline(golden_cfg(golden, id_space="fast"), None, None)
    with pytest.raises(DecodeError, match=r"FAST id 5000 at action position 0 is out of range; "
                                          r"allowed: 0 <= id < 200"):
        pipe([5000])


# --- coefficient count != H * D ----------------------------------------------------------------

def ids_for_shape(golden, horizon: int) -> tuple[list[int], np.ndarray]:
    tokenizer = Tokenizer.from_file(str(golden["path"]))
    coeffs, text = first_principles_text(smooth_chunks(1, seed=5, horizon=horizon)[0], golden["min_token"])
    return tokenizer.encode(text).ids, coeffs.reshape(-1)


def test_length_mismatch_is_an_error_by_default(golden):
    ids, _ = ids_for_shape(golden, horizon=9)
    pipe = build_pipeline(golden_cfg(golden, id_space="fast"), None, None)
    with pytest.raises(DecodeError, match=r"decoded to 63 DCT coefficients; expected horizon x action_dim "
                                          r"= 10 x 7 = 70"):
        pipe(ids)


def test_length_mismatch_zeros_as_openpi_is_recorded(golden):
    ids, _ = ids_for_shape(golden, horizon=9)
    pipe = build_pipeline(golden_cfg(golden, id_space="fast", on_length_mismatch="zeros"), None, None)
    result = pipe(ids)
    assert result.actions.shape == (H, D) and not result.actions.any()
    assert len(result.events) == 1 and "on_length_mismatch=zeros" in result.events[0]
    assert "63 DCT coefficients" in result.events[0]


@pytest.mark.parametrize("horizon", [9, 11])
def test_length_mismatch_pad_truncate_as_lerobot_is_recorded(golden, horizon):
    ids, flat = ids_for_shape(golden, horizon=horizon)
    pipe = build_pipeline(golden_cfg(golden, id_space="fast", on_length_mismatch="pad_truncate"), None, None)
    result = pipe(ids)
    fixed = np.zeros(H * D)
    n = min(flat.size, H * D)
    fixed[:n] = flat[:n]  # pad with zero coefficients, or keep the first H * D
    expected = scipy.fft.idct(fixed.reshape(H, D) / SCALE, axis=0, norm="ortho")
    np.testing.assert_allclose(result.actions, expected, atol=1e-12)
    assert len(result.events) == 1 and "on_length_mismatch=pad_truncate" in result.events[0]
    assert ("padded" if horizon < H else "truncated") in result.events[0]


# --- round trips through the harness's own fitted tokenizer ----------------------------------

MIN_TOKEN = -(math.ceil(math.sqrt(H) * SCALE) + 1)  # |coefficient| <= ||x||_2 <= sqrt(H) for |x| <= 1


def coverage_chunks(low: int, high: int) -> np.ndarray:
    """One chunk per coefficient value in low..high (all its coefficients equal to it).

    A tokenizer fitted as the FAST processor fits can encode only the characters its data
    produced (byte-level pre-tokenization remaps most of the initial alphabet), so the
    training data must hold every value a round trip may meet.
    """
    return np.stack([scipy.fft.idct(np.full((H, D), v / SCALE), axis=0, norm="ortho") for v in range(low, high + 1)])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory):
    data = np.concatenate([smooth_chunks(200, seed=2), coverage_chunks(MIN_TOKEN, -MIN_TOKEN)])
    fit = fit_fast_tokenizer(data, scale=SCALE, vocab_size=400)
    assert fit.min_token == MIN_TOKEN
    path = fit.save(tmp_path_factory.mktemp("fitted"))
    return fit, path


@pytest.fixture(scope="module")
def fitted_decoders(fitted):
    _, path = fitted
    base = {"name": "fast", "tokenizer_path": str(path), "horizon": H, "action_dim": D, "scale": SCALE,
            "min_token": MIN_TOKEN}
    return {space: build_decoder({**base, "id_space": space}) for space in ("fast", "paligemma")}


@settings(max_examples=60, deadline=None)
@given(chunk=arrays(np.float64, (H, D), elements=st.floats(-1.0, 1.0, allow_nan=False)),
       space=st.sampled_from(["fast", "paligemma"]))
def test_roundtrip_recovers_the_rounded_coefficients(fitted_decoders, chunk, space):
    decoder = fitted_decoders[space]
    ids = decoder.encode(chunk)
    events: list[str] = []
    back = decoder.decode(ids, events)
    assert events == []
    rounded = np.around(scipy.fft.dct(chunk, axis=0, norm="ortho") * SCALE)
    np.testing.assert_allclose(scipy.fft.dct(back, axis=0, norm="ortho") * SCALE, rounded, atol=1e-9)
    # each coefficient is off by <= 0.5 / scale, so each dim's error has L2 norm <= sqrt(H) * 0.5 / scale
    assert np.linalg.norm(back - chunk, axis=0).max() <= math.sqrt(H) * 0.5 / SCALE + 1e-12


def test_fit_reports_min_token_from_the_data_and_saves_it(tmp_path):
    chunks = smooth_chunks(50, seed=3)
    expected_min = int(np.around(scipy.fft.dct(chunks, axis=1, norm="ortho") * SCALE).min())
    fit = fit_fast_tokenizer(chunks, scale=SCALE, vocab_size=300)
    assert fit.min_token == expected_min
    assert fit.max_roundtrip_error <= 0.5 / SCALE * math.sqrt(H)
    path = fit.save(tmp_path / "tok")
    saved = json.loads((tmp_path / "tok" / "processor_config.json").read_text())
    assert saved == {"scale": SCALE, "min_token": expected_min, "vocab_size": fit.tokenizer.get_vocab_size(),
                     "time_horizon": H, "action_dim": D}
    pipe = build_pipeline(fit.decoder_config(path), None, None)
    ids = fit.tokenizer.encode(fit_text(chunks[0], expected_min)).ids
    np.testing.assert_allclose(pipe(ids).actions, scipy.fft.idct(
        np.around(scipy.fft.dct(chunks[0], axis=0, norm="ortho") * SCALE) / SCALE, axis=0, norm="ortho"),
        atol=1e-12)


def fit_text(chunk, min_token):
    return first_principles_text(chunk, min_token)[1]


def test_invalid_utf8_from_byte_level_bpe_is_a_decode_error():
    # At scale 100 the coefficients pass chr(127), so byte-level BPE holds single UTF-8
    # continuation bytes, and an id sequence can stop in the middle of a character.
    fit = fit_fast_tokenizer(smooth_chunks(60, seed=2), scale=100.0, vocab_size=1200)
    lone = next(i for i in range(fit.tokenizer.get_vocab_size()) if "\ufffd" in fit.tokenizer.decode([i]))
    with pytest.raises(DecodeError, match=r"BPE decoding gave invalid UTF-8 \(U\+FFFD at character 0\)"):
        decode_fast_ids([lone], fit.tokenizer, horizon=H, action_dim=D, scale=100.0, min_token=fit.min_token)


def test_encoder_refuses_coefficients_below_min_token(fitted_decoders):
    with pytest.raises(ValueError, match="is below min_token"):
        fitted_decoders["fast"].encode(np.full((H, D), -3.0))


@pytest.mark.parametrize("kwargs, message", [
    ({"vocab_size": 10}, r"vocab_size 10 is not valid; allowed: >= \d+, the range of the coefficients"),
    ({"min_token": 1000}, "min_token 1000 is not valid; allowed: <="),
])
def test_fit_argument_errors(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        fit_fast_tokenizer(smooth_chunks(5, seed=4), **kwargs)


@pytest.mark.parametrize("chunks, message", [
    (np.zeros((10, 7)), r"has shape \(10, 7\); allowed: an array of shape \(N, H, D\)"),
    (np.full((2, 10, 7), np.nan), "contains NaN or infinity"),
])
def test_fit_refuses_malformed_chunks(chunks, message):
    with pytest.raises(UserInputError, match=message):
        fit_fast_tokenizer(chunks)


def test_tokenizer_file_problems_are_user_input_errors(tmp_path):
    with pytest.raises(UserInputError, match="decoder 'fast' tokenizer_path is required"):
        build_pipeline({"name": "fast"}, None, None)
    with pytest.raises(UserInputError, match="is not an existing file"):
        build_pipeline({"name": "fast", "tokenizer_path": str(tmp_path / "nope.json")}, None, None)
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(UserInputError, match="is not a tokenizers JSON file"):
        build_pipeline({"name": "fast", "tokenizer_path": str(bad)}, None, None)


def test_config_choices_are_checked(golden):
    with pytest.raises(UserInputError, match="decoder.on_length_mismatch='pad' is not valid; allowed: error, zeros, "
                                             "pad_truncate"):
        build_pipeline(golden_cfg(golden, on_length_mismatch="pad"), None, None)
    with pytest.raises(UserInputError, match="decoder.id_space='gemma' is not valid; allowed: paligemma, fast"):
        build_pipeline(golden_cfg(golden, id_space="gemma"), None, None)
    with pytest.raises(UserInputError, match="decoder.action_prefix_ids='Action: ' is not valid; allowed: a list of integers or null"):
        build_pipeline(golden_cfg(golden, action_prefix_ids="Action: "), None, None)


def test_marker_ids_that_are_also_action_ids_are_refused(golden):
    # PaliGemma's EOS (1) is a valid raw FAST id: as a marker it would cut actions short.
    with pytest.raises(UserInputError) as info:
        build_pipeline(golden_cfg(golden, id_space="fast", eos_id=1), None, None)
    assert "eos_id has id 1, which is also an action id in id_space 'fast' (0..199)" in str(info.value)
    top = PG_V - 1 - 128
    with pytest.raises(UserInputError, match=f"action_end_ids has id {top}, which is also an action id"):
        build_pipeline(golden_cfg(golden, action_end_ids=[top]), None, None)


def test_describe_records_the_tokenizer_hash(golden):
    import hashlib

    desc = build_pipeline(golden_cfg(golden), None, None).describe()["decoder"]
    assert desc["tokenizer_sha256"] == hashlib.sha256(golden["path"].read_bytes()).hexdigest()
    assert desc["min_token"] == golden["min_token"] and desc["id_space"] == "paligemma"
    json.dumps(desc)
