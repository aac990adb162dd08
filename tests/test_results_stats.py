"""Statistics: Wilson against scipy and the worked values, McNemar, Holm."""

from __future__ import annotations

import math

import pytest
from scipy.stats import binomtest

from evalharness.results.stats import RateSummary, holm, mcnemar_exact, rate_summary, wilson_interval

GRID = [(k, n) for n in (1, 2, 3, 5, 10, 20, 37, 50, 100, 500, 2000) for k in sorted({0, 1, n // 3, n // 2, n - 1, n})]


@pytest.mark.parametrize("k,n", GRID)
@pytest.mark.parametrize("confidence", [0.8, 0.95, 0.99])
def test_wilson_matches_scipy(k, n, confidence):
    ref = binomtest(k, n).proportion_ci(confidence_level=confidence, method="wilson")
    low, high = wilson_interval(k, n, confidence)
    assert low == pytest.approx(ref.low, abs=1e-12)
    assert high == pytest.approx(ref.high, abs=1e-12)
    assert 0.0 <= low <= k / n <= high <= 1.0


@pytest.mark.parametrize(
    "k,n,expected",
    [(9, 10, (0.596, 0.982)), (45, 50, (0.786, 0.957)), (475, 500, (0.927, 0.966))],
)
def test_wilson_worked_values(k, n, expected):
    low, high = wilson_interval(k, n)
    assert (round(low, 3), round(high, 3)) == expected


def test_wilson_extremes_and_empty():
    assert wilson_interval(0, 10)[0] == 0.0
    assert wilson_interval(10, 10)[1] == 1.0
    assert wilson_interval(0, 0) == (0.0, 1.0)
    # Narrower with more data at the same rate.
    w10 = wilson_interval(9, 10)
    w500 = wilson_interval(450, 500)
    assert w500[1] - w500[0] < w10[1] - w10[0]


@pytest.mark.parametrize("k,n", [(-1, 5), (6, 5), (1, -1)])
def test_wilson_rejects_bad_counts(k, n):
    with pytest.raises(ValueError):
        wilson_interval(k, n)


def test_wilson_rejects_bad_confidence_and_types():
    with pytest.raises(ValueError):
        wilson_interval(1, 2, confidence=1.0)
    with pytest.raises(TypeError):
        wilson_interval(1.0, 2)  # type: ignore[arg-type]


def test_rate_summary():
    rs = rate_summary(9, 10, errors=2)
    assert isinstance(rs, RateSummary)
    assert (rs.successes, rs.episodes, rs.errors, rs.failures) == (9, 10, 2, 1)
    assert rs.rate == 0.9
    assert (round(rs.ci_low, 3), round(rs.ci_high, 3)) == (0.596, 0.982)
    assert rs.as_dict()["errors"] == 2
    empty = rate_summary(0, 0, errors=3)
    assert empty.rate is None and (empty.ci_low, empty.ci_high) == (0.0, 1.0)
    with pytest.raises(ValueError):
        rate_summary(1, 2, errors=-1)


@pytest.mark.parametrize("b,c", [(0, 5), (3, 9), (10, 10), (1, 0), (25, 11)])
def test_mcnemar_exact_matches_binomial(b, c):
    expected = binomtest(b, b + c, 0.5).pvalue
    assert mcnemar_exact(b, c) == pytest.approx(expected)
    assert mcnemar_exact(b, c) == pytest.approx(mcnemar_exact(c, b))


def test_mcnemar_known_values():
    # 0 vs 6 discordant: p = 2 * 0.5**6
    assert mcnemar_exact(0, 6) == pytest.approx(2 * 0.5**6)
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(0, 6, alternative="less") == pytest.approx(0.5**6)
    with pytest.raises(ValueError):
        mcnemar_exact(-1, 3)


def test_holm_hand_computed():
    p = [0.01, 0.04, 0.03, 0.005]
    # sorted: 0.005*4=0.02, 0.01*3=0.03, 0.03*2=0.06, 0.04*1=0.04 -> monotone 0.06
    assert holm(p) == pytest.approx([0.03, 0.06, 0.06, 0.02])


def test_holm_caps_and_edge_cases():
    assert holm([]) == []
    assert holm([0.5, 0.9]) == [1.0, 1.0]
    assert holm([0.2]) == [0.2]
    adjusted = holm([0.001, 0.2, 0.02, 0.5, 0.02])
    assert all(a >= p for a, p in zip(adjusted, [0.001, 0.2, 0.02, 0.5, 0.02]))
    assert adjusted[2] == adjusted[4]  # ties get the same adjusted value
    with pytest.raises(ValueError):
        holm([0.1, math.nan])
