"""How many episodes the regression gate needs to see a drop, and what a budget can see.

For each baseline success rate (given with --rate, or read per task from a baseline run) it
prints, for a drop of --drop at family-wise --alpha and --power:

  fixed n       episodes per task the paired exact McNemar test needs, each task tested at
                alpha / tasks (Holm's first step: what the gate's exit code needs)
  suite         that times the tasks, and the episodes per suite the pooled suite test needs
  sequential    the budget per task `gate --sequential` needs for the same power, and the
                mean episodes it runs before a verdict when the drop is there (simulated)
  min drop      the smallest drop --budget episodes per task detect with that power

The paired test's power depends on how often two runs disagree on an episode. With two
baseline runs (--baseline RUN RUN2) that run-to-run discordance is measured; otherwise
outcomes are assumed independent given the rates (more discordance than a seeded simulator
shows, so the counts are on the safe side), or --discordance sets it. The assumption is
always printed. LIBERO has 50 init states per task: a count above 50 per task cannot be
reached on one task and is marked.

examples:
  evalharness power --rate 0.95 0.8 0.5 --drop 0.1 --tasks 10
  evalharness power --baseline results/libero_object-pi0-openpi --drop 0.05 --budget 50
  evalharness power --baseline run-a run-b --drop 0.05     # discordance measured between two runs
"""

from __future__ import annotations

import argparse
import math
from dataclasses import dataclass

import numpy as np

from evalharness.errors import UserInputError
from evalharness.results.power import (
    PairModel, discordance_between, episodes_needed, mcnemar_power, pair_model, smallest_drop,
)
from evalharness.results.sequential import family_thresholds, sequential_power, simulate

INIT_STATES = 50
SEQUENTIAL_SIMS = 4000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--rate", type=float, nargs="+", metavar="P", help="baseline success rate(s), e.g. 0.95 0.8 0.5")
    source.add_argument("--baseline", nargs="+", metavar="RUN", help="a baseline run (two: discordance is measured)")
    parser.add_argument("--drop", type=float, default=0.05, help="drop in success rate to detect (0.05 = 5 points)")
    parser.add_argument("--alpha", type=float, default=0.05, help="family-wise false alarm rate; default 0.05")
    parser.add_argument("--power", type=float, default=0.8, help="chance to flag the drop; default 0.8")
    parser.add_argument("--tasks", type=int, help="tasks in the gate's family (default: the baseline's, or 10)")
    parser.add_argument("--budget", type=int, default=INIT_STATES, help="episodes per task for 'min drop' (default 50)")
    parser.add_argument("--discordance", type=float,
                        help="fraction of episodes on which two runs of the baseline disagree (default: measured or "
                             "independent outcomes)")
    parser.add_argument("--round", type=int, default=5, help="episodes per task per round of the sequential gate")
    parser.add_argument("--no-suite", action="store_true",
                        help="the sequential gate without its pooled suite test (as gate --sequential --no-suite)")


@dataclass
class Row:
    name: str
    rate: float
    model: PairModel | None
    fixed_n: int | None
    seq_n: int | None
    seq_mean: float | None
    min_drop: float | None


def _check(args: argparse.Namespace) -> None:
    for flag, value, low_open in (("--alpha", args.alpha, True), ("--power", args.power, True)):
        if not 0.0 < value < 1.0:
            raise UserInputError(f"{flag} {value!r} is not valid; allowed: a number in (0, 1)")
    if not 0.0 < args.drop < 1.0:
        raise UserInputError(f"--drop {args.drop!r} is not valid; allowed: a fraction in (0, 1), e.g. 0.05")
    if args.tasks is not None and args.tasks < 1:
        raise UserInputError(f"--tasks {args.tasks!r} is not valid; allowed: an integer >= 1")
    if args.budget < 1:
        raise UserInputError(f"--budget {args.budget!r} is not valid; allowed: an integer >= 1")
    if args.round < 1:
        raise UserInputError(f"--round {args.round!r} is not valid; allowed: an integer >= 1")
    if args.discordance is not None and not 0.0 <= args.discordance <= 1.0:
        raise UserInputError(f"--discordance {args.discordance!r} is not valid; allowed: a fraction in [0, 1]")
    for rate in args.rate or []:
        if not 0.0 < rate <= 1.0:
            raise UserInputError(f"--rate {rate!r} is not valid; allowed: a success rate in (0, 1]")
    if args.baseline and len(args.baseline) > 2:
        raise UserInputError(f"--baseline takes one or two runs, got {len(args.baseline)}")


def sequential_budget(model: PairModel, log_thr: float, power: float, max_n: int = 5000) -> int | None:
    """Smallest budget per task at which `gate --sequential` flags the drop with ``power``
    (its crossing chance only grows with the budget, so bisection is exact)."""
    hi = 64
    while sequential_power(hi, model.p10, model.p01, log_thr) < power:
        if hi >= max_n:
            return None
        hi = min(max_n, hi * 2)
    lo = hi // 2 if hi > 64 else 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if sequential_power(mid, model.p10, model.p01, log_thr) >= power:
            hi = mid
        else:
            lo = mid
    return hi


def _row(name: str, rate: float, args: argparse.Namespace, tasks: int, discordance: float | None) -> Row:
    if args.drop > rate:
        return Row(name, rate, None, None, None, None, smallest_drop(rate, args.budget, args.alpha / tasks, args.power, discordance))
    model = pair_model(rate, args.drop, discordance)
    level = args.alpha / tasks
    fixed = episodes_needed(model, level, args.power)
    task_thr, _ = family_thresholds(args.alpha, tasks, not args.no_suite)
    seq = sequential_budget(model, task_thr, args.power)
    seq_mean = None
    if seq is not None and seq <= 2000:
        # mean episodes to a verdict on this task when it carries the drop (alone, at its threshold)
        sim = simulate([model.p10], [model.p01], seq, args.round, 1.0 / math.exp(task_thr), SEQUENTIAL_SIMS,
                       np.random.default_rng(0))
        seq_mean = float(sim.episodes.mean())
    return Row(name, rate, model, fixed, seq, seq_mean, smallest_drop(rate, args.budget, level, args.power, discordance))


def _count(n: int | None) -> str:
    if n is None:
        return "> 5000"
    return f"{n}" + (" *" if n > INIT_STATES else "")


def _baseline_rows(args: argparse.Namespace) -> tuple[list[tuple[str, float]], float | None, str | None, int]:
    from evalharness.results.runs import load_runs

    runs = load_runs(args.baseline)
    first = runs[0]
    rows = [(f"{t.suite} {t.task_index}: {t.task_name}", t.successes / t.episodes) for t in first.summary.tasks if t.episodes]
    if not rows:
        raise UserInputError(f"{args.baseline[0]} has no episodes with a verdict")
    measured = note = None
    if len(runs) == 2:
        def pairs(run):
            if run.records is None:
                raise UserInputError(f"{run.source} has no episodes.jsonl; discordance needs the episodes of both runs")
            return [((r.suite, r.task_index, r.init_state, r.seed), r.success) for r in run.records if r.outcome != "error"]

        disagree, common = discordance_between(pairs(runs[0]), pairs(runs[1]))
        if common == 0:
            raise UserInputError("the two baseline runs share no episode (suite, task, init state, seed); cannot measure discordance")
        measured = disagree / common
        note = f"measured: the two baseline runs disagree on {disagree} of {common} shared episodes ({100 * measured:.1f}%)"
    return rows, measured, note, len(rows)


def run(args: argparse.Namespace) -> int:
    _check(args)
    if args.baseline:
        named, measured, note, run_tasks = _baseline_rows(args)
        tasks = args.tasks or run_tasks
    else:
        named = [(f"{100 * r:g}%", r) for r in args.rate]
        measured, note, tasks = None, None, args.tasks or 10
    discordance = args.discordance if args.discordance is not None else measured
    if args.discordance is not None:
        note = f"stated: --discordance {args.discordance:g} (two runs of the baseline disagree on that share of episodes)"
    elif note is None:
        note = ("assumed: outcomes independent given the rates (p10 = p1(1-p2), p01 = (1-p1)p2); a seeded simulator "
                "usually shows less discordance, so these counts are on the safe side. Give two baseline runs or "
                "--discordance to use a measured value")
    rows = [_row(name, rate, args, tasks, discordance) for name, rate in named]

    print(f"evalharness power: a drop of {100 * args.drop:g} points, alpha {args.alpha:g} over {tasks} task(s) "
          f"(each task at {args.alpha / tasks:.3g}), power {args.power:g}")
    print(f"discordance {note}")
    print()
    print(f"| baseline | p10 / p01 | fixed n per task | suite ({tasks} tasks) | sequential budget per task "
          f"| sequential mean with the drop | min drop at {args.budget}/task |")
    print("| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for row in rows:
        if row.model is None:
            print(f"| {row.name} | drop larger than the rate | | | | | {_drop(row.min_drop)} |")
            continue
        suite = "—" if row.fixed_n is None else str(row.fixed_n * tasks)
        mean = "—" if row.seq_mean is None else f"{row.seq_mean:.0f}"
        print(f"| {row.name} | {row.model.p10:.3f} / {row.model.p01:.3f} | {_count(row.fixed_n)} | {suite} "
              f"| {_count(row.seq_n)} | {mean} | {_drop(row.min_drop)} |")
    pooled = [r for r in rows if r.model is not None]
    if len(pooled) > 1 or (pooled and tasks > 1 and not args.baseline):
        if args.baseline:
            p10 = float(np.mean([r.model.p10 for r in pooled]))  # type: ignore[union-attr]
            p01 = float(np.mean([r.model.p01 for r in pooled]))  # type: ignore[union-attr]
            nulls = [pair_model(r.rate, 1e-12, discordance) for r in pooled]
            null = PairModel(float(np.mean([m.p10 for m in nulls])), float(np.mean([m.p01 for m in nulls])), "no change")
            suite_models = [("suite (pooled)", PairModel(p10, p01, "mean over tasks"), null)]
        else:
            suite_models = [(f"{r.name} on every task", r.model, pair_model(r.rate, 1e-12, discordance))  # type: ignore[misc]
                            for r in pooled]
        print()
        _, suite_thr = family_thresholds(args.alpha, tasks, not args.no_suite)
        print(f"the pooled suite test (all tasks' pairs together), for the drop on every task: fixed gate at alpha "
              f"{args.alpha:g}" + (f"; sequential at threshold {math.exp(suite_thr):g} (half of alpha)" if suite_thr else ""))
        for name, model, null in suite_models:
            n = episodes_needed(model, args.alpha, args.power)
            per_task = "—" if n is None else str(math.ceil(n / tasks))
            line = (f"  {name}: fixed {_count(n).rstrip(' *')} episodes per suite ({per_task} per task), power at "
                    f"{args.budget * tasks}: {mcnemar_power(args.budget * tasks, model, args.alpha):.2f}")
            if suite_thr is not None:
                seq_n = sequential_budget(model, suite_thr, args.power, max_n=20000)
                line += ("; sequential budget " + ("> 20000" if seq_n is None else f"{seq_n} ({math.ceil(seq_n / tasks)} per task)")
                         + f", chance to stop as regressed within {args.budget * tasks}: "
                         f"{sequential_power(args.budget * tasks, model.p10, model.p01, suite_thr):.2f}")
            print(line)
            if tasks <= 100:
                print("    " + _suite_simulation(model, null, tasks, args))
    print()
    print("fixed n: exact power of the one-sided exact McNemar test (stays >= the target from there on). "
          "sequential: exact chance that the e-process of `gate --sequential` reaches its threshold within the budget; "
          f"its mean episodes are from {SEQUENTIAL_SIMS} simulated runs with rounds of {args.round}. "
          f"* = more than LIBERO's {INIT_STATES} init states per task.")
    return 0


def _suite_simulation(model: PairModel, same: PairModel, tasks: int, args: argparse.Namespace) -> str:
    """`gate --sequential` on the whole suite at --budget per task: with the drop on every task, and with none."""
    rng = np.random.default_rng(0)
    drop = simulate([model.p10] * tasks, [model.p01] * tasks, args.budget, args.round, args.alpha, SEQUENTIAL_SIMS, rng,
                    pooled=not args.no_suite)
    null = simulate([same.p10] * tasks, [same.p01] * tasks, args.budget, args.round, args.alpha, SEQUENTIAL_SIMS, rng,
                    pooled=not args.no_suite)
    return (f"gate --sequential at {args.budget}/task, rounds of {args.round} ({SEQUENTIAL_SIMS} simulated runs): "
            f"with the drop, flags {100 * drop.rate:.0f}% after {drop.episodes.mean():.0f} episodes on average "
            f"(saves {drop.mean_saved:.0f} of {drop.budget}); with no change, flags {100 * null.rate:.1f}% and runs "
            f"{null.episodes.mean():.0f}")


def _drop(value: float | None) -> str:
    return "none" if value is None else f"{100 * value:.1f} points"
