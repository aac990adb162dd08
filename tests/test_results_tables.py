"""Tables: the numbers, the incomplete/error notes, escaping, CSV round-trip."""

from __future__ import annotations

import csv
import io

import pytest

from evalharness.results.summary import build_summary
from factories import episode_record
from evalharness.results.summary_table import render_csv, render_latex, render_markdown

_keys = iter(range(10**6))


def rec(suite, idx, name, outcome, init_state=0):
    kind = "env_error" if outcome == "error" else None
    return episode_record(
        key=f"k{next(_keys)}", suite=suite, task_index=idx, task_name=name, instruction=name, init_state=init_state,
        success=outcome == "success", steps=10, error_kind=kind, error_message="crash" if kind else None,
        wall_time_s=1.0, policy_time_s=0.1, env_time_s=0.1, render_time_s=0.1, action_fingerprint="",
    )


def n_of(suite, idx, name, outcome, n):
    return [rec(suite, idx, name, outcome, i) for i in range(n)]


@pytest.fixture
def clean_summary():
    records = (
        n_of("libero_10", 0, "open_the_drawer", "success", 9)
        + n_of("libero_10", 0, "open_the_drawer", "failure", 1)
        + n_of("libero_10", 1, "put a|b", "success", 36)
        + n_of("libero_10", 1, "put a|b", "failure", 4)
    )
    return build_summary(records, {}).to_document()


def test_markdown_contains_numbers(clean_summary):
    md = render_markdown(clean_summary)
    lines = md.splitlines()
    assert lines[0] == "| task | successes/episodes | rate % | 95% CI | errors |"
    row0 = next(line for line in lines if "open_the_drawer" in line)
    assert "| 9/10 | 90.0 | [59.6, 98.2] | 0 |" in row0
    row1 = next(line for line in lines if "put a" in line)
    assert "put a\\|b" in row1  # a pipe in a task name must not break the table
    assert "| 36/40 | 90.0 |" in row1
    total = next(line for line in lines if "libero_10 total (2 tasks)" in line)
    assert "**45/50**" in total and "**90.0**" in total and "**[78.6, 95.7]**" in total
    assert "Incomplete" not in md and "errored" not in md
    assert "task rates range 90.0–90.0% over 2 tasks." in md  # per-task spread


def test_markdown_notes_incomplete_and_errors():
    records = n_of("libero_goal", 3, "t", "success", 4) + n_of("libero_goal", 3, "t", "error", 2)
    md = render_markdown(build_summary(records, {}, expected_episodes=10).to_document())
    assert "**Incomplete run:**" in md
    assert "4 of 10 planned episode(s) not recorded" in md
    assert "2 episode(s) errored" in md and "env_error: 2" in md
    assert "not counted as failures" in md
    row = next(line for line in md.splitlines() if line.startswith("| 3: t"))
    assert "| 4/4 | 100.0 |" in row and row.endswith("| 2 |")


def test_markdown_only_errors_task_shows_dashes():
    md = render_markdown(build_summary(n_of("libero_10", 0, "x", "error", 3), {}).to_document())
    row = next(line for line in md.splitlines() if line.startswith("| 0: x"))
    assert row == "| 0: x | 0/0 | — | — | 3 |"
    assert "task rates range" not in md
    tex = render_latex(build_summary(n_of("libero_10", 0, "x", "error", 3), {}).to_document())
    assert r"0: x & 0/0 & --- & --- & 3 \\" in tex


def test_markdown_multi_suite_total_row():
    records = n_of("a", 0, "t", "success", 3) + n_of("b", 0, "t", "failure", 1)
    md = render_markdown(build_summary(records, {}).to_document())
    total = next(line for line in md.splitlines() if "all suites" in line)
    assert "**3/4**" in total and "**75.0**" in total
    assert "Mean of suite rates: 50.0%" in md
    assert "b total (1 task)" in md


def test_latex(clean_summary):
    tex = render_latex(clean_summary)
    assert tex.startswith("\\begin{tabular}")
    assert r"open\_the\_drawer & 9/10 & 90.0 & [59.6, 98.2] & 0 \\" in tex
    assert r"\textbf{45/50}" in tex
    assert tex.rstrip().endswith(r"\end{tabular}")
    incomplete = render_latex(build_summary(n_of("s", 0, "t", "error", 1), {}).to_document())
    assert incomplete.startswith("% INCOMPLETE RUN: 1 episode(s) errored")


def test_csv(clean_summary):
    rows = list(csv.DictReader(io.StringIO(render_csv(clean_summary))))
    assert [r["level"] for r in rows] == ["task", "task", "suite", "total"]
    assert rows[0]["successes"] == "9" and rows[0]["episodes"] == "10"
    assert float(rows[0]["rate"]) == pytest.approx(0.9)
    assert rows[1]["task_name"] == "put a|b"
    assert rows[2]["suite"] == "libero_10" and rows[2]["task_index"] == ""
    assert rows[3]["successes"] == "45"


def test_spread_says_when_some_tasks_have_no_verdict():
    records = n_of("libero_10", 0, "a", "success", 2) + n_of("libero_10", 1, "b", "error", 1)
    md = render_markdown(build_summary(records, {}).to_document())
    assert "over 1 task of 2 (the others have no verdict yet)" in md
