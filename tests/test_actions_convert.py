"""Converters: delta -> absolute with the raw state, OpenVLA gripper, keep 7 dims, clip."""

from __future__ import annotations

import numpy as np
import pytest

from evalharness.actions.convert import build_converters
from evalharness.errors import DecodeError, UserInputError

STATE = np.array([0.11, -0.22, 0.33, 1.5, -1.25, 0.75, 0.04, -0.04])


def run(cfg, chunk, state=None):
    events: list[str] = []
    out = np.asarray(chunk, dtype=np.float64)
    for step in build_converters(cfg):
        out = step(out, state, events)
    return out, events


def test_delta_to_absolute_adds_the_first_six_raw_state_values():
    chunk = np.arange(14, dtype=float).reshape(2, 7) / 10
    out, events = run({"steps": ["delta_to_absolute"]}, chunk, STATE)
    np.testing.assert_allclose(out[:, :6], chunk[:, :6] + STATE[:6])
    np.testing.assert_array_equal(out[:, 6], chunk[:, 6])  # the gripper is absolute already
    assert events == []
    np.testing.assert_array_equal(chunk, np.arange(14).reshape(2, 7) / 10)  # input untouched


def test_delta_dims_is_configurable():
    out, _ = run({"steps": ["delta_to_absolute"], "delta_dims": 3}, np.zeros((1, 7)), STATE)
    np.testing.assert_allclose(out[0], [0.11, -0.22, 0.33, 0, 0, 0, 0])


def test_openvla_gripper_mapping():
    chunk = np.zeros((5, 7))
    chunk[:, 6] = [0.0, 1.0, 0.2, 0.9, 0.5]
    out, _ = run({"steps": ["openvla_gripper"]}, chunk)
    # 0 = close -> +1 (LIBERO close), 1 = open -> -1 (LIBERO open); -sign(2g - 1)
    assert out[:, 6].tolist() == [1.0, -1.0, 1.0, -1.0, -0.0]
    np.testing.assert_array_equal(out[:, :6], 0.0)


def test_keep_first_7_and_clip():
    chunk = np.array([[1.5, -2.0, 0.5, 0, 0, 0, 1, 9.0, 9.0]])
    out, events = run({"steps": ["keep_first_7"], "clip": True}, chunk)
    assert out.tolist() == [[1.0, -1.0, 0.5, 0, 0, 0, 1]]
    assert events == ["clip: 2 of 7 action values outside [-1, 1] clipped (most extreme: -2)"]
    _, quiet = run({"steps": ["clip"]}, np.zeros((1, 7)))
    assert quiet == []


def test_presets_as_in_the_conf_files():
    chunk = np.full((2, 8), 0.5)
    out, _ = run({"name": "openpi_libero", "steps": ["delta_to_absolute", "keep_first_7"]}, chunk, STATE)
    assert out.shape == (2, 7)
    np.testing.assert_allclose(out[0, :6], 0.5 + STATE[:6])
    out, _ = run({"name": "openvla", "steps": ["keep_first_7", "openvla_gripper"]}, chunk)
    assert out.shape == (2, 7) and out[0, 6] == 0.0  # 2 * 0.5 - 1 = 0 -> sign 0


def test_runtime_problems():
    with pytest.raises(UserInputError, match="convert step 'delta_to_absolute' needs the raw robot state"):
        run({"steps": ["delta_to_absolute"]}, np.zeros((1, 7)))
    with pytest.raises(DecodeError, match="the state has 4 values; expected at least delta_dims = 6"):
        run({"steps": ["delta_to_absolute"]}, np.zeros((1, 7)), STATE[:4])
    with pytest.raises(DecodeError, match="state value nan at index 2 is not finite"):
        run({"steps": ["delta_to_absolute"]}, np.zeros((1, 7)), np.array([0, 0, np.nan, 0, 0, 0, 0, 0]))
    with pytest.raises(DecodeError, match="keep_first_7: the chunk has 6 dims per step; LIBERO needs 7"):
        run({"steps": ["keep_first_7"]}, np.zeros((1, 6)))
    with pytest.raises(DecodeError, match="gripper_dim 6 does not exist"):
        run({"steps": ["openvla_gripper"]}, np.zeros((1, 6)))


@pytest.mark.parametrize("cfg, message", [
    ({"steps": ["delta_to_absolute", "flip"]},
     "convert.steps.1='flip' is not valid; allowed: delta_to_absolute, openvla_gripper, keep_first_7, clip"),
    ({"steps": "keep_first_7"}, "convert.steps='keep_first_7' is not valid; allowed: a list of step names"),
    ({"clip": "yes"}, "convert.clip='yes' is not valid; allowed: true, false"),
    ({"delta_dims": 0}, "convert.delta_dims=0 is not valid; allowed: an integer >= 1"),
    ({"step": []}, "convert.step is not a setting; allowed: name, steps, delta_dims, gripper_dim, clip"),
])
def test_config_mistakes(cfg, message):
    with pytest.raises(UserInputError) as info:
        build_converters(cfg)
    assert message in str(info.value)
