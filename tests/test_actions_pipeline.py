"""The composed pipeline: the API the engine calls, fallbacks as events, errors as one line."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from omegaconf import OmegaConf

from evalharness.actions.pipeline import ActionPipeline, PipelineResult, build_pipeline
from evalharness.errors import DecodeError, UserInputError

Q01 = [-0.9, -0.8, -0.7, -0.1, -0.2, -0.3, -1.0, 0.0]
Q99 = [0.9, 0.85, 0.95, 0.12, 0.2, 0.33, 1.0, 5.0]
RAW_STATE = np.array([0.11, -0.22, 0.33, 1.5, -1.25, 0.75, 0.04, -0.04], dtype=np.float32)


@pytest.fixture
def stats(tmp_path):
    path = tmp_path / "norm_stats.json"
    path.write_text(json.dumps({"norm_stats": {"actions": {"q01": Q01, "q99": Q99, "mean": [0] * 8,
                                                           "std": [1] * 8}}}))
    return path


def test_defaults_pass_a_float_chunk_through():
    pipe = build_pipeline(None, None, None)
    assert isinstance(pipe, ActionPipeline)
    chunk = np.linspace(-1, 1, 21).reshape(3, 7).astype(np.float32)
    result = pipe(chunk, state=RAW_STATE)
    assert isinstance(result, PipelineResult)
    assert result.actions.dtype == np.float64 and result.actions.shape == (3, 7)
    np.testing.assert_array_equal(result.actions, chunk.astype(np.float64))
    assert result.events == []


def test_mint_tokens_quantile_delta_keep7_end_to_end(stats):
    """pi0-FAST-style pipeline, each stage recomputed here from its documented formula."""
    tokens = [0, 256, 511, 128, 384, 300, 200] * 2
    pipe = build_pipeline({"name": "mint_uniform"},
                          {"name": "quantile", "stats_path": str(stats), "key": "actions"},
                          {"name": "openpi_libero", "steps": ["delta_to_absolute", "keep_first_7"],
                           "delta_dims": 6, "clip": False})
    result = pipe(tokens, state=RAW_STATE)
    x_n = np.array(tokens, dtype=float).reshape(2, 7) / 256 - 1.0
    q01, q99 = np.array(Q01[:7]), np.array(Q99[:7])
    x = (x_n + 1) / 2 * (q99 - q01 + 1e-6) + q01
    x[:, :6] += RAW_STATE[:6].astype(np.float64)
    np.testing.assert_allclose(result.actions, x, atol=1e-12)
    assert list(result.stages) == ["decode", "unnormalize", "delta_to_absolute", "keep_first_7"]
    np.testing.assert_allclose(result.stages["decode"], x_n)


def test_openvla_end_to_end(tmp_path):
    stats = tmp_path / "dataset_statistics.json"
    stats.write_text(json.dumps({"libero_goal_no_noops": {"action": {
        "q01": Q01[:7], "q99": Q99[:7], "mask": [True] * 6 + [False]}}}))
    pipe = build_pipeline({"name": "openvla_bins"},
                          {"name": "openvla", "stats_path": str(stats), "key": "libero_goal_no_noops/action"},
                          {"name": "openvla", "steps": ["keep_first_7", "openvla_gripper"]})
    # ids: V-128 -> centre 0.0 on the arm dims; gripper id V-256 -> ~1.0 (open) -> LIBERO -1 (open)
    result = pipe([32000 - 128] * 6 + [32000 - 256])
    q01, q99 = np.array(Q01[:6]), np.array(Q99[:6])
    np.testing.assert_allclose(result.actions[0, :6], 0.5 * (0.0 + 1) * (q99 - q01) + q01, atol=1e-12)
    assert result.actions[0, 6] == -1.0


def test_on_error_zeros_is_explicit_and_recorded():
    pipe = build_pipeline({"name": "mint_uniform", "horizon": 2, "on_error": "zeros"},
                          {"name": "range", "low": 0.0, "high": 2.0}, None)
    result = pipe([999] * 14)
    # a zero chunk in normalized space, then unnormalized like any chunk: 0 -> middle of [0, 2]
    np.testing.assert_array_equal(result.actions, np.ones((2, 7)))
    assert len(result.events) == 1
    event = result.events[0]
    assert "on_error=zeros" in event and "2x7 zero chunk" in event
    assert "token 999 at position 0 is out of range" in event


def test_on_error_zeros_needs_a_horizon():
    with pytest.raises(UserInputError, match="on_error 'zeros' needs horizon and action_dim"):
        build_pipeline({"name": "mint_uniform", "on_error": "zeros"}, None, None)


def test_on_error_error_raises_one_line():
    pipe = build_pipeline({"name": "mint_uniform"}, None, None)
    with pytest.raises(DecodeError) as info:
        pipe([1, 2, 3])
    assert str(info.value) == ("mint_uniform: 3 tokens is not a multiple of action_dim 7; expected one token "
                               "per dimension per step")
    assert info.value.kind == "decode_error"


def test_nan_in_a_float_chunk_names_its_position():
    chunk = np.zeros((3, 7))
    chunk[1, 3] = np.nan
    with pytest.raises(DecodeError, match=r"decoder 'none': value nan at step 1, dim 3 is not finite"):
        build_pipeline(None, None, None)(chunk)


def test_none_decoder_checks_shape():
    with pytest.raises(DecodeError, match=r"expected an \(H, D\) action chunk with H, D >= 1; got shape \(7,\)"):
        build_pipeline(None, None, None)(np.zeros(7))
    pipe = build_pipeline({"name": "none", "horizon": 10, "action_dim": 7}, None, None)
    with pytest.raises(DecodeError, match="chunk has 5 steps; the configured horizon is 10"):
        pipe(np.zeros((5, 7)))


def test_token_decoder_refuses_a_float_chunk():
    with pytest.raises(DecodeError, match="expected a 1-D sequence of token ids"):
        build_pipeline({"name": "mint_uniform"}, None, None)(np.zeros((2, 7)))


def test_final_actions_must_be_7_wide():
    with pytest.raises(DecodeError, match=r"produced actions of shape \(2, 8\); LIBERO needs \(H, 7\)"):
        build_pipeline(None, None, None)(np.zeros((2, 8)))
    assert build_pipeline(None, None, {"steps": ["keep_first_7"]})(np.zeros((2, 32))).actions.shape == (2, 7)


def test_configuration_mistakes_are_one_line_user_input_errors(tmp_path):
    cases = [
        (({"name": "bins"}, None, None),
         "decoder 'bins' is not valid; allowed: fast, mint_uniform, none, openvla_bins"),
        (({"name": "mint_uniform", "action_dims": 7}, None, None), "decoder.action_dims is not a setting; allowed: name, on_error, action_dim"),
        ((None, {"name": "quantile", "stats_path": str(tmp_path / "none.json")}, None),
         "is not an existing file"),
        ((None, None, {"steps": ["absolute"]}), "convert.steps.0='absolute' is not valid; allowed: delta_to_absolute"),
        (([1, 2], None, None), "action pipeline config [1, 2] is not valid; allowed: a mapping"),
    ]
    for args, message in cases:
        with pytest.raises(UserInputError) as info:
            build_pipeline(*args)
        assert message in str(info.value)
        assert "\n" not in str(info.value)


def test_delta_conversion_without_state_is_a_configuration_error():
    pipe = build_pipeline(None, None, {"steps": ["delta_to_absolute"]})
    with pytest.raises(UserInputError, match="needs the raw robot state"):
        pipe(np.zeros((1, 7)))


def test_accepts_omegaconf_configs(stats):
    cfg = OmegaConf.create({"decoder": {"name": "mint_uniform", "action_dim": 7},
                            "normalize": {"name": "zscore", "stats_path": str(stats), "key": "actions", "dims": 7},
                            "convert": {"name": "x", "steps": ["keep_first_7"], "clip": True}})
    pipe = build_pipeline(cfg.decoder, cfg.normalize, cfg.convert)
    result = pipe([256] * 7)
    np.testing.assert_allclose(result.actions, np.zeros((1, 7)))  # zscore: 0 * (1 + 1e-6) + 0


def test_describe_is_json_and_records_the_stats_hash(stats):
    pipe = build_pipeline({"name": "mint_uniform", "horizon": 2, "on_error": "zeros"},
                          {"name": "quantile", "stats_path": str(stats)},
                          {"name": "openpi_libero", "steps": ["delta_to_absolute", "keep_first_7"], "clip": True})
    desc = json.loads(json.dumps(pipe.describe()))
    assert desc["decoder"]["name"] == "mint_uniform" and desc["decoder"]["on_error"] == "zeros"
    assert desc["decoder"]["divisor"] == 256 and desc["decoder"]["token_high"] == 512
    assert desc["normalize"]["stats_sha256"] == hashlib.sha256(stats.read_bytes()).hexdigest()
    assert desc["convert"] == {"name": "openpi_libero", "steps": [
        {"name": "delta_to_absolute", "dims": 6}, {"name": "keep_first_7"},
        {"name": "clip", "low": -1.0, "high": 1.0}]}


def test_the_engine_call_shape_does_not_modify_inputs(stats):
    pipe = build_pipeline(None, {"name": "quantile", "stats_path": str(stats)}, {"steps": ["delta_to_absolute"]})
    chunk = np.zeros((2, 7))
    state = RAW_STATE.copy()
    pipe(chunk, state=state)
    assert not chunk.any()
    np.testing.assert_array_equal(state, RAW_STATE)
