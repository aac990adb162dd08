"""OpenVLA bins: 256 edges over [-1, 1], 255 centres, token = 32000 - digitize(a, edges)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evalharness.actions.decoders.openvla_bins import decode_tokens, encode_chunk
from evalharness.actions.decoders import build_decoder
from evalharness.errors import DecodeError

V = 32000
# From the definition: bin width 2/255, so the first centre is -1 + 1/255, the last 1 - 1/255.
FIRST_CENTRE = -1.0 + 1.0 / 255
LAST_CENTRE = 1.0 - 1.0 / 255


def test_ids_at_both_ends_of_the_range():
    # id V-1 -> index 0 (first centre); id V-256 -> index 255, clipped to 254 (last centre);
    # id V-255 -> index 254 (last centre as well).
    chunk = decode_tokens([V - 1, V - 256, V - 255, V - 128, V - 1, V - 1, V - 1], action_dim=7)
    assert chunk[0, 0] == pytest.approx(FIRST_CENTRE, abs=1e-12)
    assert chunk[0, 1] == pytest.approx(LAST_CENTRE, abs=1e-12)
    assert chunk[0, 2] == pytest.approx(LAST_CENTRE, abs=1e-12)
    # id V-128 -> index 127 -> centre -1 + (2 * 127 + 1) / 255 = 0.0
    assert chunk[0, 3] == pytest.approx(0.0, abs=1e-12)


def test_encoding_golden_values():
    edges = np.linspace(-1, 1, 256)
    values = np.array([[-1.0, 1.0, 0.0, 0.5, -0.999, 0.999, 0.25]])
    expected = [V - int(np.digitize(v, edges)) for v in values[0]]
    assert encode_chunk(values).tolist() == expected
    assert expected[:3] == [V - 1, V - 256, V - 128]


@settings(max_examples=60, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 4), st.just(7)),
              elements=st.floats(-1.0, 1.0, allow_nan=False)))
def test_roundtrip_within_half_a_bin(chunk):
    ids = encode_chunk(chunk)
    assert ids.min() >= V - 256 and ids.max() <= V - 1
    back = decode_tokens(ids, action_dim=7)
    assert np.abs(back - chunk).max() <= 1.0 / 255 + 1e-12


@pytest.mark.parametrize("bad", [V, V - 257, 5])
def test_error_mode_refuses_ids_outside_the_action_range(bad):
    with pytest.raises(DecodeError) as info:
        decode_tokens([V - 1] * 3 + [bad] + [V - 1] * 3, out_of_range="error")
    assert f"id {bad} at position 3 is not an action token; allowed: 31744 <= id < 32000" in str(info.value)


@pytest.mark.parametrize("build", [
    lambda: (lambda tokens, events: decode_tokens(tokens, events=events)),
    lambda: build_decoder({"name": "openvla_bins"}).decode,
], ids=["function", "preset"])
def test_the_default_clips_as_openvla_and_records_a_decode_event(build):
    """issue 25 item 9: by default (so under protocol=openvla) an out-of-range id goes to the
    nearest end bin as OpenVLA's decoder puts it, and the action is a counted decode_event."""
    from evalharness.policies.pipelined import DECODE_EVENT_PREFIXES

    events: list[str] = []
    chunk = build()([V, V - 300, V - 1, V - 1, V - 1, V - 1, V - 1], events)
    assert chunk[0, 0] == pytest.approx(FIRST_CENTRE)  # V - V - 1 = -1 -> clipped to 0
    assert chunk[0, 1] == pytest.approx(LAST_CENTRE)   # 299 -> clipped to 254
    assert len(events) == 1 and "2 of 7 ids outside [31744, 32000) clipped" in events[0]
    assert events[0].startswith(DECODE_EVENT_PREFIXES)  # what the episode counts as decode_events
    in_range: list[str] = []
    decode_tokens([V - 1] * 7, events=in_range)
    assert in_range == []  # only malformed output is an event


@pytest.mark.parametrize("tokens, message", [
    ([V - 1] * 8, "8 tokens is not a multiple of action_dim 7"),
    ([], "got no tokens"),
])
def test_malformed_lengths(tokens, message):
    with pytest.raises(DecodeError, match=message):
        decode_tokens(tokens)


def test_default_horizon_is_one_action():
    decoder = build_decoder({"name": "openvla_bins"})
    assert decoder.decode([V - 1] * 7, []).shape == (1, 7)
    with pytest.raises(DecodeError, match="14 tokens make 2 steps; the configured horizon is 1"):
        decoder.decode([V - 1] * 14, [])
    multi = build_decoder({"name": "openvla_bins", "horizon": None})
    assert multi.decode([V - 1] * 14, []).shape == (2, 7)
