"""The regression gate: did the candidate run get worse than the baseline, per task and suite?

A gate must be able to say three things (docs/reference/statistics.md): "regressed", "no
evidence of change", "improved". Failing on any drop is noise at small n; never failing is worse.

How each task is tested:

- **Paired** when both runs hold exactly the same episodes of the task, matched on
  (suite, task, init state, seed). The episode key cannot match them: it hashes the policy
  identity, which differs by design. Only discordant pairs carry information, so the test
  is the exact McNemar test (b = baseline solved / candidate failed, c = the reverse;
  b ~ Binomial(b + c, 1/2) under no change).
- **Unpaired** otherwise (different init states, seeds or episode counts): an exact
  one-sided test of two independent binomials, Boschloo's (default; uniformly more
  powerful than Fisher's) or Fisher's (``unpaired_test``). Boschloo's cost grows with
  n1 x n2, so above 500 episodes a side (suite level of a large suite) Fisher's is used,
  and the table says so.

Both directions are tested one-sided ("dropped" and "rose"), each family Holm-corrected
over the tasks (and separately over the suites). A task **regressed** when its Holm-
adjusted drop p-value is at most ``alpha`` AND the observed drop exceeds ``margin``: the
margin is the drop a project accepts (e.g. 0.02 = two points) even when it is
statistically real. It **improved** when the adjusted rise p-value is at most ``alpha``.
Otherwise: no evidence of change.

Each suite also gets the candidate-minus-baseline difference with a 95% Newcombe
interval, paired when all its tasks are (comparing checkpoints on the same episodes).

A gate never passes silently on an incomplete run: errors or missing episodes in either
run, or tasks of the baseline absent from the candidate, give the verdict "incomplete"
(exit 2) with the reason. Runs under different protocols are refused outright.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field

from evalharness.errors import UserInputError
from evalharness.results.context import ContextItem, compare_contexts, conditions_key, describe_conditions
from evalharness.results.records import EpisodeRecord
from evalharness.results.runs import LoadedRun
from evalharness.results.stats import UNPAIRED_TESTS, difference_interval, holm, mcnemar_exact, unpaired_exact

__all__ = ["Comparison", "GateResult", "run_gate", "EXIT_PASS", "EXIT_REGRESSED", "EXIT_INCOMPLETE"]

EXIT_PASS, EXIT_REGRESSED, EXIT_INCOMPLETE = 0, 1, 2
REGRESSED, NO_EVIDENCE, IMPROVED = "regressed", "no evidence of change", "improved"
BOSCHLOO_MAX_N = 500

PairKey = tuple[str, int, int, int]  # suite, task index, init state, seed


@dataclass
class Comparison:
    """One task (or one suite, ``task_index`` None) compared."""

    suite: str
    task_index: int | None
    task_name: str
    base_k: int
    base_n: int
    cand_k: int
    cand_n: int
    test: str
    discordant: tuple[int, int] | None  # (b, c) when paired
    p_drop: float
    p_rise: float
    diff: float = 0.0
    ci_low: float = -1.0
    ci_high: float = 1.0
    p_drop_adj: float = 1.0
    p_rise_adj: float = 1.0
    verdict: str = NO_EVIDENCE

    @property
    def paired(self) -> bool:
        return self.discordant is not None

    @property
    def name(self) -> str:
        return self.suite if self.task_index is None else f"{self.suite} {self.task_index}: {self.task_name}"


@dataclass
class GateResult:
    baseline: LoadedRun
    candidate: LoadedRun
    alpha: float
    margin: float
    tasks: list[Comparison]
    suites: list[Comparison]
    context: list[ContextItem]
    incomplete: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return any(c.verdict == REGRESSED for c in self.tasks + self.suites)

    @property
    def exit_code(self) -> int:
        if self.incomplete:
            return EXIT_INCOMPLETE
        return EXIT_REGRESSED if self.regressed else EXIT_PASS

    @property
    def outcome(self) -> str:
        if self.incomplete:
            return "INCOMPLETE"
        if self.regressed:
            return "REGRESSED"
        return "PASS"


def _incomplete(role: str, run: LoadedRun) -> list[str]:
    if run.partial:
        return [f"{role} {run.partial}"]
    summary = run.summary
    return [f"{role}: {reason}" for reason in summary.incomplete_reasons]


def _outcomes(records: Sequence[EpisodeRecord] | None) -> dict[tuple[str, int], dict[PairKey, bool]] | None:
    """(suite, task) -> pair key -> success, over episodes with a verdict."""
    if records is None:
        return None
    by_task: dict[tuple[str, int], dict[PairKey, bool]] = defaultdict(dict)
    for r in records:
        if r.outcome != "error":
            by_task[(r.suite, r.task_index)][(r.suite, r.task_index, r.init_state, r.seed)] = r.success
    return by_task


def _compare(
    suite: str, task_index: int | None, name: str, base: dict[PairKey, bool] | None, cand: dict[PairKey, bool] | None,
    counts: tuple[int, int, int, int], unpaired_test: str,
) -> Comparison:
    bk, bn, ck, cn = counts
    if base is not None and cand is not None and base and base.keys() == cand.keys():
        b = sum(1 for k in base if base[k] and not cand[k])
        c = sum(1 for k in base if cand[k] and not base[k])
        comp = Comparison(suite, task_index, name, bk, bn, ck, cn, "McNemar exact (paired)", (b, c),
                          mcnemar_exact(b, c, "greater"), mcnemar_exact(b, c, "less"))
    else:
        test = unpaired_test if max(bn, cn) <= BOSCHLOO_MAX_N else "fisher"
        comp = Comparison(suite, task_index, name, bk, bn, ck, cn, f"{test.capitalize()} exact (unpaired)", None,
                          unpaired_exact(bk, bn, ck, cn, "greater", test), unpaired_exact(bk, bn, ck, cn, "less", test))
    comp.diff, comp.ci_low, comp.ci_high = difference_interval(bk, bn, ck, cn, discordant=comp.discordant)
    return comp


def _decide(comparisons: list[Comparison], alpha: float, margin: float) -> None:
    """Holm over the family, then the three-way verdict (see the module docstring)."""
    drops = holm([c.p_drop for c in comparisons])
    rises = holm([c.p_rise for c in comparisons])
    for comp, p_drop, p_rise in zip(comparisons, drops, rises):
        comp.p_drop_adj, comp.p_rise_adj = p_drop, p_rise
        if comp.base_n == 0 or comp.cand_n == 0:
            comp.verdict = NO_EVIDENCE
        elif p_drop <= alpha and -comp.diff > margin:
            comp.verdict = REGRESSED
        elif p_rise <= alpha:
            comp.verdict = IMPROVED
        else:
            comp.verdict = NO_EVIDENCE


def run_gate(
    baseline: LoadedRun, candidate: LoadedRun, *, alpha: float = 0.05, margin: float = 0.0,
    unpaired_test: str = "boschloo",
) -> GateResult:
    """Compare ``candidate`` with ``baseline``; refuses runs under different protocols."""
    if not 0.0 < alpha < 1.0:
        raise UserInputError(f"--alpha {alpha!r} is not valid; allowed: a number in (0, 1), e.g. 0.05")
    if not 0.0 <= margin < 1.0:
        raise UserInputError(f"--margin {margin!r} is not valid; allowed: a success-rate drop in [0, 1), e.g. 0.02")
    if unpaired_test not in UNPAIRED_TESTS:
        raise UserInputError(f"--unpaired-test {unpaired_test!r} is not valid; allowed: {', '.join(UNPAIRED_TESTS)}")
    if conditions_key(baseline.summary) != conditions_key(candidate.summary):
        raise UserInputError(
            f"baseline ({describe_conditions(baseline.summary)}) and candidate ({describe_conditions(candidate.summary)}) "
            "were made under different protocols; a gate across protocols compares the protocols, not the policies"
        )
    result = GateResult(baseline, candidate, alpha, margin, [], [], compare_contexts(baseline.summary, candidate.summary))
    result.incomplete = _incomplete("baseline", baseline) + _incomplete("candidate", candidate)

    base_tasks = {(t.suite, t.task_index): t for t in baseline.summary.tasks}
    cand_tasks = {(t.suite, t.task_index): t for t in candidate.summary.tasks}
    missing = sorted(set(base_tasks) - set(cand_tasks))
    if missing:
        shown = ", ".join(f"{s} {i}" for s, i in missing[:5]) + (" ..." if len(missing) > 5 else "")
        result.incomplete.append(f"candidate lacks {len(missing)} task(s) of the baseline ({shown})")
    extra = sorted(set(cand_tasks) - set(base_tasks))
    if extra:
        result.notes.append(f"{len(extra)} task(s) of the candidate are not in the baseline and are not compared")
    if not baseline.summary.tasks:
        result.incomplete.append("baseline has no episodes")

    base_out, cand_out = _outcomes(baseline.records), _outcomes(candidate.records)
    if base_out is None or cand_out is None:
        result.notes.append("episodes.jsonl missing for a run: episodes cannot be paired, unpaired tests used")
    common = sorted(set(base_tasks) & set(cand_tasks))
    for key in common:
        bt, ct = base_tasks[key], cand_tasks[key]
        result.tasks.append(_compare(
            key[0], key[1], bt.task_name, None if base_out is None else base_out.get(key, {}),
            None if cand_out is None else cand_out.get(key, {}),
            (bt.successes, bt.episodes, ct.successes, ct.episodes), unpaired_test,
        ))
    _decide(result.tasks, alpha, margin)

    for suite in sorted({s for s, _ in common}):
        comps = [c for c in result.tasks if c.suite == suite]
        pooled = tuple(sum(getattr(c, f) for c in comps) for f in ("base_k", "base_n", "cand_k", "cand_n"))
        if all(c.paired for c in comps):
            base_pairs = {k: v for key in common if key[0] == suite for k, v in base_out[key].items()}  # type: ignore[index]
            cand_pairs = {k: v for key in common if key[0] == suite for k, v in cand_out[key].items()}  # type: ignore[index]
        else:
            base_pairs = cand_pairs = None
        result.suites.append(_compare(suite, None, suite, base_pairs, cand_pairs, pooled, unpaired_test))  # type: ignore[arg-type]
    _decide(result.suites, alpha, margin)
    return result


# -- Markdown ------------------------------------------------------------------------------


def _pct(x: float) -> str:
    return f"{100 * x:.1f}"


def _signed(x: float) -> str:
    return f"{100 * x:+.1f}"


def _p(x: float) -> str:
    return f"{x:.3g}" if x >= 0.001 else f"{x:.1e}"


def _row(c: Comparison, bold: bool = False) -> str:
    def fmt(k: int, n: int) -> str:
        return f"{k}/{n} ({_pct(k / n)}%)" if n else "0/0"

    p = c.p_drop_adj if c.diff <= 0 else c.p_rise_adj
    cells = [
        c.name.replace("|", "\\|"),
        fmt(c.base_k, c.base_n),
        fmt(c.cand_k, c.cand_n),
        f"{_signed(c.diff)} [{_signed(c.ci_low)}, {_signed(c.ci_high)}]" if c.base_n and c.cand_n else "—",
        c.test + (f", b={c.discordant[0]} c={c.discordant[1]}" if c.discordant else ""),
        _p(p),
        f"**{c.verdict}**" if c.verdict != NO_EVIDENCE else c.verdict,
    ]
    if bold:
        cells[0] = f"**{cells[0]}**"
    return "| " + " | ".join(cells) + " |"


def render_markdown(result: GateResult) -> str:
    """The CI-log summary (also appended to $GITHUB_STEP_SUMMARY)."""
    head = {"PASS": "PASS: no regression", "REGRESSED": "REGRESSED", "INCOMPLETE": "INCOMPLETE (no verdict)"}
    lines = [
        f"## evalharness gate: {head[result.outcome]}",
        "",
        f"Baseline **{result.baseline.label}** (`{result.baseline.source}`) vs candidate "
        f"**{result.candidate.label}** (`{result.candidate.source}`), "
        f"{describe_conditions(result.baseline.summary)} protocol.",
        "",
    ]
    for reason in result.incomplete:
        lines.append(f"- **Incomplete:** {reason}")
    for note in result.notes:
        lines.append(f"- Note: {note}")
    if result.incomplete or result.notes:
        lines.append("")
    lines += [
        "| suite / task | baseline | candidate | Δ points [95% CI] | test | p (Holm) | verdict |",
        "| --- | ---: | ---: | ---: | --- | ---: | --- |",
    ]
    lines += [_row(c, bold=True) for c in result.suites]
    lines += [_row(c) for c in result.tasks]
    lines += [
        "",
        f"Regressed = one-sided exact test of a drop significant at alpha {result.alpha:g} after Holm over "
        f"{len(result.tasks)} task(s) (and separately over {len(result.suites)} suite(s)), and a drop larger than "
        f"the margin {100 * result.margin:g} points. p is the adjusted p-value in the direction of the change. "
        "Δ intervals: Newcombe hybrid score (paired when the episodes are).",
        "",
        "| context | baseline | candidate | |",
        "| --- | --- | --- | --- |",
    ]
    for item in result.context:
        flag = "" if not item.differs else ("**differs (refused)**" if item.blocking else "**differs**")
        lines.append(f"| {item.name} | {item.baseline} | {item.candidate} | {flag} |")
    return "\n".join(lines) + "\n"
