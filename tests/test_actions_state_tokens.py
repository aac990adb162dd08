"""pi0-FAST prompt state: digitize(s, linspace(-1, 1, 257)[:-1]) - 1."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evalharness.actions.state_tokens import discretize_state, pi0_fast_prefix
from evalharness.errors import PolicyError, UserInputError


def test_golden_bins():
    # bin i covers [i/128 - 1, (i+1)/128 - 1)
    values = [-1.0, -1.0 + 1 / 128, 0.0, 0.5, 1 - 1 / 128 - 1e-9, 1 - 1 / 128, 1.0]
    tokens = discretize_state(values)
    assert tokens.bins == (0, 1, 128, 192, 254, 255, 255)
    assert tokens.events == []
    assert tokens.text() == "0 1 128 192 254 255 255"


@settings(max_examples=200, deadline=None)
@given(st.floats(-1.0, 1.0, allow_nan=False, exclude_max=True))
def test_each_value_falls_in_its_documented_bin(s):
    (i,) = discretize_state([s]).bins
    assert 0 <= i <= 255
    assert i / 128 - 1 <= s < (i + 1) / 128 - 1  # exact: i / 128 is a power-of-two fraction


def test_below_minus_one_keep_reproduces_openpi_and_reports():
    tokens = discretize_state([-1.5, 0.0, 2.0], out_of_range="keep")
    assert tokens.bins == (-1, 128, 255)
    assert len(tokens.events) == 1
    assert "2 of 3 normalized state values outside [-1, 1] (first: -1.5 at index 0)" in tokens.events[0]
    assert "kept as openpi does" in tokens.events[0]


def test_clip_is_the_default_and_reports():
    tokens = discretize_state([-1.5, 0.0])
    assert tokens.bins == (0, 128)
    assert len(tokens.events) == 1 and "clipped to [-1, 1]" in tokens.events[0]


def test_error_mode_and_non_finite_values():
    with pytest.raises(PolicyError, match=r"1 of 2 normalized state values outside \[-1, 1\] \(first: 1.25 at "
                                          r"index 1\); allowed: -1 <= value <= 1"):
        discretize_state([0.0, 1.25], out_of_range="error")
    with pytest.raises(PolicyError, match="state value nan at index 2 is not finite"):
        discretize_state([0.0, 0.1, np.nan])
    with pytest.raises(UserInputError, match="state out_of_range 'drop' is not valid; allowed: clip, keep, error"):
        discretize_state([0.0], out_of_range="drop")


def test_prefix_text():
    tokens = discretize_state([-1.0, 0.0, 0.999])
    assert pi0_fast_prefix("  Pick_up the BOWL ", tokens) == "Task: pick up the bowl, State: 0 128 255;\n"
