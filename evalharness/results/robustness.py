"""Perturbed episodes against their clean twins: rates, paired difference, exact McNemar.

A perturbed record carries ``perturbation`` (its dimensions and levels) and
``control_key`` (its clean twin, same task, init state and seed). Episodes are grouped
by (dimension, level, suite); a dimension is the ``+``-joined names of the composed
dimensions ("camera+light"). Each group reports the perturbed and the control rate with
Wilson intervals, the paired difference (perturbed - control) with Newcombe's paired
interval, and the exact McNemar p-value of the discordant pairs: the gate's statistics
(:mod:`evalharness.results.stats`), not a second copy. A difference whose p-value is
above ``alpha`` is reported as within noise. Only pairs where both episodes reached a
verdict count in the paired numbers; ``invalid_perturbation`` and other errors are
counted apart.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from evalharness.results.records import EpisodeRecord
from evalharness.results.stats import difference_interval, mcnemar_exact, rate_summary

__all__ = ["dimension_of", "level_of", "robustness_groups", "render_robustness_markdown"]

ALPHA = 0.05


def dimension_of(record: EpisodeRecord) -> str | None:
    if not record.perturbation:
        return None
    return "+".join(sorted(record.perturbation.get("dimensions", {})))


def level_of(record: EpisodeRecord) -> int | None:
    levels = {d.get("level") for d in (record.perturbation or {}).get("dimensions", {}).values()}
    return levels.pop() if len(levels) == 1 else None


def _rate(records: list[EpisodeRecord], confidence: float) -> dict[str, Any]:
    k = sum(r.outcome == "success" for r in records)
    n = sum(r.outcome != "error" for r in records)
    return rate_summary(k, n, len(records) - n, confidence).as_dict()


def robustness_groups(
    records: Iterable[EpisodeRecord], *, per_level: bool = True, confidence: float = 0.95, alpha: float = ALPHA,
) -> list[dict[str, Any]]:
    """One entry per (dimension, level or None, suite), sorted; empty when nothing was perturbed."""
    recs = list(records)
    by_key = {r.key: r for r in recs}
    groups: dict[tuple[str, int | None, str], list[EpisodeRecord]] = defaultdict(list)
    for r in recs:
        dim = dimension_of(r)
        if dim is not None:
            groups[(dim, level_of(r) if per_level else None, r.suite)].append(r)
    out = []
    for (dim, level, suite), perturbed in sorted(groups.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0, kv[0][2])):
        controls = [by_key[r.control_key] for r in perturbed if r.control_key in by_key]
        pairs = [(r, by_key[r.control_key]) for r in perturbed if r.control_key in by_key]
        pairs = [(p, c) for p, c in pairs if p.outcome != "error" and c.outcome != "error"]
        b = sum(1 for p, c in pairs if c.success and not p.success)  # control solved, perturbed failed
        c_ = sum(1 for p, c in pairs if p.success and not c.success)
        entry: dict[str, Any] = {
            "dimension": dim, "level": level, "suite": suite,
            "perturbed": _rate(perturbed, confidence),
            "control": _rate(controls, confidence) if controls else None,
            "invalid_perturbation": sum(r.error_kind == "invalid_perturbation" for r in perturbed),
            "pairs": len(pairs), "discordant": [b, c_],
            "diff": None, "diff_ci_low": None, "diff_ci_high": None, "p_value": None, "within_noise": None,
        }
        if pairs:
            ck = sum(c.success for _, c in pairs)
            pk = sum(p.success for p, _ in pairs)
            diff, low, high = difference_interval(ck, len(pairs), pk, len(pairs), discordant=(b, c_), confidence=confidence)
            p_value = mcnemar_exact(b, c_)
            entry.update(diff=diff, diff_ci_low=low, diff_ci_high=high, p_value=p_value, within_noise=p_value > alpha)
        out.append(entry)
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def render_robustness_markdown(groups: Sequence[dict[str, Any]], alpha: float = ALPHA) -> str:
    """The summary's robustness section: each group against its clean control."""
    if not groups:
        return ""
    lines = [
        "", "### Robustness (perturbed vs same-seed clean control)", "",
        "| dimension | level | suite | perturbed % [95% CI] | control % | Δ (pp) [95% CI] | McNemar p | pairs | invalid |",
        "| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for g in groups:
        p, c = g["perturbed"], g["control"] or {}
        if g["diff"] is None:
            delta, pv = "–", "–"
        else:
            noise = " (within noise)" if g["within_noise"] else ""
            delta = f"{100 * g['diff']:+.1f} [{100 * g['diff_ci_low']:+.1f}, {100 * g['diff_ci_high']:+.1f}]{noise}"
            pv = f"{g['p_value']:.3g}"
        lines.append(
            f"| {g['dimension']} | {g['level'] if g['level'] is not None else 'all'} | {g['suite']} | "
            f"{_pct(p['rate'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}] ({p['successes']}/{p['episodes']}) | "
            f"{_pct(c.get('rate'))} | {delta} | {pv} | {g['pairs']} | {g['invalid_perturbation']} |"
        )
    lines += ["", f"- Δ = perturbed - control over pairs where both reached a verdict; exact McNemar test on the "
                  f"discordant pairs; 'within noise' = p > {alpha}. invalid_perturbation episodes are errors, not failures."]
    return "\n".join(lines) + "\n"


def robustness_table(records: Iterable[EpisodeRecord], *, per_level: bool = False, alpha: float = ALPHA) -> str:
    """``evalharness table --robustness``: success per dimension x suite, drop from the control.

    Each cell: rate % [Wilson 95% CI], n, and the paired drop from the clean control in
    percentage points (marked * when the exact McNemar p <= alpha). The overall row is
    the unweighted mean over dimensions of each suite's rate (LIBERO-Plus's convention).
    """
    unique = {r.key: r for r in records}
    groups = robustness_groups(unique.values(), per_level=per_level, alpha=alpha)
    if not groups:
        return "no perturbed episodes in these runs (run with perturb=<dimension>)\n"
    suites = sorted({g["suite"] for g in groups})
    rows: dict[tuple[str, int | None], dict[str, dict[str, Any]]] = defaultdict(dict)
    for g in groups:
        rows[(g["dimension"], g["level"])][g["suite"]] = g
    head = "| dimension |" + (" level |" if per_level else "") + "".join(f" {s} |" for s in suites)
    lines = [head, "| --- |" + (" ---: |" if per_level else "") + " ---: |" * len(suites)]
    for (dim, level), cells in sorted(rows.items(), key=lambda kv: (kv[0][0], kv[0][1] or 0)):
        row = f"| {dim} |" + (f" {level if level is not None else 'mixed'} |" if per_level else "")
        for suite in suites:
            g = cells.get(suite)
            if g is None:
                row += " – |"
                continue
            p = g["perturbed"]
            cell = f" {_pct(p['rate'])} [{_pct(p['ci_low'])}, {_pct(p['ci_high'])}] n={p['episodes']}"
            if g["diff"] is not None:
                cell += f", Δ {100 * g['diff']:+.1f}{'' if g['within_noise'] else '*'}"
            row += cell + " |"
        lines.append(row)
    overall = "| **overall¹** |" + (" |" if per_level else "")
    for suite in suites:
        rates = [cells[suite]["perturbed"]["rate"] for cells in rows.values()
                 if suite in cells and cells[suite]["perturbed"]["rate"] is not None]
        overall += f" **{_pct(sum(rates) / len(rates))}** |" if rates else " – |"
    lines.append(overall)
    lines += [
        "",
        "¹ Overall = unweighted mean over the dimensions" + (" and levels" if per_level else "")
        + " of the success rates in the column (LIBERO-Plus's convention), not a pooled rate.",
        "- Cells: success % [95% Wilson interval], n = perturbed episodes with a verdict; Δ = perturbed - "
        f"same-seed clean control in percentage points over paired episodes; * = exact McNemar p <= {alpha} "
        "(unmarked differences are within noise).",
    ]
    invalid = sum(g["invalid_perturbation"] for g in groups)
    if invalid:
        lines.append(f"- {invalid} perturbed episode(s) had no valid perturbed scene (invalid_perturbation): "
                     "counted apart, not as failures.")
    return "\n".join(lines) + "\n"
