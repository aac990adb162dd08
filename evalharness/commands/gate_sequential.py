"""``evalharness gate --sequential``: run the candidate in rounds and stop as soon as the verdict is known.

A fixed gate runs every episode and then tests. This one runs the candidate on the
baseline's own episodes (same suite, tasks, init states and seed, so each candidate episode
has its baseline twin) a round at a time: round r runs the first ``r * round`` init states of
every task, in the plan's order. After each round it updates the anytime-valid test of
:mod:`evalharness.results.sequential` (an e-process on the discordant pairs, Bonferroni /
Holm over tasks) and stops when

- a task's e-process reached its threshold: **regressed**, exit 1;
- no task can reach it any more, even if every remaining episode were a drop, or the
  budget is spent: **no regression**, exit 0;
- episodes errored, the baseline lacks episodes, or ``--max-rounds`` ended it first:
  **incomplete**, exit 2.

Each round is a normal evaluation (``evaluate`` with ``suite.init_states`` set to that
prefix) into the normal run folder, so a stopped run is a prefix of the full run: running the
gate again, or the plain evaluation with the full init states, resumes it without redoing an
episode (episode keys do not depend on which init states a run selects).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evalharness.errors import UserInputError
from evalharness.results.gate import EXIT_INCOMPLETE, EXIT_PASS, EXIT_REGRESSED
from evalharness.results.runs import LoadedRun, load_run
from evalharness.results.sequential import (
    NO_REGRESSION, REGRESSED, TaskSequence, decide, family_thresholds, scan_task,
)

TaskKey = tuple[str, int]


@dataclass
class BaselinePlan:
    """What the candidate must run: the baseline's tasks and init states, in plan order."""

    suite: str
    seed: int
    tasks: list[int]
    names: dict[int, str]
    init_states: list[int]  # every task's, in order: the pairs' order
    outcomes: dict[tuple[int, int], bool]  # (task, init state) -> baseline success


def baseline_plan(run: LoadedRun, budget: int | None) -> BaselinePlan:
    """The pairs the baseline offers; refuses a baseline whose episodes cannot all be paired."""
    if run.records is None:
        raise UserInputError(f"{run.source} has no episodes.jsonl; a sequential gate pairs the baseline's episodes")
    records = [r for r in run.records if r.outcome != "error"]
    if not records:
        raise UserInputError(f"{run.source} has no episode with a verdict")
    suites = sorted({r.suite for r in records})
    seeds = sorted({r.seed for r in records})
    if len(suites) != 1 or len(seeds) != 1:
        raise UserInputError(f"{run.source} holds {len(suites)} suite(s) and {len(seeds)} seed(s); "
                             "a sequential gate compares one suite under one seed")
    tasks = sorted({r.task_index for r in records})
    states_of = {t: {r.init_state for r in records if r.task_index == t} for t in tasks}
    common = sorted(set.intersection(*states_of.values()))
    if not common:
        raise UserInputError(f"{run.source}: its tasks share no init state; nothing to pair in rounds")
    if budget is not None:
        if budget < 1:
            raise UserInputError(f"--budget {budget!r} is not valid; allowed: an integer >= 1")
        if budget > len(common):
            raise UserInputError(f"--budget {budget} is not valid; the baseline has {len(common)} paired init states per task")
        common = common[:budget]
    names = {r.task_index: r.task_name for r in records}
    outcomes = {(r.task_index, r.init_state): r.success for r in records}
    return BaselinePlan(suites[0], seeds[0], tasks, names, common, outcomes)


def compose_candidate(overrides: list[str]) -> Any:
    """The candidate's config from Hydra overrides, as ``evalharness OVERRIDES`` would build it."""
    from hydra import compose, initialize_config_dir
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import open_dict

    from evalharness.config.conf import CONF_DIR, check_group_choices, check_overrides
    from evalharness.perturb.config import register_resolvers

    register_resolvers()  # conf/config.yaml's run_name uses ${perturb_suffix:...}

    bad = [o for o in overrides if o.startswith("-")]
    if bad:
        raise UserInputError(f"{bad[0]!r} is not valid as a candidate override; allowed: Hydra overrides key=value "
                             "(no sweeps)")
    check_group_choices(overrides)
    check_overrides(overrides)
    with initialize_config_dir(str(CONF_DIR), version_base="1.3", job_name="evalharness"):
        cfg = compose("config", overrides=overrides, return_hydra_config=True)
    HydraConfig.instance().set_config(cfg)  # run_name reads ${hydra:runtime.choices.policy}
    with open_dict(cfg):
        cfg.run_name = str(cfg.run_name)
        cfg.output_dir = str(cfg.output_dir)
        del cfg["hydra"]
    return cfg


def _candidate_outcomes(run_dir: Path) -> tuple[dict[tuple[int, int], bool], list[str], LoadedRun | None]:
    if not (run_dir / "episodes.jsonl").is_file():
        return {}, [], None
    run = load_run(run_dir)
    outcomes, errors = {}, []
    for r in run.records or []:
        if r.outcome == "error":
            errors.append(f"task {r.task_index} init state {r.init_state}: {r.error_kind}")
        else:
            outcomes[(r.task_index, r.init_state)] = r.success
    return outcomes, errors, run


def scan(
    plan: BaselinePlan, cand: dict[tuple[int, int], bool], alpha: float, prior: float, pooled: bool = True,
) -> tuple[dict[int, TaskSequence], TaskSequence | None]:
    """Each task's e-process over its pairs so far (the longest prefix of the order the candidate
    holds), and the pooled suite's over the init states every task has (state by state, task by task)."""
    task_thr, suite_thr = family_thresholds(alpha, len(plan.tasks), pooled)
    out = {}
    for t in plan.tasks:
        pairs = []
        for k in plan.init_states:
            if (t, k) not in cand:
                break
            pairs.append((plan.outcomes[(t, k)], cand[(t, k)]))
        out[t] = scan_task(pairs, len(plan.init_states), task_thr, prior)
    if suite_thr is None:
        return out, None
    done = min(s.pairs for s in out.values())
    pooled_pairs = [(plan.outcomes[(t, k)], cand[(t, k)]) for k in plan.init_states[:done] for t in plan.tasks]
    return out, scan_task(pooled_pairs, len(plan.init_states) * len(plan.tasks), suite_thr, prior)


def _evaluate_round(cfg: Any, plan: BaselinePlan, states: list[int]) -> None:
    from omegaconf import open_dict

    from evalharness.engine.evaluate import evaluate

    round_cfg = cfg.copy()
    with open_dict(round_cfg):
        round_cfg.suite.tasks = list(plan.tasks)
        round_cfg.suite.init_states = list(states)
    sink = io.StringIO()  # each round's summary table: the gate prints its own
    with contextlib.redirect_stdout(sink):
        evaluate(round_cfg)


def _table(plan: BaselinePlan, seqs: dict[int, TaskSequence], suite: TaskSequence | None, alpha: float) -> list[str]:
    task_thr, suite_thr = family_thresholds(alpha, len(plan.tasks), suite is not None)
    lines = [
        "| suite / task | pairs | b (drops) | c (rises) | max e-value | threshold | verdict |",
        "| --- | ---: | ---: | ---: | ---: | ---: | --- |",
    ]
    rows = [(f"**{plan.suite}** (pooled)", suite, suite_thr)] if suite is not None else []
    rows += [(f"{plan.suite} {t}: {plan.names[t]}", seqs[t], task_thr) for t in plan.tasks]
    for name, s, thr in rows:
        verdict = f"**regressed** (at pair {s.crossed_at})" if s.crossed_at else "no evidence of a drop"
        lines.append(f"| {name} | {s.pairs}/{s.budget} | {s.b} | {s.c} | {s.max_e:.3g} | {math.exp(thr):g} | {verdict} |")
    return lines


def run(args: argparse.Namespace) -> int:
    from evalharness.commands.step_summary import append_step_summary
    from evalharness.engine.interrupt import RunInterrupted
    from evalharness.results.context import conditions_key, describe_conditions

    if not 0.0 < args.alpha < 1.0:
        raise UserInputError(f"--alpha {args.alpha!r} is not valid; allowed: a number in (0, 1), e.g. 0.05")
    if args.round < 1:
        raise UserInputError(f"--round {args.round!r} is not valid; allowed: an integer >= 1")
    if args.prior <= 0:
        raise UserInputError(f"--prior {args.prior!r} is not valid; allowed: a number > 0 (1 = uniform)")
    if args.max_rounds is not None and args.max_rounds < 1:
        raise UserInputError(f"--max-rounds {args.max_rounds!r} is not valid; allowed: an integer >= 1")
    if args.margin:
        raise UserInputError("--margin is not available with --sequential; its test is for any drop (margin 0)")
    if not args.overrides:
        raise UserInputError("--sequential needs the candidate as Hydra overrides after the options, e.g. "
                             "gate --sequential --baseline RUN policy=... output_dir=results/candidate")
    baseline = load_run(args.baseline)
    if baseline.partial:
        raise UserInputError(f"baseline {baseline.partial}; a gate needs a finished baseline")
    plan = baseline_plan(baseline, args.budget)
    cfg = compose_candidate(args.overrides)
    if cfg.suite.name != plan.suite:
        raise UserInputError(f"suite={cfg.suite.name} is not valid here; the baseline is a {plan.suite} run")
    seed = cfg.protocol.get("seed")
    if seed is not None and int(seed) != plan.seed:
        raise UserInputError(f"protocol.seed={seed} is not valid here; the baseline's episodes ran with seed {plan.seed} "
                             "and a candidate under another seed cannot be paired with them")
    run_dir = Path(str(cfg.output_dir)).resolve()

    budget = len(plan.init_states)
    total = budget * len(plan.tasks)
    before, _, _ = _candidate_outcomes(run_dir)
    before_count = sum(1 for k in before if k[0] in plan.tasks and k[1] in plan.init_states)
    print(f"evalharness gate --sequential: candidate {cfg.run_name} vs baseline {baseline.source}, "
          f"{len(plan.tasks)} task(s) x up to {budget} paired episodes, rounds of {args.round}, alpha {args.alpha:g}")
    rounds, last_done = 0, -1
    reason, verdict = "", ""
    incomplete: list[str] = []
    while True:
        cand, errors, cand_run = _candidate_outcomes(run_dir)
        seqs, suite = scan(plan, cand, args.alpha, args.prior, not args.no_suite)
        done = min(s.pairs for s in seqs.values())
        if cand_run is not None and conditions_key(cand_run.summary) != conditions_key(baseline.summary):
            raise UserInputError(f"baseline ({describe_conditions(baseline.summary)}) and candidate "
                                 f"({describe_conditions(cand_run.summary)}) were made under different protocols")
        if errors:
            incomplete.append(f"{len(errors)} candidate episode(s) errored ({errors[0]}); rerun to retry them "
                              "(runner.retry_errors=true)")
            break
        if cand_run is not None and cand_run.records:
            seeds = {r.seed for r in cand_run.records}
            if seeds != {plan.seed}:
                raise UserInputError(f"the candidate's seed {sorted(seeds)} differs from the baseline's {plan.seed}; "
                                     "episodes cannot be paired")
        decision = decide(list(seqs.values()), futility=not args.run_to_budget, suite=suite)
        if decision.verdict != "continue":
            verdict, reason = decision.verdict, decision.reason
            break
        if args.max_rounds is not None and rounds >= args.max_rounds:
            incomplete.append(f"stopped after --max-rounds {args.max_rounds} before a verdict")
            break
        if rounds and done <= last_done:
            incomplete.append("the last round recorded no new paired episode")
            break
        last_done = done
        target = min(budget, (done // args.round + 1) * args.round)
        rounds += 1
        print(f"round {rounds}: init states {plan.init_states[done]}..{plan.init_states[target - 1]} "
              f"({target}/{budget} per task)", file=sys.stderr, flush=True)
        try:
            _evaluate_round(cfg, plan, plan.init_states[:target])
        except RunInterrupted as exc:
            incomplete.append(f"interrupted ({exc}); run the same command again to resume")
            cand, _, _ = _candidate_outcomes(run_dir)
            seqs, suite = scan(plan, cand, args.alpha, args.prior, not args.no_suite)
            break

    ran = sum(s.pairs for s in seqs.values())
    new = sum(1 for k in cand if k[0] in plan.tasks and k[1] in plan.init_states) - before_count
    if incomplete:
        outcome, code = "INCOMPLETE (no verdict)", EXIT_INCOMPLETE
        reason = "; ".join(incomplete)
    elif verdict == REGRESSED:
        outcome, code = "REGRESSED", EXIT_REGRESSED
    else:
        assert verdict == NO_REGRESSION
        outcome, code = "PASS: no regression", EXIT_PASS
    lines = [
        f"## evalharness gate --sequential: {outcome}",
        "",
        f"Episodes run: **{ran} of {total}** ({total - ran} saved against the full run; {new} new in this invocation). "
        f"Stopped: {reason}.",
        "",
        *_table(plan, seqs, suite, args.alpha),
        "",
        f"Anytime-valid test: per task, an e-process on the discordant pairs (truncated Beta({args.prior:g}, "
        f"{args.prior:g}) mixture of likelihood ratios), a regression when it reaches the threshold: "
        + (f"alpha split in half between the pooled suite (2 / alpha) and the {len(plan.tasks)} tasks "
           f"(Bonferroni, 2 x tasks / alpha)" if suite is not None else
           f"tasks / alpha (Bonferroni over {len(plan.tasks)} task(s); Holm flags a regression exactly then)")
        + f". False alarm rate <= {args.alpha:g} however many rounds are looked at. Candidate run: `{run_dir}`.",
    ]
    text = "\n".join(lines) + "\n"
    print(text, end="")
    append_step_summary(text)
    if incomplete:
        print(f"evalharness: gate incomplete: {reason}", file=sys.stderr)
    return code
