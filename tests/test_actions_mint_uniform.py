"""MinT uniform tokens: token i -> i / 256 - 1.0, one per dim per step, time-major."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evalharness.actions.decoders.mint_uniform import decode_tokens, encode_chunk
from evalharness.actions.decoders import build_decoder
from evalharness.actions.pipeline import build_pipeline
from evalharness.errors import DecodeError, UserInputError

STEP = 1 / 256


def test_documented_golden_values():
    # The page's formula, evaluated by hand: 0/256 - 1, 256/256 - 1, 511/256 - 1.
    chunk = decode_tokens([0, 256, 511], action_dim=3)
    assert chunk.tolist() == [[-1.0, 0.0, 0.99609375]]


def test_layout_is_time_major():
    tokens = list(range(100, 114))  # 2 steps x 7 dims
    chunk = decode_tokens(tokens, action_dim=7)
    assert chunk.shape == (2, 7)
    # token t * 7 + d is dim d of step t
    for t in range(2):
        for d in range(7):
            assert chunk[t, d] == tokens[t * 7 + d] / 256 - 1.0


def test_parameters_change_the_constants():
    chunk = decode_tokens([0, 255, 128], action_dim=3, divisor=128, token_high=256)
    assert chunk.tolist() == [[-1.0, 255 / 128 - 1.0, 0.0]]
    with pytest.raises(DecodeError, match=r"token 256 at position 0 is out of range; allowed: 0 <= token < 256"):
        decode_tokens([256, 0, 0], action_dim=3, divisor=128, token_high=256)


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 12), st.integers(1, 8)),
              elements=st.floats(-1.0, 511 / 256 - 1.0, allow_nan=False)))
def test_roundtrip_within_half_a_step(chunk):
    tokens = encode_chunk(chunk)
    assert tokens.min() >= 0 and tokens.max() < 512
    back = decode_tokens(tokens, action_dim=chunk.shape[1])
    assert back.shape == chunk.shape
    assert np.abs(back - chunk).max() <= STEP / 2 + 1e-12


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(0, 511), min_size=7, max_size=70).filter(lambda t: len(t) % 7 == 0))
def test_decode_then_encode_is_identity_on_tokens(tokens):
    assert encode_chunk(decode_tokens(tokens)).tolist() == tokens


def test_encoder_refuses_unrepresentable_values_unless_clipping():
    with pytest.raises(ValueError, match="maps to token 512"):
        encode_chunk([[1.0]])
    assert encode_chunk([[1.0], [-3.0]], clip=True).tolist() == [511, 0]


@pytest.mark.parametrize("tokens, message", [
    ([0, 256, 600, 0, 0, 0, 0], "token 600 at position 2 is out of range; allowed: 0 <= token < 512"),
    ([-1, 0, 0, 0, 0, 0, 0], "token -1 at position 0 is out of range; allowed: 0 <= token < 512"),
    ([0] * 10, "10 tokens is not a multiple of action_dim 7"),
    ([], "got no tokens"),
    ([0.5] * 7, "expected integer token ids; got float64 values (e.g. 0.5)"),
    ([[0] * 7], "expected a 1-D sequence of token ids; got an array of shape (1, 7)"),
])
def test_malformed_tokens_are_decode_errors(tokens, message):
    with pytest.raises(DecodeError) as info:
        decode_tokens(tokens)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_configured_horizon_is_enforced():
    decoder = build_decoder({"name": "mint_uniform", "horizon": 2})
    assert decoder.decode([256] * 14, []).shape == (2, 7)
    with pytest.raises(DecodeError, match=r"7 tokens make 1 steps; the configured horizon is 2 \(14 tokens\)"):
        decoder.decode([256] * 7, [])


@pytest.mark.parametrize("cfg, message", [
    ({"name": "mint_uniform", "divsor": 256}, "decoder.divsor is not a setting; allowed:"),
    ({"name": "mint_uniform", "divisor": 0}, "decoder.divisor=0 is not valid; allowed: a number > 0"),
    ({"name": "mint_uniform", "action_dim": 0}, "decoder.action_dim=0 is not valid; allowed: an integer >= 1"),
    ({"name": "mint_uniform", "token_low": 10, "token_high": 10}, "decoder.token_high=10 is not valid; allowed: an integer > token_low (10)"),
    ({"name": "mint_uniform", "on_error": "ignore"}, "decoder.on_error='ignore' is not valid; allowed: error, zeros"),
])
def test_configuration_mistakes_are_user_input_errors(cfg, message):
    with pytest.raises(UserInputError) as info:
        build_pipeline(cfg, None, None)
    assert message in str(info.value)


def test_unknown_parameter_message_lists_the_allowed_keys():
    with pytest.raises(UserInputError) as info:
        build_pipeline({"name": "mint_uniform", "divsor": 256}, None, None)
    assert "divisor" in str(info.value) and "token_high" in str(info.value)
