"""Build the ``summary.json`` content from episode records.

The summary is a pure function of the records (plus the run's metadata), so it can be
rebuilt at any time, during or after a run, from ``episodes.jsonl`` alone. It follows the
project's reporting rules:

- every rate comes with its count (k/n) and a 95% Wilson interval;
- errors (episodes that could not run) are counted apart and never as failures; the
  rate is successes / (successes + failures);
- a suite's rate pools its episodes (sum k / sum n), and the per-task spread is shown
  next to it;
- a run with errors, or with fewer recorded episodes than planned, says it is
  incomplete, and why.

The typed form of this content, with every field documented, is
:class:`evalharness.results.schema.Summary`; the result is validated against it before
it is returned, so a writer bug fails here rather than in a reader. The document
(:meth:`Summary.to_document`, what ``summary.json`` holds) has the shape
(``schema_version`` 2)::

    {
      "schema_version": 2,
      "confidence": 0.95,
      "metadata": {...},                     # as passed in
      "complete": bool,
      "incomplete_reasons": [str, ...],      # empty when complete
      "suites": {suite: {<counts>, "num_tasks", "task_rate_min", "task_rate_max",
                         "task_rate_mean"}},
      "tasks": [{"suite", "task_index", "task_name", <counts>}, ...],
      "totals": {<counts>, "num_suites", "num_tasks", "mean_suite_rate",
                 "expected_episodes", "missing_episodes", "time_s": {...}},
      "errored_episodes": [{"key", "suite", "task_index", "task_name", "init_state",
                            "seed", "error_kind", "error_message", "attempts"}, ...]
    }

    <counts> = "recorded", "successes", "failures", "episodes" (= successes + failures),
               "errors", "errors_by_kind" {kind: n}, "rate" (null if episodes == 0),
               "ci_low", "ci_high", "mean_steps" (over episodes with a verdict, null if
               none), "mean_steps_success" (null if no success)

Suites are keyed in sorted order, tasks sorted by (suite, task_index), errored episodes by
(suite, task_index, init_state, seed, key), so the same records always give the same file.
"""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Mapping
from typing import Any

from evalharness.results.records import EpisodeRecord
from evalharness.results.robustness import robustness_groups
from evalharness.results.schema import SCHEMA_VERSION, Summary
from evalharness.results.stats import rate_summary

__all__ = ["SCHEMA_VERSION", "build_summary"]


def _mean(values: list[int]) -> float | None:
    return sum(values) / len(values) if values else None


#: policy_stats entries that count departures from a clean run (issue 25), summed in totals.
FIDELITY_STATS = ("decode_events", "prompt_truncations")


def _fidelity_events(records: list[EpisodeRecord]) -> dict[str, int]:
    out: dict[str, int] = {}
    for name in FIDELITY_STATS:
        counts = [int(r.policy_stats.get(name, 0)) for r in records]
        if any(counts):
            out[name] = sum(counts)
            out[f"episodes_with_{name}"] = sum(1 for c in counts if c)
    return out


def _counts(records: list[EpisodeRecord], confidence: float) -> dict[str, Any]:
    """The count block shared by tasks, suites and totals."""
    successes = sum(1 for r in records if r.outcome == "success")
    failures = sum(1 for r in records if r.outcome == "failure")
    error_kinds = Counter(r.error_kind for r in records if r.outcome == "error")
    rs = rate_summary(successes, successes + failures, sum(error_kinds.values()), confidence)
    verdict_steps = [r.steps for r in records if r.outcome != "error"]
    success_steps = [r.steps for r in records if r.outcome == "success"]
    return {
        "recorded": len(records),
        "successes": rs.successes,
        "failures": failures,
        "episodes": rs.episodes,
        "errors": rs.errors,
        "errors_by_kind": dict(sorted(error_kinds.items())),
        "rate": rs.rate,
        "ci_low": rs.ci_low,
        "ci_high": rs.ci_high,
        "mean_steps": _mean(verdict_steps),
        "mean_steps_success": _mean(success_steps),
    }


def _check_unique(records: list[EpisodeRecord]) -> None:
    seen: set[str] = set()
    for r in records:
        if r.key in seen:
            # Counting an episode twice would inflate n; the store deduplicates, so a
            # duplicate here means the caller merged sources incorrectly.
            raise ValueError(f"duplicate episode key {r.key!r}; deduplicate records first")
        seen.add(r.key)


def _by_task(recs: list[EpisodeRecord]) -> tuple[dict[tuple[str, int], list[EpisodeRecord]], dict[tuple[str, int], str]]:
    """The records of each (suite, task_index), and its task name (one name per task, else ValueError)."""
    by_task: dict[tuple[str, int], list[EpisodeRecord]] = {}
    names: dict[tuple[str, int], str] = {}
    for r in recs:
        tid = (r.suite, r.task_index)
        if names.setdefault(tid, r.task_name) != r.task_name:
            raise ValueError(
                f"task {r.suite}[{r.task_index}] appears as both {names[tid]!r} and "
                f"{r.task_name!r}; records from different task orderings were mixed"
            )
        by_task.setdefault(tid, []).append(r)
    return by_task, names


def _task_blocks(
    by_task: dict[tuple[str, int], list[EpisodeRecord]], names: dict[tuple[str, int], str], confidence: float
) -> list[dict[str, Any]]:
    tasks: list[dict[str, Any]] = []
    for suite, index in sorted(by_task):
        entry = {"suite": suite, "task_index": index, "task_name": names[(suite, index)]}
        entry.update(_counts(by_task[(suite, index)], confidence))
        tasks.append(entry)
    return tasks


def _suite_blocks(recs: list[EpisodeRecord], tasks: list[dict[str, Any]], confidence: float) -> dict[str, dict[str, Any]]:
    """Each suite's pooled counts, with the spread of its task rates."""
    suites: dict[str, dict[str, Any]] = {}
    for suite in sorted({t["suite"] for t in tasks}):
        block = _counts([r for r in recs if r.suite == suite], confidence)
        task_rates = [t["rate"] for t in tasks if t["suite"] == suite and t["rate"] is not None]
        block["num_tasks"] = sum(1 for t in tasks if t["suite"] == suite)
        block["task_rate_min"] = min(task_rates) if task_rates else None
        block["task_rate_max"] = max(task_rates) if task_rates else None
        block["task_rate_mean"] = sum(task_rates) / len(task_rates) if task_rates else None
        suites[suite] = block
    return suites


def _totals(
    recs: list[EpisodeRecord], suites: dict[str, dict[str, Any]], num_tasks: int,
    expected_episodes: int | None, confidence: float,
) -> dict[str, Any]:
    totals = _counts(recs, confidence)
    suite_rates = [s["rate"] for s in suites.values() if s["rate"] is not None]
    missing = max(0, expected_episodes - len(recs)) if expected_episodes is not None else None
    fidelity = _fidelity_events(recs)
    if fidelity:
        totals["fidelity_events"] = fidelity
    totals.update(
        {
            "num_suites": len(suites),
            "num_tasks": num_tasks,
            "mean_suite_rate": sum(suite_rates) / len(suite_rates) if suite_rates else None,
            "expected_episodes": expected_episodes,
            "missing_episodes": missing,
            "time_s": {
                "wall": sum(r.wall_time_s for r in recs),
                "policy": sum(r.policy_time_s for r in recs),
                "env": sum(r.env_time_s for r in recs),
                "render": sum(r.render_time_s for r in recs),
            },
        }
    )
    return totals


def _incomplete_reasons(recs: list[EpisodeRecord], totals: dict[str, Any], expected_episodes: int | None) -> list[str]:
    reasons: list[str] = []
    if not recs and expected_episodes is None:
        reasons.append("no episodes recorded")
    if totals["errors"]:
        kinds = ", ".join(f"{k}: {n}" for k, n in totals["errors_by_kind"].items())
        reasons.append(f"{totals['errors']} episode(s) errored ({kinds})")
    if totals["missing_episodes"]:
        reasons.append(f"{totals['missing_episodes']} of {expected_episodes} planned episode(s) not recorded")
    return reasons


def _errored_entries(recs: list[EpisodeRecord]) -> list[dict[str, Any]]:
    errored = sorted(
        (r for r in recs if r.outcome == "error"),
        key=lambda r: (r.suite, r.task_index, r.init_state, r.seed, r.key),
    )
    fields = ("key", "suite", "task_index", "task_name", "init_state", "seed", "error_kind", "error_message", "attempts")
    return [{name: getattr(r, name) for name in fields} for r in errored]


def build_summary(
    records: Iterable[EpisodeRecord],
    metadata: Mapping[str, Any],
    *,
    expected_episodes: int | None = None,
    confidence: float = 0.95,
) -> Summary:
    """Summarize episode records into the typed summary; ``.to_document()`` is ``summary.json``.

    ``expected_episodes`` is how many episodes the plan holds; when more were planned
    than recorded the run is marked incomplete. Raises ValueError on duplicate keys or
    when one (suite, task_index) appears under two task names (mixed-up runs), or when
    the result does not validate against :class:`~evalharness.results.schema.Summary`.
    """
    recs = list(records)
    _check_unique(recs)
    if expected_episodes is not None and expected_episodes < 0:
        raise ValueError(f"expected_episodes must be >= 0, got {expected_episodes}")
    by_task, names = _by_task(recs)
    tasks = _task_blocks(by_task, names, confidence)
    suites = _suite_blocks(recs, tasks, confidence)
    totals = _totals(recs, suites, len(tasks), expected_episodes, confidence)
    reasons = _incomplete_reasons(recs, totals, expected_episodes)
    document: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "confidence": confidence,
        "metadata": copy.deepcopy(dict(metadata)),
        "complete": not reasons,
        "incomplete_reasons": reasons,
        "suites": suites,
        "tasks": tasks,
        "totals": totals,
        "errored_episodes": _errored_entries(recs),
    }
    robustness = robustness_groups(recs, confidence=confidence)
    if robustness:  # only runs with perturbed episodes (perturb=...) have the block
        document["robustness"] = robustness
    return Summary.from_document(document)  # the typed schema is the contract with every reader
