"""build_summary: errors apart from failures, pooled suite rates, completeness, ordering."""

from __future__ import annotations

import json
import random

import pytest

from evalharness.results.atomic import write_json_atomic
from evalharness.results.records import EpisodeRecord
from evalharness.results.stats import wilson_interval
from evalharness.results.schema import Summary
from evalharness.results.summary import build_summary
from factories import episode_record

_counter = iter(range(10**6))



def _document(*args, **kwargs) -> dict:
    """What summary.json holds for these records (build_summary returns the typed Summary)."""
    summary = build_summary(*args, **kwargs)
    assert isinstance(summary, Summary)
    return summary.to_document()


def rec(suite: str, task_index: int, task_name: str, outcome: str, *, steps: int = 100, init_state: int = 0) -> EpisodeRecord:
    error_kind = {"env_error": "env_error", "policy_error": "policy_error"}.get(outcome)
    return episode_record(
        key=f"key{next(_counter)}", suite=suite, task_index=task_index, task_name=task_name,
        instruction=task_name.replace("_", " "), init_state=init_state, success=outcome == "success", steps=steps,
        error_kind=error_kind, error_message="it broke" if error_kind else None, wall_time_s=2.0,
        policy_time_s=1.0, env_time_s=0.5, render_time_s=0.25, action_fingerprint="00ff",
    )


def many(suite, idx, name, outcome, n, steps=100):
    return [rec(suite, idx, name, outcome, steps=steps, init_state=i) for i in range(n)]


@pytest.fixture
def records():
    return (
        many("libero_10", 0, "alpha", "success", 9, steps=100)
        + many("libero_10", 0, "alpha", "failure", 1, steps=200)
        + [rec("libero_10", 0, "alpha", "env_error", steps=7), rec("libero_10", 0, "alpha", "policy_error", steps=3)]
        + many("libero_10", 1, "beta", "success", 6)
        + many("libero_10", 1, "beta", "failure", 4)
        + many("libero_goal", 2, "gamma", "success", 45)
        + many("libero_goal", 2, "gamma", "failure", 5)
        + many("libero_goal", 0, "delta", "success", 1)
        + many("libero_goal", 0, "delta", "failure", 4)
    )


def test_errors_counted_apart_from_failures(records):
    s = _document(records, {"run": "x"})
    alpha = s["tasks"][0]
    assert (alpha["suite"], alpha["task_index"], alpha["task_name"]) == ("libero_10", 0, "alpha")
    assert alpha["successes"] == 9
    assert alpha["failures"] == 1
    assert alpha["episodes"] == 10  # errors excluded from n
    assert alpha["errors"] == 2
    assert alpha["recorded"] == 12
    assert alpha["errors_by_kind"] == {"env_error": 1, "policy_error": 1}
    assert alpha["rate"] == pytest.approx(0.9)
    assert (round(alpha["ci_low"], 3), round(alpha["ci_high"], 3)) == (0.596, 0.982)
    # Mean steps over episodes with a verdict only; errored episodes' steps ignored.
    assert alpha["mean_steps"] == pytest.approx((9 * 100 + 200) / 10)
    assert alpha["mean_steps_success"] == pytest.approx(100)


def test_suite_rate_is_pooled_with_spread(records):
    s = _document(records, {})
    goal = s["suites"]["libero_goal"]
    assert (goal["successes"], goal["episodes"], goal["errors"]) == (46, 55, 0)
    assert goal["rate"] == pytest.approx(46 / 55)  # pooled, not the mean of task rates
    assert goal["task_rate_mean"] == pytest.approx((0.9 + 0.2) / 2)
    assert (goal["task_rate_min"], goal["task_rate_max"]) == (pytest.approx(0.2), pytest.approx(0.9))
    assert goal["num_tasks"] == 2
    assert (goal["ci_low"], goal["ci_high"]) == pytest.approx(wilson_interval(46, 55))
    ten = s["suites"]["libero_10"]
    assert (ten["successes"], ten["failures"], ten["episodes"], ten["errors"]) == (15, 5, 20, 2)
    assert ten["errors_by_kind"] == {"env_error": 1, "policy_error": 1}
    totals = s["totals"]
    assert (totals["successes"], totals["episodes"], totals["errors"], totals["recorded"]) == (61, 75, 2, 77)
    assert totals["mean_suite_rate"] == pytest.approx((15 / 20 + 46 / 55) / 2)
    assert totals["time_s"]["wall"] == pytest.approx(77 * 2.0)
    assert (totals["num_suites"], totals["num_tasks"]) == (2, 4)


def test_incomplete_when_errors(records):
    s = _document(records, {})
    assert s["complete"] is False
    assert any("2 episode(s) errored" in r for r in s["incomplete_reasons"])
    assert [e["error_kind"] for e in s["errored_episodes"]] == ["env_error", "policy_error"]
    assert s["errored_episodes"][0]["error_message"] == "it broke"


def test_complete_and_missing_episodes():
    clean = many("libero_object", 0, "a", "success", 3) + many("libero_object", 1, "b", "failure", 2)
    assert _document(clean, {})["complete"] is True
    assert _document(clean, {}, expected_episodes=5)["complete"] is True
    short = _document(clean, {}, expected_episodes=8)
    assert short["complete"] is False
    assert short["totals"]["missing_episodes"] == 3
    assert short["incomplete_reasons"] == ["3 of 8 planned episode(s) not recorded"]


def test_empty_run():
    s = _document([], {"a": 1})
    assert s["complete"] is False and s["tasks"] == [] and s["suites"] == {}
    assert s["totals"]["rate"] is None and s["totals"]["episodes"] == 0


def test_task_with_only_errors_has_null_rate():
    s = _document([rec("libero_10", 4, "z", "env_error")], {})
    task = s["tasks"][0]
    assert task["rate"] is None and task["episodes"] == 0 and task["errors"] == 1
    assert task["mean_steps"] is None
    assert s["suites"]["libero_10"]["task_rate_min"] is None


def test_deterministic_ordering_and_json(tmp_path, records):
    meta = {"policy": {"name": "zero"}, "versions": {"mujoco": "3.3.2"}}
    a = _document(records, meta)
    shuffled = list(records)
    random.Random(1).shuffle(shuffled)
    b = _document(shuffled, meta)
    assert json.dumps(a) == json.dumps(b)
    assert list(a["suites"]) == ["libero_10", "libero_goal"]
    assert [(t["suite"], t["task_index"]) for t in a["tasks"]] == [
        ("libero_10", 0),
        ("libero_10", 1),
        ("libero_goal", 0),
        ("libero_goal", 2),
    ]
    assert a["metadata"] == meta and a["metadata"] is not meta
    path = write_json_atomic(tmp_path / "summary.json", a)
    assert json.loads(path.read_text()) == a


def test_rejects_duplicates_and_conflicting_task_names():
    r = rec("libero_10", 0, "alpha", "success")
    with pytest.raises(ValueError, match="duplicate"):
        _document([r, r], {})
    with pytest.raises(ValueError, match="alpha"):
        _document([r, rec("libero_10", 0, "other", "success")], {})
