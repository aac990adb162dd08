"""An anytime-valid regression test on discordant pairs: the statistics of ``gate --sequential``.

The fixed gate looks once, after every episode has run. A gate that looks after every round
and stops when it has seen enough must use a test whose error rate survives the looking:
here an **e-process**, a nonnegative quantity whose expectation is at most 1 at any stopping
time when there is no drop. By Ville's inequality, the chance that it *ever* reaches
``1 / level`` is at most ``level``, however often it is looked at and whenever the gate stops.

Per task, each discordant pair is a coin: ``X = 1`` when the baseline solved the episode and
the candidate failed, ``X = 0`` for the reverse (concordant pairs carry nothing, as in the
exact McNemar test). With no drop, ``P(X = 1) = theta <= 1/2``. The e-process is the
likelihood ratio of ``theta`` against ``1/2``, mixed over a prior on ``theta`` in [1/2, 1]
(a Beta(a, a) truncated to that half; ``a = 1`` is uniform)::

    E(b, c) = 2^(b+c) * Int_{1/2}^1 theta^b (1 - theta)^c dprior(theta)
            = 2^(b+c) * B(b+a, c+a) * I_{1/2}(c+a, b+a) / (B(a, a) / 2)

with ``b``, ``c`` the drop and rise counts so far and ``I`` the regularized incomplete beta
function. For every ``theta' >= 1/2`` and true ``theta <= 1/2``, one factor has expectation
``2 (theta theta' + (1 - theta)(1 - theta')) <= 1``, so E is a supermartingale under the
whole null "no drop", not only at ``theta = 1/2``.

Over tasks: task ``i`` is flagged when its e-process reaches ``tasks / alpha`` (Bonferroni on
e-values). The gate's exit code asks "did any task regress?", and for that question Holm and
Bonferroni reject together (Holm rejects anything exactly when the smallest p-value is below
``alpha / tasks``), so this is the sequential twin of the fixed gate's Holm family.

The suite: a drop spread over all tasks is seen far sooner by the pooled pairs of every task
than by any one task (the fixed gate tests suites too). With more than one task the gate
also runs one **pooled** e-process over all pairs, in the order init state by init state,
task by task within one, and splits alpha in half: each task must reach ``2 tasks / alpha``,
the suite ``2 / alpha`` (:func:`family_thresholds`). The false alarm rate of "any flag" stays
at most alpha by the union bound.

The running maximum is taken over every prefix of the pairs in the plan's order, not only at
round ends: Ville's bound covers all of them, and it makes the verdict a function of the
prefix alone, so a resumed run reaches the same verdict as an uninterrupted one.

A run also stops, with "no regression", when no task could reach its threshold even if
every remaining pair were a drop (E grows with b and shrinks with c): nothing left to run can
change the verdict, so stopping costs no power and no error rate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special

__all__ = [
    "log_e_value",
    "log_threshold",
    "family_thresholds",
    "TaskSequence",
    "scan_task",
    "SequentialDecision",
    "decide",
    "crossing_boundary",
    "sequential_power",
    "simulate",
]

REGRESSED, NO_REGRESSION, CONTINUE = "regressed", "no regression", "continue"


def log_e_value(b: np.ndarray | int, c: np.ndarray | int, prior: float = 1.0) -> np.ndarray:
    """log E(b, c) for the truncated Beta(prior, prior) mixture (module docstring)."""
    b = np.asarray(b, dtype=float)
    c = np.asarray(c, dtype=float)
    tail = special.betainc(c + prior, b + prior, 0.5)  # = 1 - I_{1/2}(b + a, c + a)
    with np.errstate(divide="ignore"):
        log_tail = np.log(np.maximum(tail, 1e-300))
    return (b + c) * math.log(2.0) + special.betaln(b + prior, c + prior) + log_tail - special.betaln(prior, prior) + math.log(2.0)


def log_threshold(alpha: float, tasks: int) -> float:
    """log of the level a task's e-process must reach with tasks alone: ``tasks / alpha``."""
    return math.log(tasks / alpha)


def family_thresholds(alpha: float, tasks: int, pooled: bool = True) -> tuple[float, float | None]:
    """(log threshold of each task, of the pooled suite or None): alpha split in half between
    the tasks and the suite when ``pooled`` and there is more than one task."""
    if pooled and tasks > 1:
        return math.log(2 * tasks / alpha), math.log(2 / alpha)
    return log_threshold(alpha, tasks), None


@dataclass(frozen=True)
class TaskSequence:
    """One task's pairs so far, in plan order, and what its e-process made of them."""

    pairs: int  # pairs seen (concordant included)
    budget: int  # pairs planned
    b: int  # baseline solved, candidate failed
    c: int  # the reverse
    max_log_e: float  # running maximum over every prefix
    crossed_at: int | None  # 1-based pair index where it first reached the threshold
    can_still_cross: bool  # would it reach the threshold if every remaining pair were a drop

    @property
    def max_e(self) -> float:
        return math.exp(min(self.max_log_e, 700.0))


def scan_task(pairs: Sequence[tuple[bool, bool]], budget: int, log_thr: float, prior: float = 1.0) -> TaskSequence:
    """Run the e-process over ``(baseline success, candidate success)`` pairs in plan order."""
    base = np.array([p[0] for p in pairs], dtype=bool)
    cand = np.array([p[1] for p in pairs], dtype=bool)
    b = np.cumsum(base & ~cand)
    c = np.cumsum(~base & cand)
    log_e = log_e_value(b, c, prior) if len(pairs) else np.zeros(0)
    hits = np.nonzero(log_e >= log_thr)[0]
    bn, cn = (int(b[-1]), int(c[-1])) if len(pairs) else (0, 0)
    remaining = max(0, budget - len(pairs))
    best_future = float(log_e_value(bn + remaining, cn, prior))
    return TaskSequence(
        pairs=len(pairs), budget=budget, b=bn, c=cn,
        max_log_e=float(log_e.max()) if len(pairs) else 0.0,
        crossed_at=int(hits[0]) + 1 if hits.size else None,
        can_still_cross=bool(best_future >= log_thr) and remaining > 0,
    )


@dataclass(frozen=True)
class SequentialDecision:
    verdict: str  # regressed / no regression / continue
    reason: str


def decide(
    tasks: Sequence[TaskSequence], futility: bool = True, suite: TaskSequence | None = None,
) -> SequentialDecision:
    """After a round: stop with a regression, stop with none, or go on.

    ``suite`` is the pooled e-process when the family has one. ``futility=False`` runs to
    the budget even when nothing can reach its threshold any more (same verdict, more
    episodes: for a run that must be complete anyway)."""
    crossed = [t for t in tasks if t.crossed_at is not None]
    if crossed or (suite is not None and suite.crossed_at is not None):
        parts = [f"{len(crossed)} task(s)"] if crossed else []
        if suite is not None and suite.crossed_at is not None:
            parts.append("the pooled suite")
        return SequentialDecision(REGRESSED, f"{' and '.join(parts)} reached the e-value threshold")
    if all(t.pairs >= t.budget for t in tasks):
        return SequentialDecision(NO_REGRESSION, "budget reached without a task reaching the threshold")
    if futility and not any(t.can_still_cross for t in [*tasks, *([suite] if suite else [])]):
        return SequentialDecision(
            NO_REGRESSION, "no task can reach the threshold even if every remaining episode were a drop"
        )
    return SequentialDecision(CONTINUE, "undecided")


def crossing_boundary(max_d: int, log_thr: float, prior: float = 1.0) -> np.ndarray:
    """For d = 0..max_d discordant pairs, the smallest b with log E(b, d - b) >= log_thr (d + 1 if none).

    log E(b, d - b) grows with b (a drop replaces a rise), so a bisection per d, run for all
    d at once, finds it.
    """
    d = np.arange(max_d + 1)
    lo, hi = np.full(d.shape, -1), d + 1  # invariant: E(lo) below, E(hi) at or above (hi = d + 1: none)
    while np.any(hi - lo > 1):
        mid = (lo + hi) // 2
        ok = log_e_value(mid, d - mid, prior) >= log_thr
        move = hi - lo > 1
        hi = np.where(move & ok, mid, hi)
        lo = np.where(move & ~ok, mid, lo)
    return hi.astype(np.int64)


def sequential_power(n: int, p10: float, p01: float, log_thr: float, prior: float = 1.0) -> float:
    """Exact chance that a task's e-process reaches the threshold within ``n`` pairs.

    On the discordant pairs alone b is a random walk (up with ``theta = p10 / (p10 + p01)``);
    a dynamic programme over d = 1..n gives the chance f_d that it first crosses at the d-th
    discordant pair, and ``P(cross within n) = sum_d f_d * P(Binomial(n, p10 + p01) >= d)``.
    """
    psi = p10 + p01
    if n <= 0 or psi <= 0:
        return 0.0
    from scipy import stats

    theta = p10 / psi
    boundary = crossing_boundary(n, log_thr, prior)
    alive = np.zeros(n + 2)
    alive[0] = 1.0  # P(b = k, not crossed yet) after d discordant pairs
    first = np.zeros(n + 1)
    for d in range(1, n + 1):
        nxt = np.zeros_like(alive)
        nxt[1:] += alive[:-1] * theta
        nxt[:] += alive * (1 - theta)
        bound = boundary[d]
        if bound <= d:
            first[d] = nxt[bound:].sum()
            nxt[bound:] = 0.0
        alive = nxt
    d = np.arange(n + 1)
    reach = stats.binom.sf(d - 1, n, psi)
    return float(np.clip(np.dot(first, reach), 0.0, 1.0))


@dataclass(frozen=True)
class Simulation:
    rejected: np.ndarray  # per simulated run: a regression was flagged
    episodes: np.ndarray  # per simulated run: episodes run (all tasks) when it stopped
    budget: int  # episodes of the full run (all tasks)

    @property
    def rate(self) -> float:
        return float(self.rejected.mean())

    @property
    def mean_saved(self) -> float:
        return float(self.budget - self.episodes.mean())


def simulate(
    p10: Sequence[float], p01: Sequence[float], budget: int, round_size: int, alpha: float, sims: int,
    rng: np.random.Generator, prior: float = 1.0, pooled: bool = True,
) -> Simulation:
    """Simulate the sequential gate on ``len(p10)`` tasks of ``budget`` pairs each, ``sims`` times.

    Each round adds ``round_size`` pairs to every task (the gate's rounds), then the gate
    decides exactly as :func:`decide` does, with the pooled suite e-process when ``pooled``
    and there is more than one task. Vectorized: (sims, tasks, budget) at once.
    """
    p10a, p01a = np.asarray(p10, float)[None, :, None], np.asarray(p01, float)[None, :, None]
    tasks = p10a.shape[1]
    u = rng.random((sims, tasks, budget))
    drop = u < p10a
    rise = (u >= p10a) & (u < p10a + p01a)
    b, c = np.cumsum(drop, axis=2), np.cumsum(rise, axis=2)
    task_thr, suite_thr = family_thresholds(alpha, tasks, pooled)
    # E(b, c) >= threshold  <=>  b >= boundary[b + c]: integer look-ups instead of betainc
    t_bound = crossing_boundary(budget, task_thr, prior)
    crossed = b >= t_bound[b + c]  # (sims, tasks, budget)
    # the pair index per task after which each (sims,) run first crossed anything
    first_cross = np.where(crossed.any(axis=2), crossed.argmax(axis=2) + 1, budget + 1).min(axis=1)
    if suite_thr is not None:
        # pooled order: init state by init state, task by task within one
        s_bound = crossing_boundary(budget * tasks, suite_thr, prior)
        sb = np.cumsum(drop.transpose(0, 2, 1).reshape(sims, -1), axis=1)
        sc = np.cumsum(rise.transpose(0, 2, 1).reshape(sims, -1), axis=1)
        s_crossed = sb >= s_bound[sb + sc]
        s_first = np.where(s_crossed.any(axis=1), s_crossed.argmax(axis=1) // tasks + 1, budget + 1)
        first_cross = np.minimum(first_cross, s_first)
    ends = np.minimum(np.arange(round_size, budget + round_size, round_size), budget)  # pairs per task after each round
    rounds_to_reject = np.searchsorted(ends, first_cross)  # the round whose end covers it
    rejected = first_cross <= budget
    # futility: after round r nothing could cross even with every remaining pair a drop
    stop_round = np.full(sims, len(ends) - 1)
    for r, end in enumerate(ends[:-1]):
        remaining = budget - end
        bt, ct = b[:, :, end - 1] + remaining, c[:, :, end - 1]
        future = (bt >= t_bound[bt + ct]).any(axis=1)
        if suite_thr is not None:
            k = end * tasks - 1
            bs, cs = sb[:, k] + remaining * tasks, sc[:, k]
            future |= bs >= s_bound[bs + cs]
        stop_round = np.where((stop_round == len(ends) - 1) & ~future, r, stop_round)
    stop = np.where(rejected, np.minimum(rounds_to_reject, stop_round), stop_round)
    episodes = ends[stop] * tasks
    return Simulation(rejected, episodes, budget * tasks)
