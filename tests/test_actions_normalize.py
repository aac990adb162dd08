"""Unnormalizers (quantile, z-score, range, OpenVLA) and the stats files they read."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from evalharness.actions.normalize import build_normalizer
from evalharness.errors import DecodeError, UserInputError

# 8-dim action stats (LIBERO's 7 + one padding dim), as in openpi's norm_stats.json
Q01 = [-0.9, -0.8, -0.7, -0.1, -0.2, -0.3, -1.0, 0.0]
Q99 = [0.9, 0.85, 0.95, 0.12, 0.2, 0.33, 1.0, 5.0]
MEAN = [0.05, 0.1, -0.1, 0.0, 0.01, -0.02, 0.2, 7.0]
STD = [0.3, 0.35, 0.4, 0.05, 0.06, 0.07, 0.9, 2.0]


@pytest.fixture
def openpi_stats(tmp_path):
    path = tmp_path / "norm_stats.json"
    path.write_text(json.dumps({"norm_stats": {
        "actions": {"mean": MEAN, "std": STD, "q01": Q01, "q99": Q99},
        "state": {"mean": [0.0] * 8, "std": [1.0] * 8, "q01": [-2.0] * 8, "q99": [2.0] * 8},
    }}))
    return path


@pytest.fixture
def openvla_stats(tmp_path):
    path = tmp_path / "dataset_statistics.json"
    path.write_text(json.dumps({"libero_spatial_no_noops": {
        "action": {"q01": Q01[:7], "q99": Q99[:7], "mean": MEAN[:7], "std": STD[:7],
                   "mask": [True] * 6 + [False]},
        "num_transitions": 1000,
    }}))
    return path


def test_quantile_golden_uses_first_7_dims(openpi_stats):
    norm = build_normalizer({"name": "quantile", "stats_path": str(openpi_stats)})
    x_n = np.array([[-1.0, 0.0, 1.0, 0.5, -0.5, 0.25, 0.9, 0.3]])
    out = norm.unnormalize(x_n)
    q01, q99 = np.array(Q01[:7]), np.array(Q99[:7])
    expected = (x_n[0, :7] + 1) / 2 * (q99 - q01 + 1e-6) + q01
    np.testing.assert_allclose(out[0, :7], expected, rtol=0, atol=1e-15)
    assert out[0, 7] == 0.3  # beyond the stats' first 7: untouched
    assert out[0, 0] == Q01[0]  # -1 maps to q01 exactly


def test_zscore_golden(openpi_stats):
    norm = build_normalizer({"name": "zscore", "stats_path": str(openpi_stats), "dims": None})
    x_n = np.linspace(-2, 2, 8)[None]
    expected = x_n * (np.array(STD) + 1e-6) + np.array(MEAN)
    np.testing.assert_allclose(norm.unnormalize(x_n), expected, atol=1e-15)


def test_range_golden_and_scalar_box():
    norm = build_normalizer({"name": "range", "low": [-2.0] * 7, "high": [2.0] * 7})
    np.testing.assert_allclose(norm.unnormalize([[0.0] * 7, [1.0] * 7, [-1.0] * 7]),
                               [[0.0] * 7, [2.0] * 7, [-2.0] * 7])
    scalar = build_normalizer({"name": "range", "low": 0.0, "high": 10.0, "dims": None})
    np.testing.assert_allclose(scalar.unnormalize([[-1.0, 0.0, 1.0]]), [[0.0, 5.0, 10.0]])


def test_openvla_golden_applies_to_masked_dims_only(openvla_stats):
    norm = build_normalizer({"name": "openvla", "stats_path": str(openvla_stats),
                             "key": "libero_spatial_no_noops/action"})
    x_n = np.array([[0.5, -0.5, 0.0, 1.0, -1.0, 0.2, 0.7]])
    q01, q99 = np.array(Q01[:6]), np.array(Q99[:6])
    out = norm.unnormalize(x_n)
    np.testing.assert_allclose(out[0, :6], 0.5 * (x_n[0, :6] + 1) * (q99 - q01) + q01, atol=1e-15)
    assert out[0, 6] == 0.7  # the gripper is not normalized (mask false)
    assert norm.describe()["mask_source"] == "stats file"


def test_openvla_mask_falls_back_to_arm_dims(openpi_stats):
    norm = build_normalizer({"name": "openvla", "stats_path": str(openpi_stats), "key": "actions"})
    assert norm.describe()["mask"] == [True] * 6 + [False]
    explicit = build_normalizer({"name": "openvla", "stats_path": str(openpi_stats), "key": "actions",
                                 "mask": [True] * 7})
    assert explicit.describe()["mask"] == [True] * 7


def stats_normalizers(openpi_stats, openvla_stats):
    return [
        build_normalizer({"name": "quantile", "stats_path": str(openpi_stats)}),
        build_normalizer({"name": "zscore", "stats_path": str(openpi_stats)}),
        build_normalizer({"name": "range", "low": [-3.0, -2, -1, 0, 1, 2, 3], "high": [3.0, 2, 1, 1, 2, 3, 4]}),
        build_normalizer({"name": "openvla", "stats_path": str(openvla_stats),
                          "key": "libero_spatial_no_noops/action"}),
    ]


@settings(max_examples=50, deadline=None)
@given(arrays(np.float64, st.tuples(st.integers(1, 10), st.just(7)), elements=st.floats(-1.0, 1.0)))
def test_unnormalize_inverts_normalize(tmp_path_factory, x_n):
    base = tmp_path_factory.mktemp("stats")
    openpi_stats = base / "norm_stats.json"
    openpi_stats.write_text(json.dumps({"norm_stats": {"actions": {"mean": MEAN, "std": STD, "q01": Q01,
                                                                   "q99": Q99}}}))
    openvla_stats = base / "dataset_statistics.json"
    openvla_stats.write_text(json.dumps({"libero_spatial_no_noops": {"action": {
        "q01": Q01[:7], "q99": Q99[:7], "mask": [True] * 6 + [False]}}}))
    for norm in stats_normalizers(openpi_stats, openvla_stats):
        x = norm.unnormalize(x_n)
        # OpenVLA's forward map divides by (q99 - q01 + 1e-8), its inverse by nothing: off by
        # at most 2e-8 / min(q99 - q01) = 2e-8 / 0.22 here.
        tolerance = 1e-7 if norm.name == "openvla" else 1e-9
        np.testing.assert_allclose(norm.normalize(x), x_n, atol=tolerance, err_msg=norm.name)
        np.testing.assert_allclose(norm.unnormalize(norm.normalize(x)), x, atol=tolerance, err_msg=norm.name)


def test_normalize_golden_quantile_forward(openpi_stats):
    norm = build_normalizer({"name": "quantile", "stats_path": str(openpi_stats), "key": "state", "dims": None})
    # state stats q01 = -2, q99 = 2: x = 1 -> (1 + 2) / (4 + 1e-6) * 2 - 1
    np.testing.assert_allclose(norm.normalize(np.ones(8)), np.full(8, 3 / (4 + 1e-6) * 2 - 1), atol=1e-15)


def test_inputs_are_not_modified(openpi_stats):
    norm = build_normalizer({"name": "quantile", "stats_path": str(openpi_stats)})
    x = np.zeros((2, 7))
    norm.unnormalize(x)
    assert not x.any()


def test_describe_records_the_stats_file_hash(openpi_stats):
    desc = build_normalizer({"name": "quantile", "stats_path": str(openpi_stats)}).describe()
    assert desc["stats_sha256"] == hashlib.sha256(openpi_stats.read_bytes()).hexdigest()
    assert desc["key"] == "actions" and desc["dims"] == 7
    json.dumps(desc)


def test_chunk_narrower_than_the_stats_is_a_decode_error(openpi_stats):
    norm = build_normalizer({"name": "quantile", "stats_path": str(openpi_stats)})
    with pytest.raises(DecodeError, match="the chunk has 5 dims per step but the normalization covers 7"):
        norm.unnormalize(np.zeros((2, 5)))


def test_config_mistakes(tmp_path, openpi_stats):
    cases = [
        ({"name": "minmax"}, "normalize 'minmax' is not valid; allowed: none, openvla, quantile, range, zscore"),
        ({"name": "quantile"}, "normalize 'quantile' stats_path is required"),
        ({"name": "quantile", "stats_path": str(tmp_path / "missing.json")}, "is not an existing file"),
        ({"name": "quantile", "stats_path": str(openpi_stats), "key": "action"},
         "'action' is not valid; allowed: actions, state"),
        ({"name": "quantile", "stats_path": str(openpi_stats), "dims": 9},
         "dims 9 is not valid; allowed: at most 8"),
        ({"name": "quantile", "stats_path": str(openpi_stats), "stats": "x"},
         "normalize.stats is not a setting; allowed: name, stats_path, key, dims"),
        ({"name": "range", "low": -1.0}, "normalize 'range' high is required"),
        ({"name": "range", "low": [0.0, 1.0], "high": [1.0, 1.0], "dims": None},
         "high 1.0 <= low 1.0 at dim 1; allowed: high > low"),
        ({"name": "range", "low": [0.0] * 3, "high": [1.0] * 3}, "dims 7 is not valid; allowed: at most 3"),
        ({"name": "openvla", "stats_path": str(openpi_stats)}, "normalize 'openvla' key is required"),
        ({"name": "openvla", "stats_path": str(openpi_stats), "key": "actions", "mask": [1, 0]},
         "normalize.mask=[1, 0] is not valid; allowed: a non-empty list of true/false"),
    ]
    for cfg, message in cases:
        with pytest.raises(UserInputError) as info:
            build_normalizer(cfg)
        assert message in str(info.value), cfg
        assert "\n" not in str(info.value)


def test_stats_file_problems(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text("{")
    with pytest.raises(UserInputError, match="is not valid JSON"):
        build_normalizer({"name": "quantile", "stats_path": str(bad)})
    no_std = tmp_path / "no_std.json"
    no_std.write_text(json.dumps({"norm_stats": {"actions": {"q01": Q01, "q99": Q99}}}))
    with pytest.raises(UserInputError, match="stats under 'actions' in .* have no field 'mean'; found: q01, q99"):
        build_normalizer({"name": "zscore", "stats_path": str(no_std)})
    uneven = tmp_path / "uneven.json"
    uneven.write_text(json.dumps({"norm_stats": {"actions": {"q01": Q01, "q99": Q99[:7]}}}))
    with pytest.raises(UserInputError, match=r"different lengths \(q01: 8, q99: 7\)"):
        build_normalizer({"name": "quantile", "stats_path": str(uneven)})
    nan = tmp_path / "nan.json"
    nan.write_text('{"norm_stats": {"actions": {"q01": [NaN], "q99": [1.0]}}}')
    with pytest.raises(UserInputError, match="contains NaN or infinity"):
        build_normalizer({"name": "quantile", "stats_path": str(nan), "dims": None})
