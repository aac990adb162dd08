"""Statistics for success rates: Wilson intervals, rate summaries, paired tests, Holm.

A success rate without its count and interval misleads (see docs/reference/statistics.md):
9/10 and 450/500 are both "90%", but the first is compatible with anything from 60% to 98%. The Wilson score interval is used because the normal approximation
collapses to a zero-width interval at 0% and 100%, exactly where policies often sit.

For comparing two runs of the same episodes (regression gates) the comparison is paired,
so :func:`mcnemar_exact` tests the discordant episodes; :func:`holm` controls the false
alarm rate when many tasks are tested at once.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from statistics import NormalDist
from typing import Any

__all__ = [
    "wilson_interval",
    "RateSummary",
    "rate_summary",
    "mcnemar_exact",
    "holm",
    "unpaired_exact",
    "difference_interval",
    "UNPAIRED_TESTS",
]

UNPAIRED_TESTS = ("boschloo", "fisher")


def _check_counts(k: int, n: int) -> None:
    for name, value in (("k", k), ("n", n)):
        if isinstance(value, bool) or not isinstance(value, int):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if n < 0 or not 0 <= k <= n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")


def wilson_interval(k: int, n: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for ``k`` successes in ``n`` trials.

    Closed form, with ``p = k/n`` and ``z`` the two-sided normal quantile::

        centre    = (p + z²/2n) / (1 + z²/n)
        halfwidth = z / (1 + z²/n) * sqrt(p(1-p)/n + z²/4n²)

    Matches ``scipy.stats.binomtest(k, n).proportion_ci(confidence, method="wilson")``.
    With ``n == 0`` there is no evidence at all, so the interval is the whole range
    ``(0.0, 1.0)`` (a deliberate choice over NaN: it is still a valid interval, and the
    summary separately reports the rate itself as null).
    """
    _check_counts(k, n)
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2.0)
    z2 = z * z
    p = k / n
    denom = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denom
    half = (z / denom) * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n))
    # At k == 0 (k == n) the bound is exactly 0 (1); rounding must not push it past.
    low = 0.0 if k == 0 else max(0.0, centre - half)
    high = 1.0 if k == n else min(1.0, centre + half)
    return (low, high)


@dataclass(frozen=True)
class RateSummary:
    """Successes over episodes with a verdict, its Wilson interval, and errors kept apart.

    ``episodes`` counts only episodes that reached a verdict (successes + failures);
    ``errors`` (episodes that could not run) are neither successes nor failures and do
    not enter the rate. ``rate`` is None when ``episodes == 0``; the interval is then
    (0.0, 1.0), see :func:`wilson_interval`.
    """

    successes: int
    episodes: int
    errors: int
    rate: float | None
    ci_low: float
    ci_high: float

    @property
    def failures(self) -> int:
        return self.episodes - self.successes

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def rate_summary(successes: int, episodes: int, errors: int = 0, confidence: float = 0.95) -> RateSummary:
    """Build a :class:`RateSummary` from counts (``episodes`` excludes ``errors``)."""
    low, high = wilson_interval(successes, episodes, confidence)
    if isinstance(errors, bool) or not isinstance(errors, int) or errors < 0:
        raise ValueError(f"errors must be a non-negative int, got {errors!r}")
    rate = successes / episodes if episodes else None
    return RateSummary(successes, episodes, errors, rate, low, high)


def mcnemar_exact(b: int, c: int, alternative: str = "two-sided") -> float:
    """Exact McNemar p-value for paired binary outcomes.

    ``b`` and ``c`` are the discordant counts (e.g. b = episodes the baseline solved and
    the candidate failed, c = the reverse). Under the null each discordant episode is
    equally likely to go either way, so ``b ~ Binomial(b + c, 1/2)``; concordant pairs
    carry no information about the difference. Returns 1.0 when there are no discordant
    pairs. ``alternative`` is passed to :func:`scipy.stats.binomtest` (on ``b``).
    """
    for name, value in (("b", b), ("c", c)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a non-negative int, got {value!r}")
    if b + c == 0:
        return 1.0
    from scipy.stats import binomtest  # local import: scipy is slow to import

    return float(binomtest(b, b + c, 0.5, alternative=alternative).pvalue)


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the input order.

    Reject hypothesis i at family-wise level alpha iff ``holm(p)[i] <= alpha``. The
    step-down adjustment is ``max_{j <= rank(i)} min(1, (m - j) * p_(j))`` (0-based
    ranks), which is uniformly more powerful than plain Bonferroni.
    """
    m = len(pvalues)
    for p in pvalues:
        if not (isinstance(p, (int, float)) and 0.0 <= p <= 1.0):
            raise ValueError(f"p-values must be numbers in [0, 1], got {p!r}")
    order = sorted(range(m), key=lambda i: pvalues[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * float(pvalues[i])))
        adjusted[i] = running
    return adjusted


def unpaired_exact(k1: int, n1: int, k2: int, n2: int, alternative: str, test: str = "boschloo") -> float:
    """Exact p-value comparing two independent binomial samples (run 1 vs run 2).

    ``alternative="greater"`` tests whether run 1's success rate exceeds run 2's (a drop
    from run 1 to run 2), ``"less"`` the reverse. ``test`` is ``"boschloo"`` (the
    unconditional test, uniformly more powerful than Fisher's) or ``"fisher"``, both from
    scipy.stats on the 2x2 table [[k1, n1-k1], [k2, n2-k2]].
    """
    _check_counts(k1, n1)
    _check_counts(k2, n2)
    if test not in UNPAIRED_TESTS:
        raise ValueError(f"test must be one of {UNPAIRED_TESTS}, got {test!r}")
    if n1 == 0 or n2 == 0:
        return 1.0
    from scipy.stats import boschloo_exact, fisher_exact

    table = [[k1, n1 - k1], [k2, n2 - k2]]
    if test == "fisher":
        return float(fisher_exact(table, alternative=alternative).pvalue)
    if (k1 + k2) in (0, n1 + n2):
        return 1.0  # all outcomes equal: scipy's Boschloo returns NaN for a degenerate table
    return float(min(1.0, boschloo_exact(table, alternative=alternative).pvalue))


def difference_interval(
    base_k: int, base_n: int, cand_k: int, cand_n: int, *, discordant: tuple[int, int] | None = None,
    confidence: float = 0.95,
) -> tuple[float, float, float]:
    """(difference, low, high) for the candidate's rate minus the baseline's.

    Newcombe's hybrid score interval (Newcombe 1998, "method 10" for independent samples,
    "method 10" of the paired paper for paired ones): it combines the two Wilson intervals
    and so, unlike the Wald interval, stays inside [-1, 1] and is not degenerate at 0% or
    100%. For paired episodes pass ``discordant=(b, c)`` with b = baseline success /
    candidate failure and c = the reverse (then ``base_n == cand_n`` is the pair count); the
    correlation of the pairs then narrows the interval, which is why comparing checkpoints
    on the same episodes is more sensitive than comparing independent runs.
    """
    if base_n == 0 or cand_n == 0:
        return (math.nan, -1.0, 1.0)
    p1, p2 = base_k / base_n, cand_k / cand_n
    l1, u1 = wilson_interval(base_k, base_n, confidence)
    l2, u2 = wilson_interval(cand_k, cand_n, confidence)
    phi = 0.0
    if discordant is not None:
        b, c = discordant
        if base_n != cand_n:
            raise ValueError("paired samples must have the same number of pairs")
        n = base_n
        a = base_k - b  # both succeeded
        d = n - a - b - c  # both failed
        if min(a, d) < 0:
            raise ValueError(f"discordant counts {discordant} do not fit k={base_k}, {cand_k} of n={n}")
        denom = (a + b) * (c + d) * (a + c) * (b + d)
        # Newcombe's correlation estimate, shrunk towards 0 by n/2 when positive (his
        # correction; Altman et al., "Statistics with confidence", 2000, ch. 6).
        cross = a * d - b * c
        shrunk = cross - n / 2 if cross > n / 2 else (cross if cross < 0 else 0.0)
        phi = shrunk / math.sqrt(denom) if denom else 0.0
    diff = p2 - p1
    # Newcombe's bounds for p1 - p2, mirrored for p2 - p1.
    delta = math.sqrt(max(0.0, (p1 - l1) ** 2 - 2 * phi * (p1 - l1) * (u2 - p2) + (u2 - p2) ** 2))
    epsilon = math.sqrt(max(0.0, (u1 - p1) ** 2 - 2 * phi * (u1 - p1) * (p2 - l2) + (p2 - l2) ** 2))
    return (diff, max(-1.0, diff - epsilon), min(1.0, diff + delta))
