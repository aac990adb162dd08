"""`evalharness power`: exact McNemar / Fisher power against scipy.stats and against simulation.

The printed episode counts are only worth something if a gate run with that many episodes
flags the drop at least as often as promised: every check below simulates the gate's own
test (the exact one-sided McNemar p-value, as :func:`evalharness.results.stats.mcnemar_exact`
computes it) on pairs drawn from the stated model.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from scipy.stats import binomtest, fisher_exact

from evalharness.cli import main
from evalharness.results.power import (
    episodes_needed, fisher_episodes_needed, fisher_power, mcnemar_critical, mcnemar_n_normal, mcnemar_power,
    mcnemar_power_curve, pair_model, smallest_drop,
)
from evalharness.results.stats import mcnemar_exact
from factories import outcomes_records, run_metadata, write_run


def _simulate_mcnemar(n: int, p10: float, p01: float, level: float, sims: int, seed: int = 0) -> float:
    """Rejection rate of the gate's one-sided exact McNemar test on simulated pairs."""
    rng = np.random.default_rng(seed)
    counts = rng.multinomial(n, [p10, p01, 1 - p10 - p01], size=sims)
    b, c = counts[:, 0], counts[:, 1]
    p = np.where(b + c > 0, stats.binom.sf(b - 1, b + c, 0.5), 1.0)
    for i in range(5):  # the vectorized p-value is the gate's own
        assert p[i] == pytest.approx(mcnemar_exact(int(b[i]), int(c[i]), "greater"))
    return float((p <= level).mean())


def test_critical_values_match_scipy_binomtest():
    for level in (0.05, 0.005):
        crit = mcnemar_critical(np.arange(121), level)
        for d in range(1, 121):
            k = int(crit[d])
            if k <= d:
                assert binomtest(k, d, 0.5, alternative="greater").pvalue <= level
            if k >= 1:
                assert binomtest(k - 1, d, 0.5, alternative="greater").pvalue > level


@pytest.mark.parametrize(("rate", "drop", "discordance", "tasks"), [
    (0.95, 0.2, None, 10),  # independent outcomes, 10 tasks (each at alpha / 10)
    (0.8, 0.1, 0.1, 1),  # measured run-to-run discordance
    (0.5, 0.2, None, 1),
    (0.95, 0.05, 0.02, 10),
])
def test_printed_n_gives_the_stated_power_in_simulation(rate, drop, discordance, tasks):
    alpha, target, sims = 0.05, 0.8, 20_000
    level = alpha / tasks
    model = pair_model(rate, drop, discordance)
    assert model.p10 - model.p01 == pytest.approx(drop)
    n = episodes_needed(model, level, target)
    assert n is not None
    simulated = _simulate_mcnemar(n, model.p10, model.p01, level, sims)
    sigma = math.sqrt(target * (1 - target) / sims)
    assert simulated >= target - 3 * sigma
    # the exact figure is the simulated one (to simulation error), and one pair fewer is not enough
    # somewhere below n (the saw-tooth: power stays at or above the target only from n on)
    assert simulated == pytest.approx(mcnemar_power(n, model, level), abs=4 * sigma)
    assert mcnemar_power_curve(np.arange(max(1, n - 30), n), model, level).min() < target


def test_exact_n_close_to_connors_closed_form():
    for rate, drop in ((0.95, 0.1), (0.8, 0.1), (0.5, 0.1), (0.5, 0.2)):
        model = pair_model(rate, drop)
        exact = episodes_needed(model, 0.005, 0.8)
        approx = mcnemar_n_normal(model, 0.005, 0.8)
        assert exact == pytest.approx(approx, rel=0.1)


def test_smallest_drop_is_the_boundary():
    for rate, discordance in ((0.95, None), (0.8, 0.1), (0.5, None)):
        drop = smallest_drop(rate, 50, 0.005, 0.8, discordance)
        assert drop is not None
        assert mcnemar_power(50, pair_model(rate, drop, discordance), 0.005) >= 0.8
        assert mcnemar_power(50, pair_model(rate, drop - 0.001, discordance), 0.005) < 0.8


def test_fisher_power_is_scipys_fisher_exact_enumerated():
    n, p1, p2, level = 20, 0.9, 0.5, 0.05
    total = 0.0
    for k1 in range(n + 1):
        for k2 in range(n + 1):
            p = fisher_exact([[k1, n - k1], [k2, n - k2]], alternative="greater").pvalue
            if p <= level:
                total += stats.binom.pmf(k1, n, p1) * stats.binom.pmf(k2, n, p2)
    assert fisher_power(n, p1, p2, level) == pytest.approx(total, rel=1e-9)


def test_unpaired_n_matches_simulated_fisher_and_independent_pairs_gain_nothing():
    rate, drop, level = 0.95, 0.2, 0.05
    n = fisher_episodes_needed(rate, drop, level, 0.8)
    assert fisher_power(n, rate, rate - drop, level) >= 0.8 > fisher_power(n - 1, rate, rate - drop, level)
    rng = np.random.default_rng(1)
    k1, k2 = rng.binomial(n, rate, 4000), rng.binomial(n, rate - drop, 4000)
    p = stats.hypergeom.sf(k1 - 1, 2 * n, k1 + k2, n)
    assert (p <= level).mean() == pytest.approx(fisher_power(n, rate, rate - drop, level), abs=3 * math.sqrt(0.16 / 4000))
    # pairing helps only through correlation: with independent outcomes it needs about as many
    paired = episodes_needed(pair_model(rate, drop), level, 0.8)
    assert paired == pytest.approx(n, rel=0.15)
    assert episodes_needed(pair_model(rate, drop, 0.02), level, 0.8) < 0.85 * n  # a low measured discordance helps


def _cli(capsys, *args):
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_power_command_prints_counts_and_assumption(capsys):
    code, out, _ = _cli(capsys, "power", "--rate", "0.95", "0.8", "--drop", "0.2", "--tasks", "10")
    assert code == 0
    assert "assumed: outcomes independent" in out
    model = pair_model(0.95, 0.2)
    n95 = episodes_needed(model, 0.005, 0.8)
    assert f"| 95% | {model.p10:.3f} / {model.p01:.3f} | {n95} * | {n95 * 10} |" in out
    assert "sequential" in out and "pooled suite test" in out


def test_power_command_measures_discordance_from_two_baseline_runs(tmp_path, capsys):
    runs = []
    for name, outcomes in (("a", "SSSSSSSSFS" * 3), ("b", "SSSSSSSFSS" * 3)):
        records = outcomes_records("libero_object", 0, outcomes, policy=name)
        runs.append(write_run(tmp_path / name, records, run_metadata("base")))
    code, out, _ = _cli(capsys, "power", "--baseline", *runs, "--drop", "0.1")
    assert code == 0
    assert "measured: the two baseline runs disagree on 6 of 30 shared episodes (20.0%)" in out
    n = episodes_needed(pair_model(0.9, 0.1, 0.2), 0.05, 0.8)
    assert f"| {n} *" in out


@pytest.mark.parametrize(("args", "message"), [
    (["--rate", "0.8", "--alpha", "2"], "--alpha 2.0 is not valid"),
    (["--rate", "1.5"], "--rate 1.5 is not valid"),
    (["--rate", "0.8", "--drop", "0"], "--drop 0.0 is not valid"),
    (["--baseline", "/nonexistent/run"], "/nonexistent/run does not exist"),
])
def test_power_command_bad_input_is_one_line(capsys, args, message):
    code, out, err = _cli(capsys, "power", *args)
    assert code == 2
    assert err.count("\n") == 1 and message in err and "Traceback" not in err
