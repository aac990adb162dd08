"""How many episodes a gate needs: power of the paired exact McNemar test (and of the unpaired one).

The gate (:mod:`evalharness.results.gate`) compares a candidate with a baseline on the same
episodes. Only discordant pairs carry information: ``p10`` = P(baseline solves, candidate
fails), ``p01`` = the reverse. A drop of ``delta`` points means ``p10 - p01 = delta``. How many
pairs are discordant is the part a success rate does not tell, so it is a stated model:

- **independent** (the default assumption): given the episode, the candidate's outcome is
  independent of the baseline's, so ``p10 = p1 (1 - p2)``, ``p01 = (1 - p1) p2`` with
  ``p2 = p1 - delta``. For a stochastic policy in a seeded, deterministic simulator this
  overstates discordance (outcomes of the same init state are positively correlated), so the
  episode counts it gives are on the safe side.
- **measured**: ``psi0``, the fraction of episodes on which two runs of the *same* baseline
  disagree, estimated from two baseline runs (:func:`discordance_between`). The candidate
  keeps that noise and adds the drop: ``p01 = psi0 / 2``, ``p10 = psi0 / 2 + delta``.

Power is computed exactly, not by a normal approximation: the discordant count is
``D ~ Binomial(n, p10 + p01)`` and, given ``D = d``, ``b ~ Binomial(d, p10 / (p10 + p01))``; the
one-sided exact McNemar test rejects when ``P(Binomial(d, 1/2) >= b) <= level``, i.e. when ``b``
reaches the critical value :func:`mcnemar_critical`. Per task the level is ``alpha / tasks``
(Holm's first step: the gate flags a regression somewhere exactly when the smallest p-value
is below it), so the per-task counts are what the gate's exit code needs. Exact power is not
monotone in ``n`` (the discrete test's saw-tooth); :func:`episodes_needed` returns the
smallest ``n`` from which on it stays at or above the target.

The unpaired case (two independent runs, e.g. different seeds) uses the one-sided Fisher
exact test, computed exactly the same way; the gate's Boschloo test is at least as powerful,
so those counts are an upper bound for it.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import stats

from evalharness.errors import UserInputError

__all__ = [
    "PairModel",
    "pair_model",
    "mcnemar_critical",
    "mcnemar_power",
    "mcnemar_power_normal",
    "mcnemar_n_normal",
    "fisher_power",
    "fisher_episodes_needed",
    "mcnemar_power_curve",
    "episodes_needed",
    "smallest_drop",
    "discordance_between",
]

MAX_EPISODES = 5000  # the search stops here: beyond it no LIBERO gate is practical
STABLE_WINDOW = 20  # episodes_needed: power must stay above the target this far past n


@dataclass(frozen=True)
class PairModel:
    """Probabilities of the two kinds of discordant pair for one task."""

    p10: float  # baseline solves, candidate fails (evidence of a drop)
    p01: float  # baseline fails, candidate solves
    assumption: str

    @property
    def discordance(self) -> float:
        return self.p10 + self.p01

    @property
    def drop_share(self) -> float:
        """theta: the chance that a discordant pair is a drop."""
        return self.p10 / self.discordance if self.discordance > 0 else 0.5


def _check_rate(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise UserInputError(f"{name} {value!r} is not valid; allowed: a success rate in [0, 1], e.g. 0.8")


def pair_model(base_rate: float, drop: float, discordance: float | None = None) -> PairModel:
    """The discordant-pair probabilities for a drop of ``drop`` from ``base_rate`` (module docstring)."""
    _check_rate("baseline rate", base_rate)
    if not 0.0 < drop <= base_rate:
        raise UserInputError(
            f"drop {drop!r} is not valid for a baseline rate of {base_rate:g}; allowed: a fraction in (0, {base_rate:g}], e.g. 0.05"
        )
    cand = base_rate - drop
    if discordance is None:
        return PairModel(base_rate * (1 - cand), (1 - base_rate) * cand, "independent outcomes given the rates")
    _check_rate("discordance", discordance)
    # a pair cannot be discordant more often than the rates allow: p01 <= both failure
    # of the baseline and success of the candidate
    p01 = min(discordance / 2, 1 - base_rate, base_rate - drop)
    return PairModel(p01 + drop, p01, f"run-to-run discordance {discordance:.3f} plus the drop")


@lru_cache(maxsize=32)
def _critical_table(level: float, max_d: int) -> np.ndarray:
    d = np.arange(max_d + 1)
    # smallest b with P(Bin(d, 1/2) >= b) = sf(b - 1) <= level; d + 1 when none
    crit = stats.binom.isf(level, d, 0.5) + 1
    crit = np.where(np.isnan(crit), d + 1, crit).astype(np.int64)
    crit = np.minimum(crit, d + 1)
    # isf works in floating point: settle the boundary with the exact tail either side
    for _ in range(3):
        lower_ok = (crit >= 1) & (stats.binom.sf(crit - 2, d, 0.5) <= level)
        crit = np.where(lower_ok, crit - 1, crit)
        too_low = (crit <= d) & (stats.binom.sf(crit - 1, d, 0.5) > level)
        crit = np.where(too_low, crit + 1, crit)
    crit.setflags(write=False)
    return crit


def mcnemar_critical(d: int | np.ndarray, level: float) -> np.ndarray:
    """Smallest ``b`` that the one-sided exact McNemar test rejects at ``level`` given ``d``
    discordant pairs (``d + 1`` when no ``b`` is small enough in p-value)."""
    d = np.asarray(d, dtype=np.int64)
    return _critical_table(float(level), int(max(int(d.max(initial=0)), 64)))[d]


def _reject_given_d(model: PairModel, level: float, max_d: int) -> np.ndarray:
    """P(the test rejects | d discordant pairs), d = 0..max_d; it does not depend on n."""
    d = np.arange(max_d + 1)
    return stats.binom.sf(mcnemar_critical(d, level) - 1, d, model.drop_share)


def mcnemar_power_curve(ns: Sequence[int] | np.ndarray, model: PairModel, level: float) -> np.ndarray:
    """Exact power of the one-sided exact McNemar test at each pair count in ``ns``."""
    ns = np.asarray(ns, dtype=np.int64)
    if model.discordance <= 0 or ns.size == 0:
        return np.zeros(ns.shape)
    reject = _reject_given_d(model, level, int(ns.max(initial=0)))
    d = np.arange(reject.size)
    weights = stats.binom.pmf(d[None, :], ns[:, None], model.discordance)  # zero where d > n
    return np.clip(weights @ reject, 0.0, 1.0) * (ns > 0)


def mcnemar_power(n: int, model: PairModel, level: float) -> float:
    """Exact power of the one-sided exact McNemar test with ``n`` pairs at ``level``."""
    return float(mcnemar_power_curve([n], model, level)[0])


def mcnemar_n_normal(model: PairModel, level: float, power: float) -> float:
    """Connor's (1987) normal-approximation sample size for McNemar's test, one-sided.

    ``n = (z_a sqrt(psi) + z_b sqrt(psi - delta^2))^2 / delta^2`` with ``psi`` the discordance;
    a closed form to check the exact computation against, not used for the printed counts.
    """
    delta, psi = model.p10 - model.p01, model.discordance
    za, zb = stats.norm.isf(level), stats.norm.ppf(power)
    return float((za * math.sqrt(psi) + zb * math.sqrt(max(psi - delta * delta, 0.0))) ** 2 / (delta * delta))


def mcnemar_power_normal(n: int, model: PairModel, level: float) -> float:
    """The inverse of :func:`mcnemar_n_normal`: approximate power at ``n`` pairs."""
    delta, psi = model.p10 - model.p01, model.discordance
    za = stats.norm.isf(level)
    spread = math.sqrt(max(psi - delta * delta, 1e-12))
    return float(stats.norm.cdf((delta * math.sqrt(n) - za * math.sqrt(psi)) / spread))


def fisher_power(n: int, base_rate: float, cand_rate: float, level: float) -> float:
    """Exact power of the one-sided Fisher test, ``n`` independent episodes a run.

    Every table (k1, k2) is weighted by its binomial probability; its p-value is the
    hypergeometric tail that ``scipy.stats.fisher_exact(..., alternative="greater")`` gives.
    """
    if n <= 0:
        return 0.0
    k = np.arange(n + 1)
    k1, k2 = np.meshgrid(k, k, indexing="ij")
    total = k1 + k2
    # P(K1 >= k1) for K1 ~ Hypergeom(2n, total successes, n draws)
    p = stats.hypergeom.sf(k1 - 1, 2 * n, total, n)
    weights = np.outer(stats.binom.pmf(k, n, base_rate), stats.binom.pmf(k, n, cand_rate))
    return float(np.clip(weights[p <= level * (1 + 1e-9)].sum(), 0.0, 1.0))


def _first_stable(powers: np.ndarray, target: float) -> int | None:
    ok = powers >= target
    for i in range(len(ok)):
        if ok[i] and ok[i : i + STABLE_WINDOW].all():
            return i + 1
    return None


def episodes_needed(
    model: PairModel, level: float, power: float, *, max_n: int = MAX_EPISODES,
) -> int | None:
    """Smallest episodes per task from which on the exact paired power stays >= ``power``."""
    start = max(1, int(mcnemar_n_normal(model, level, power) * 0.5))
    stop = min(max_n, max(start * 4, start + 200))
    while True:
        ns = np.arange(start, stop + STABLE_WINDOW + 1)
        powers = mcnemar_power_curve(ns, model, level)
        found = _first_stable(powers, power)
        if found is not None:
            n = int(ns[found - 1])
            if n == start and start > 1:  # the search began too late: look below it
                start, stop = 1, start
                continue
            return n
        if stop >= max_n:
            return None
        start, stop = stop, min(max_n, stop * 2)


def smallest_drop(
    base_rate: float, n: int, level: float, power: float, discordance: float | None = None, *, step: float = 0.001,
) -> float | None:
    """The smallest drop (to ``step``) that ``n`` pairs per task detect with ``power``, or None."""
    def power_at(i: int) -> float:
        return mcnemar_power(n, pair_model(base_rate, min(i * step, base_rate), discordance), level)

    lo, hi = 0, int(math.floor(base_rate / step + 1e-9))
    if hi == 0 or power_at(hi) < power:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if power_at(mid) >= power:
            hi = mid
        else:
            lo = mid
    return min(hi * step, base_rate)


def fisher_episodes_needed(base_rate: float, drop: float, level: float, power: float, max_n: int = 2000) -> int | None:
    """Smallest episodes per run for the unpaired one-sided Fisher test to reach ``power``.

    Bisection between bounds around the normal-approximation size; Fisher's power is
    close to monotone in ``n`` (its saw-tooth is a fraction of a point), and the answer is
    then walked down while the power holds.
    """
    cand = base_rate - drop
    za, zb = stats.norm.isf(level), stats.norm.ppf(power)
    pbar = base_rate - drop / 2
    guess = (za * math.sqrt(2 * pbar * (1 - pbar)) + zb * math.sqrt(base_rate * (1 - base_rate) + cand * (1 - cand))) ** 2 / drop**2
    lo, hi = max(1, int(guess * 0.5)), min(max_n, max(2, int(guess * 2)))
    if fisher_power(hi, base_rate, cand, level) < power:
        return None
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if fisher_power(mid, base_rate, cand, level) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def discordance_between(first: Sequence[tuple[tuple, bool]], second: Sequence[tuple[tuple, bool]]) -> tuple[int, int]:
    """(discordant, pairs) between two runs of one policy, matched on their pair keys."""
    a, b = dict(first), dict(second)
    common = a.keys() & b.keys()
    return sum(1 for k in common if a[k] != b[k]), len(common)
