"""The sequential gate's statistics, proven by simulation (no simulator needed).

- With no change, >= 10,000 simulated candidate runs flag a regression in at most alpha of
  them (observed rate <= alpha + 3 sigma), also at the edge of the null (theta = 1/2 exactly,
  many discordant pairs) and with several tasks looked at after every round.
- With the planned drop, the power is at least what `evalharness power` promises for the
  sequential budget it prints, and a regression is caught, on average, with fewer episodes
  than the fixed gate needs; the mean episodes saved are printed (pytest -s shows them).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import integrate

from evalharness.commands.power import sequential_budget
from evalharness.results.power import episodes_needed, pair_model
from evalharness.results.sequential import (
    CONTINUE, NO_REGRESSION, REGRESSED, crossing_boundary, decide, family_thresholds, log_e_value, log_threshold, scan_task,
    sequential_power, simulate,
)

ALPHA = 0.05


def test_e_value_is_the_truncated_beta_mixture_integral():
    for b, c, a in ((0, 0, 1.0), (3, 1, 1.0), (10, 2, 1.0), (7, 7, 2.0), (30, 5, 0.5)):
        prior_mass = integrate.quad(lambda t: t ** (a - 1) * (1 - t) ** (a - 1), 0.5, 1)[0]
        mix = integrate.quad(lambda t: t**b * (1 - t) ** c * t ** (a - 1) * (1 - t) ** (a - 1), 0.5, 1)[0]
        assert float(log_e_value(b, c, a)) == pytest.approx(math.log(2 ** (b + c) * mix / prior_mass), rel=1e-9, abs=1e-9)
    assert float(log_e_value(0, 0)) == pytest.approx(0.0, abs=1e-12)  # starts at 1
    # grows with drops, shrinks with rises: what the futility stop relies on
    assert np.all(np.diff(log_e_value(np.arange(20), 5)) > 0) and np.all(np.diff(log_e_value(5, np.arange(20))) < 0)


@pytest.mark.parametrize(("rates", "budget", "round_size"), [
    ([0.8, 0.8, 0.8], 50, 5),  # three tasks at LIBERO's 50 init states, a look every 5
    ([0.5], 200, 1),  # the edge of the null: theta = 1/2 with ~100 discordant pairs, a look after every pair
    ([0.95, 0.5, 0.2, 0.8, 0.65], 50, 10),
])
def test_no_change_flags_a_regression_at_most_alpha(rates, budget, round_size):
    sims = 10_000
    model = [pair_model(r, 1e-12) for r in rates]  # no drop: p10 = p01 (independent outcomes)
    sim = simulate([m.p10 for m in model], [m.p01 for m in model], budget, round_size, ALPHA, sims,
                   np.random.default_rng(20))
    sigma = math.sqrt(ALPHA * (1 - ALPHA) / sims)
    print(f"\nno change, rates {rates}: flagged {sim.rate:.4f} (<= {ALPHA + 3 * sigma:.4f}); "
          f"mean episodes saved {sim.mean_saved:.1f} of {sim.budget}")
    assert sim.rate <= ALPHA + 3 * sigma


def test_power_at_the_printed_sequential_budget_is_what_power_promised():
    sims, tasks = 10_000, 1
    model = pair_model(0.95, 0.2)
    log_thr = log_threshold(ALPHA, tasks)
    budget = sequential_budget(model, log_thr, 0.8)  # what `evalharness power` prints
    promised = sequential_power(budget, model.p10, model.p01, log_thr)
    assert promised >= 0.8
    sim = simulate([model.p10], [model.p01], budget, 5, ALPHA, sims, np.random.default_rng(7))
    sigma = math.sqrt(promised * (1 - promised) / sims)
    fixed = episodes_needed(model, ALPHA, 0.8)
    caught = sim.episodes[sim.rejected]
    print(f"\ndrop 20 points from 95%: power {sim.rate:.3f} (promised {promised:.3f}) at budget {budget}; "
          f"mean episodes {sim.episodes.mean():.1f} (saved {sim.mean_saved:.1f}); when caught {caught.mean():.1f}; "
          f"the fixed gate needs {fixed}")
    assert sim.rate >= promised - 3 * sigma
    assert sim.episodes.mean() < fixed  # a regression is caught with fewer episodes than the fixed gate


def test_power_with_one_task_dropped_among_several():
    sims, tasks = 10_000, 4
    drop = pair_model(0.8, 0.3)
    same = pair_model(0.8, 1e-12)
    log_thr, _ = family_thresholds(ALPHA, tasks)  # alpha split with the pooled suite test
    budget = sequential_budget(drop, log_thr, 0.8)
    promised = sequential_power(budget, drop.p10, drop.p01, log_thr)
    sim = simulate([drop.p10] + [same.p10] * 3, [drop.p01] + [same.p01] * 3, budget, 5, ALPHA, sims,
                   np.random.default_rng(3))
    sigma = math.sqrt(promised * (1 - promised) / sims)
    print(f"\none of 4 tasks drops 30 points from 80%: power {sim.rate:.3f} (promised for that task {promised:.3f}), "
          f"mean episodes saved {sim.mean_saved:.1f} of {sim.budget}")
    assert sim.rate >= promised - 3 * sigma


def test_a_drop_spread_over_every_task_is_caught_by_the_pooled_suite_test():
    sims, tasks, budget = 10_000, 10, 50  # a LIBERO suite: 10 tasks x 50 init states
    model = pair_model(0.8, 0.15)
    task_thr, suite_thr = family_thresholds(ALPHA, tasks)
    per_task = sequential_power(budget, model.p10, model.p01, task_thr)
    pooled = simulate([model.p10] * tasks, [model.p01] * tasks, budget, 5, ALPHA, sims, np.random.default_rng(5))
    tasks_only = simulate([model.p10] * tasks, [model.p01] * tasks, budget, 5, ALPHA, sims, np.random.default_rng(5),
                          pooled=False)
    print(f"\n15-point drop from 80% on all 10 tasks: flagged {pooled.rate:.3f} with the pooled suite test "
          f"(tasks alone {tasks_only.rate:.3f}; one task alone {per_task:.3f}); mean episodes {pooled.episodes.mean():.0f} "
          f"of {pooled.budget} (saved {pooled.mean_saved:.0f})")
    assert pooled.rate > 0.9 > 0.5 > tasks_only.rate
    assert pooled.episodes.mean() < 0.6 * pooled.budget


def test_exact_crossing_chance_matches_simulation():
    model = pair_model(0.8, 0.25, 0.1)
    for n in (10, 30, 60):
        exact = sequential_power(n, model.p10, model.p01, log_threshold(ALPHA, 2))
        sim = simulate([model.p10], [model.p01], n, 1, ALPHA / 2, 20_000, np.random.default_rng(n))
        assert sim.rate == pytest.approx(exact, abs=3 * math.sqrt(0.25 / 20_000) + 1e-3)


def test_boundary_is_the_smallest_crossing_b():
    log_thr = log_threshold(ALPHA, 3)
    boundary = crossing_boundary(120, log_thr)
    for d in range(121):
        b = np.arange(d + 1)
        hit = np.nonzero(log_e_value(b, d - b) >= log_thr)[0]
        assert boundary[d] == (hit[0] if hit.size else d + 1)


def test_scan_is_a_function_of_the_prefix_and_decide_stops_for_the_right_reasons():
    thr = log_threshold(ALPHA, 1)
    drops = [(True, False)] * 8 + [(True, True)] * 4
    full = scan_task(drops, budget=12, log_thr=thr)
    assert full.crossed_at is not None and full.crossed_at <= 8
    prefix = scan_task(drops[: full.crossed_at], budget=12, log_thr=thr)
    assert prefix.crossed_at == full.crossed_at  # a stopped run and a resumed one see the same crossing
    assert decide([full]).verdict == REGRESSED
    equal = scan_task([(True, True)] * 10, budget=50, log_thr=thr)
    assert equal.crossed_at is None and equal.can_still_cross and decide([equal]).verdict == CONTINUE
    done = scan_task([(True, True)] * 50, budget=50, log_thr=thr)
    assert decide([done]) .verdict == NO_REGRESSION and "budget" in decide([done]).reason
    # 2 episodes left, 10 rises seen: even two drops cannot reach the threshold
    hopeless = scan_task([(False, True)] * 10 + [(True, True)] * 38, budget=50, log_thr=thr)
    assert not hopeless.can_still_cross and decide([hopeless]).verdict == NO_REGRESSION
    assert "even if every remaining episode were a drop" in decide([hopeless]).reason
